"""The real ``avocado serve`` with two worker processes, driven in headless Chromium.

Every request of a page may reach either worker (the server keeps no connection alive), so a
background job (an upload's fit here) is started through one worker and polled, read and
cancelled through both: these tests hold only if the workers share one job store. The uploads
are real Roadmap tracks (the pilot's E116 GM12878 and E003 H1 H3K4me3) written as bigWigs.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from design_steps import upload_and_fit
from playwright.sync_api import Page, expect

from server_process import ServerProcess, serve_command

pytestmark = pytest.mark.e2e

WORKERS = 2


@pytest.fixture(scope="module")
def bigwigs(pilot_workspace, tmp_path_factory) -> dict[str, Path]:
    """Two observed pilot tracks as bigWig files (the signal as the lab measured it)."""
    from avocado_core.bigwig import export_bigwig

    folder = tmp_path_factory.mktemp("uploads")
    return {name: export_bigwig(pilot_workspace.store, biosample, "H3K4me3",
                                folder / f"{name}.bw", invert_transform=True)
            for name, biosample in (("gm", "E116"), ("h1", "E003"))}


@pytest.fixture(scope="module")
def server(pilot_workspace, tmp_path_factory):
    served = ServerProcess(serve_command(pilot_workspace.path, WORKERS),
                           tmp_path_factory.mktemp("serve-tmp"))
    try:
        served.wait_until_serving(WORKERS)
        yield served
    finally:
        served.stop()


def _start_fit(page: Page, url: str, bigwig: Path, name: str) -> None:
    upload_and_fit(page, url, bigwig, name)
    expect(page.locator("#design-fit-status")).to_have_text("fitting…", timeout=30_000)


def _expect_placed(page: Page, name: str, biosamples: list[str]) -> None:
    """The fit's result: the new biosample's name and its nearest known biosamples."""
    expect(page.locator("#design-fit-result")).to_contain_text(name, timeout=180_000)
    rows = page.locator("#design-fit-table tbody tr")
    expect(rows.first).to_be_attached()
    listed = set(re.findall(r"E\d{3}", page.locator("#design-fit-table").inner_text()))
    assert listed and listed <= set(biosamples), listed
    expect(page.locator("#design-fit-alert [role=alert]")).to_have_count(0)
    expect(page.locator("#global-alert")).to_be_empty()


def test_upload_fit_and_place_on_two_workers(page, server, bigwigs, pilot_workspace):
    _start_fit(page, server.url, bigwigs["gm"], "GM-new")
    _expect_placed(page, "GM-new", pilot_workspace.biosamples)


def test_two_users_upload_at_once(browser, server, bigwigs, pilot_workspace):
    users = [browser.new_context().new_page() for _ in range(2)]
    try:
        for page, (key, name) in zip(users, (("gm", "GM-two"), ("h1", "H1-two"))):
            _start_fit(page, server.url, bigwigs[key], name)
        for page, name in zip(users, ("GM-two", "H1-two")):
            _expect_placed(page, name, pilot_workspace.biosamples)
    finally:
        for page in users:
            page.context.close()


def test_a_job_outlives_the_worker_that_started_it(page, server, bigwigs, pilot_workspace):
    """kill -9 of the worker that launched the job: the job finishes, the page gets its result
    through the other worker, and gunicorn starts a new worker."""
    _start_fit(page, server.url, bigwigs["gm"], "GM-orphan")
    jobs = server.jobs()
    assert len(jobs) == 1
    worker = jobs[0].parent().parent()
    os.kill(worker.pid, signal.SIGKILL)
    _expect_placed(page, "GM-orphan", pilot_workspace.biosamples)
    server.wait_until_serving(WORKERS)
    assert worker.pid not in {w.pid for w in server.workers()}


def test_a_job_whose_owner_died_becomes_an_alert(page, server, bigwigs):
    """kill -9 of the job's launcher, then of the job: nobody is left to tell how it ended,
    and the page (polling through either worker) says so instead of waiting in silence."""
    _start_fit(page, server.url, bigwigs["h1"], "H1-lost")
    jobs = server.jobs()
    assert len(jobs) == 1
    launcher = jobs[0].parent()
    os.kill(launcher.pid, signal.SIGKILL)
    os.kill(jobs[0].pid, signal.SIGKILL)
    expect(page.locator("#global-alert [role=alert]")).to_contain_text(
        "background job stopped unexpectedly (the server process that ran it stopped)",
        timeout=60_000)
    expect(page.locator("#design-fit")).to_be_enabled()  # the user can try again
    expect(page.locator("#design-fit-result")).to_be_empty()


def test_ctrl_c_with_a_job_running_leaves_nothing(page, server, bigwigs):
    """Ctrl+C (SIGINT to the server's process group) while a job runs: the server stops
    cleanly, no process of it is left, and neither is its runtime folder. (It stops this
    module's server: the last test here.)"""
    _start_fit(page, server.url, bigwigs["gm"], "GM-stop")
    assert server.jobs(), "no job to interrupt"
    assert server.leftovers()  # the runtime folder (uploads, job store) while serving
    assert server.stop(signal.SIGINT) == 0, server.output
    assert server.group_alive() == []
    assert server.leftovers() == []
    assert "Traceback" not in server.output, server.output
    assert server.output.count("Stopped.") == 1, server.output
