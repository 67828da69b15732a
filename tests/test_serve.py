"""Serving the app for real: ``avocado serve`` and gunicorn by hand, their workers, their stop,
and the background-job store that the workers share.

The servers run in child processes, each in its own process group and temporary folder
(``tests/server_process.py``), stopped as a user stops them: Ctrl+C in a terminal (SIGINT to
the whole group) or ``kill`` of the server process.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import diskcache
import pytest

from app_workspaces import synthetic_workspace  # noqa: F401  (fixture)
from server_process import ServerProcess, free_port, serve_command

PAGES = ["/", "/locus", "/design"]


def _asset_urls(workspace) -> list[str]:
    """Every script and stylesheet the app's page loads (fingerprinted: the same in every
    process that serves this checkout)."""
    from dashboard.app import close_app, create_app

    app = create_app(workspace)
    try:
        html = app.server.test_client().get("/").get_data(as_text=True)
    finally:
        close_app(app)
    urls = sorted(set(re.findall(r'(?:src|href)="(/[^"]+)"', html)))
    assert any("/_dash-component-suites/dash/" in u for u in urls), urls
    return urls


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# ---------------------------------------------------------------------- stopping
@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_ctrl_c_stops_two_workers_and_removes_the_runtime_folder(attempt, synthetic_workspace,  # noqa: F811
                                                                  tmp_path):
    """A terminal's Ctrl+C signals every process of the server (SIGINT), and gunicorn's master
    then signals its workers again (SIGQUIT): repeated, since the second signal arrives at a
    different moment each time."""
    server = ServerProcess(serve_command(synthetic_workspace.path, 2), tmp_path / "tmp")
    try:
        server.wait_until_serving(2)
        assert len(server.leftovers()) == 1  # the one runtime folder, shared by the workers
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0, server.output
    assert server.group_alive() == []
    assert server.leftovers() == []
    assert "Traceback" not in server.output, server.output
    assert server.output.count("Stopped.") == 1, server.output  # the master's, not a worker's


def test_kill_stops_one_worker_cleanly(synthetic_workspace, tmp_path):  # noqa: F811
    """SIGTERM to the server process alone (``kill PID``, a process manager), with one worker
    (werkzeug in the server's process; gunicorn's master: tests/test_cli.py)."""
    server = ServerProcess(serve_command(synthetic_workspace.path, 1), tmp_path / "tmp")
    try:
        server.wait_until_serving(1)
    finally:
        code = server.stop(signal.SIGTERM, group=False)
    assert code == 0, server.output
    assert server.group_alive() == []
    assert server.leftovers() == []
    assert "Traceback" not in server.output, server.output
    assert server.output.count("Stopped.") == 1, server.output


def test_a_killed_servers_runtime_folder_goes_with_the_next_server(tmp_path):
    from avocado_core.cli.serve import make_runtime_dir

    # a server killed with kill -9 could not remove its folder; its process is gone
    child = (f"import tempfile; tempfile.tempdir = {str(tmp_path)!r}; "
             "from avocado_core.cli.serve import make_runtime_dir; print(make_runtime_dir())")
    left = Path(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                               check=True).stdout.strip())
    assert left.is_dir() and left.parent == tmp_path
    import tempfile

    old, tempfile.tempdir = tempfile.tempdir, str(tmp_path)
    try:
        mine = make_runtime_dir()
    finally:
        tempfile.tempdir = old
    assert not left.exists() and mine.is_dir()
    assert mine.stat().st_mode & 0o077 == 0  # private: the job store signs the pages' jobs


# ---------------------------------------------------------------------- by-hand gunicorn
def test_a_workers_first_requests_arriving_together_all_succeed(synthetic_workspace,  # noqa: F811
                                                                monkeypatch):
    """Dash prepares itself on a server's first request and lets the requests that arrive
    meanwhile through unprepared: a script requested then answered HTTP 500 ("dash" is not a
    registered library). Here the first request is held inside that preparation while a
    script is requested."""
    import dash.dash

    from dashboard.app import close_app, create_app

    script = next(u for u in _asset_urls(synthetic_workspace) if u.endswith(".js"))
    app = create_app(synthetic_workspace)
    inside, release = threading.Event(), threading.Event()
    fingerprint = dash.dash.build_fingerprint

    def held(*args, **kwargs):
        inside.set()
        release.wait(30)
        return fingerprint(*args, **kwargs)

    monkeypatch.setattr(dash.dash, "build_fingerprint", held)
    statuses = {}
    first = threading.Thread(
        target=lambda: statuses.update(page=app.server.test_client().get("/").status_code))
    try:
        first.start()
        assert inside.wait(30)
        statuses["script"] = app.server.test_client().get(script).status_code
    finally:
        release.set()
        first.join(60)
        close_app(app)
    assert statuses == {"page": 200, "script": 200}


def test_gunicorn_by_hand_serves_every_page_and_asset_from_every_worker(
        synthetic_workspace, tmp_path):  # noqa: F811
    """The documented command (two gthread workers), every page and every script and
    stylesheet requested together, again and again until each worker has served all of them:
    all HTTP 200."""
    port = free_port()
    urls = PAGES + _asset_urls(synthetic_workspace) + ["/_dash-layout", "/_dash-dependencies"]
    server = ServerProcess(
        ["gunicorn", "-w", "2", "-k", "gthread", "--threads", "8", "-b", f"127.0.0.1:{port}",
         "--access-logfile", "-", "--access-logformat", "served %(p)s %(s)s %(U)s",
         "dashboard.wsgi:server"],
        tmp_path / "tmp", url=f"http://127.0.0.1:{port}",
        env={"AVOCADO_WORKSPACE": str(synthetic_workspace.path)})

    def served() -> dict[int, set[str]]:
        by_worker: dict[int, set[str]] = {}
        for pid, _, url in re.findall(r"served <(\d+)> (\d+) (\S+)", server.output):
            by_worker.setdefault(int(pid), set()).add(url)
        return by_worker

    statuses = []
    try:
        # no request before the workers run: a worker's first requests come together
        deadline = time.monotonic() + 180
        while len(server.workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = {w.pid for w in server.workers()}
        with ThreadPoolExecutor(16) as pool:
            while time.monotonic() < deadline and not (
                    served().keys() == workers and all(len(u) == len(urls)
                                                      for u in served().values())):
                statuses += pool.map(lambda u: (_status(server.url + u), u), urls)
    finally:
        server.stop(signal.SIGINT)
    assert [s for s in statuses if s[0] != 200] == []
    assert served().keys() == workers and all(len(u) == len(urls) for u in served().values())
    assert "Traceback" not in server.output, server.output


# ---------------------------------------------------------------------- the job store
def _manager(folder: Path):
    from dashboard.background import JobManager

    return JobManager(diskcache.Cache(str(folder)), app_spec=None)


def _ended_process() -> int:
    """The pid of a process that has come and gone (as a job whose owner died)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_job_gone_without_a_result_is_reported_through_any_worker(tmp_path):
    """Two workers open the same job store; a job's process is gone with no result and nobody
    left to record why (its launcher died with it): a poll through the other worker gets an
    error, which the page shows as an alert, instead of silence."""
    started_by, polled_by = _manager(tmp_path / "jobs"), _manager(tmp_path / "jobs")
    job = _ended_process()
    assert started_by.job_running(job) is False
    result = polled_by.get_result("key-b", job)
    assert result["background_callback_error"]["msg"].startswith(
        "the background job stopped unexpectedly (the server process that ran it stopped)")
    assert not polled_by.job_running(job)


def test_a_job_cancelled_or_done_is_not_an_error(tmp_path):
    started_by, polled_by = _manager(tmp_path / "jobs"), _manager(tmp_path / "jobs")
    cancelled = _ended_process()
    started_by.terminate_job(cancelled)  # the Cancel button, through one worker
    assert polled_by.get_result("key-c", cancelled) is polled_by.UNDEFINED  # no update
    done = _ended_process()
    started_by.handle.set("key-d", {"picked": 3})  # what a job writes just before it ends
    assert polled_by.get_result("key-d", done) == {"picked": 3}
    assert started_by.get_result("key-d", done) is started_by.UNDEFINED  # read once
