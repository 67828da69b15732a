"""Background jobs ("Compute it now") in headless Chromium, on a server that already used OpenMP.

The demo's first server builds the workspace in its own process (UMAP: numba's OpenMP threads)
and has served the locus page (torch) before anyone clicks "Compute it now". A job forked from
such a process dies at once ("fork() called from a process already using GNU OpenMP"); these
tests put the server in that state first, then check that jobs run, that a job killed with
kill -9 becomes an alert, and that Cancel clears the job's text.
"""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import psutil
import pytest
from dash_idle import settle
from jobs import wait_for_jobs
from playwright.sync_api import expect

from avocado_core.projection import project

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def used_openmp(synthetic_url):
    """This process (the server's) has run numba's OpenMP threads, as the demo's build does."""
    import numba

    project(np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32), method="umap",
            seed=0)
    assert numba.threading_layer() == "omp"
    return synthetic_url


def _forget(ws, axis: str, method: str, resolution: str = "all") -> None:
    """Delete a cached projection, so that the page offers to compute it."""
    strata = ws.bin_classes if axis == "genome" else None
    ws.projections.path(ws.fingerprint, axis, method, resolution,
                        ws.info["genome_points"] if axis == "genome" else 0, 0,
                        strata).unlink(missing_ok=True)


def test_umap_compute_on_a_server_that_served_the_locus_page(page, used_openmp,
                                                             synthetic_workspace):
    page.goto(f"{used_openmp}/locus")
    expect(page.locator("#locus-span")).not_to_be_empty(timeout=60_000)
    expect(page.locator("#locus-metrics tbody tr").first).to_be_attached(timeout=60_000)
    settle(page)
    # the tracks travel as base64 typed arrays: plotly.js decoded them into numbers (one
    # trace draws a series of every row, NaN between two rows)
    drawn = page.evaluate("""() => {
        const gd = document.querySelector('#locus-graph .js-plotly-plot');
        const t = gd._fullData.find(d => d.name === 'observed' || d.name === 'imputed');
        return [t.x.length, Number(t.x[1]) - Number(t.x[0]),
                Array.from(t.y).filter(v => !Number.isFinite(v)).length,
                gd.layout.meta.n_tracks];
    }""")
    assert drawn[0] > 100 and drawn[1] > 0 and drawn[2] < drawn[3], drawn
    _forget(synthetic_workspace, "biosamples", "umap")
    page.goto(f"{used_openmp}/?axis=biosamples&method=umap&color=anatomy")
    expect(page.locator("#emb-missing")).to_contain_text("has not been computed", timeout=30_000)
    settle(page)
    page.click("#emb-compute")
    expect(page.locator("#emb-caption")).to_contain_text("240 biosamples · UMAP",
                                                         timeout=120_000)
    expect(page.locator("#emb-compute")).to_be_hidden()
    expect(page.locator("#global-alert")).to_be_empty()


def _start_genome_umap(page, url: str, workspace) -> list:
    """Ask for the genome UMAP in the page; the one job process computing it."""
    _forget(workspace, "genome", "umap")
    page.goto(f"{url}/?axis=genome&method=umap&res=all&color=class")
    expect(page.locator("#emb-missing")).to_contain_text("has not been computed", timeout=30_000)
    settle(page)
    page.click("#emb-compute")
    expect(page.locator("#emb-missing")).to_contain_text("Computing", timeout=30_000)
    return wait_for_jobs(1)


def test_a_job_killed_with_kill_9_becomes_an_alert(page, used_openmp, synthetic_workspace):
    jobs = _start_genome_umap(page, used_openmp, synthetic_workspace)
    os.kill(jobs[0].pid, signal.SIGKILL)
    expect(page.locator("#global-alert [role=alert]")).to_contain_text(
        re.compile(r"background job .*stopped unexpectedly \(killed by SIGKILL\)"),
        timeout=30_000)
    expect(page.locator("#emb-compute")).to_be_visible()  # the user can try again


def test_cancel_clears_the_computing_text_and_stops_the_job(page, used_openmp,
                                                             synthetic_workspace):
    jobs = _start_genome_umap(page, used_openmp, synthetic_workspace)
    page.click("#emb-cancel")
    expect(page.locator("#emb-missing")).to_have_text(
        "Cancelled: the projection was not computed.", timeout=30_000)
    psutil.wait_procs(jobs, timeout=10)
    assert not jobs[0].is_running() or jobs[0].status() == psutil.STATUS_ZOMBIE
    expect(page.locator("#global-alert")).to_be_empty()  # a cancel is not an error


def test_a_job_whose_tab_closed_stops(browser, synthetic_workspace, tmp_path):
    from conftest import serving
    from dashboard.app import close_app, create_app

    app = create_app(synthetic_workspace, orphan_after=3)
    try:
        with serving(app) as url:
            _forget(synthetic_workspace, "genome", "umap")
            page = browser.new_page()
            page.goto(f"{url}/?axis=genome&method=umap&res=all&color=class")
            expect(page.locator("#emb-missing")).to_contain_text("has not been computed",
                                                                 timeout=30_000)
            settle(page)
            page.click("#emb-compute")  # this app's job launcher starts now: give it time
            expect(page.locator("#emb-missing")).to_contain_text("Computing", timeout=120_000)
            jobs = wait_for_jobs(1)
            page.close()  # nobody polls the job any more
            _, alive = psutil.wait_procs(jobs, timeout=30)
            assert not alive, "the job of a closed tab is still running"
    finally:
        close_app(app)
