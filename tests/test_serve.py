"""Serving the app for real: ``avocado serve`` and gunicorn by hand, their workers, their stop,
and the background-job store that the workers share.

The servers run in child processes, each in its own process group and temporary folder
(``tests/server_process.py``), stopped as a user stops them: Ctrl+C in a terminal (SIGINT to
the whole group) or ``kill`` of the server process.
"""

from __future__ import annotations

import re
import signal
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from app_workspaces import synthetic_workspace  # noqa: F401  (fixture)
from server_process import ServerProcess, free_port

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
