"""Design page in headless Chromium: picks, curves, exports, background runs, alerts."""

from __future__ import annotations

import csv
import io
import re

import pytest
from dash_idle import settle
from design_steps import upload_and_fit
from playwright.sync_api import expect

from app_workspaces import one_chromosome_bigwig
from dashboard.pages.design_impute import VIEW_TRACKS

pytestmark = pytest.mark.e2e


def test_synthetic_biosample_picks_and_csv(page, synthetic_url, synthetic_workspace,
                                           screenshot_dir):
    ws = synthetic_workspace
    status = ws.status()
    assay = status.columns[0]
    profiled = set(status.index[status[assay] == "observed"])
    page.goto(f"{synthetic_url}/design?assay={assay}&k=6")
    settle(page)
    page.click("#design-run")
    summary = page.locator("#design-summary")
    expect(summary).to_contain_text(f"6 biosamples picked for {assay}", timeout=60_000)
    expect(summary).to_contain_text(f"{len(profiled)} already profiled count as chosen")
    expect(page.locator("#design-picks-table tbody tr")).to_have_count(1 + 6)  # header row too
    # Plotly may draw after the table renders: wait for the legend before reading it.
    expect(page.locator("#design-picks-graph .legendtext", has_text="picked (6)")
           ).to_have_count(1, timeout=30_000)
    legend = page.locator("#design-picks-graph .legendtext").all_text_contents()
    assert "picked (6)" in legend and f"already profiled ({len(profiled)})" in legend
    expect(page.locator("#design-gains-graph .bars .point")).to_have_count(6)
    with page.expect_download() as info:
        page.click("#design-csv")
    rows = list(csv.DictReader(io.StringIO(open(info.value.path()).read())))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {r["assay"] for r in rows} == {assay}
    assert not {r["biosample"] for r in rows} & profiled
    gains = [float(r["gain"]) for r in rows]
    assert gains == sorted(gains, reverse=True)
    page.screenshot(path=str(screenshot_dir / "design.png"), full_page=True)


def test_synthetic_positions_bed(page, synthetic_url):
    page.goto(f"{synthetic_url}/design")
    settle(page)
    page.fill("#design-pos-k", "12")
    page.click("#design-pos-run")
    expect(page.locator("#design-pos-summary")).to_contain_text("12 positions picked",
                                                                timeout=60_000)
    with page.expect_download() as info:
        page.click("#design-bed")
    lines = open(info.value.path()).read().splitlines()
    assert len(lines) == 12
    fields = [line.split("\t") for line in lines]
    assert all(f[0] == "chr1" and int(f[2]) - int(f[1]) == 25 for f in fields)
    assert [f[3] for f in fields] == [f"pick{i}" for i in range(1, 13)]


def test_pilot_alerts_and_rerank(page, pilot_url):
    page.goto(f"{pilot_url}/design?assay=H3K4me3&k=2")
    settle(page)
    rerank = page.locator("#design-rerank input[type=checkbox]")
    # one H3K4me3 (E065's, a calibration experiment) was removed from the test pilot store
    expect(rerank).not_to_be_checked()
    page.click("#design-run")
    alert = page.locator("#design-alert [role=alert]")
    expect(alert).to_contain_text("k=2 exceeds the 1 candidate biosample for H3K4me3 (E065)",
                                  timeout=60_000)
    rerank.check()
    page.fill("#design-k", "9")
    expect(page).to_have_url(re.compile(r"k=9"))  # the app has the new k before the click
    page.click("#design-run")
    expect(alert).to_contain_text("k=9 exceeds the 5 candidate biosamples", timeout=60_000)
    page.fill("#design-k", "3")
    expect(page).to_have_url(re.compile(r"k=3"))
    page.click("#design-run")
    expect(page.locator("#design-summary")).to_contain_text("3 biosamples picked for H3K4me3",
                                                            timeout=60_000)
    expect(page.locator("#design-alert [role=alert]")).to_have_count(0)
    page.fill("#design-pos-k", "0")
    page.click("#design-pos-run")
    expect(page.locator("#design-pos-alert [role=alert]")).to_contain_text(
        re.compile("k must be .*between 1 and 200"), timeout=60_000)


def test_pilot_defaults_run_and_k_is_named(page, pilot_url):
    """The default k works on the workspace (one biosample lacks each assay there), the hint
    says how many can be picked, and a k out of range is named, not "None"."""
    page.goto(f"{pilot_url}/design")
    settle(page)
    expect(page.locator("#design-k")).to_have_value("1")
    hint = page.locator("#design-k-hint")
    # H3K27me3 lacks the most experiments; only E117's is missing (a calibration experiment)
    expect(hint).to_have_text("1 biosample (E117) can be picked for H3K27me3: k is at most 1.")
    page.click("#design-run")
    expect(page.locator("#design-summary")).to_contain_text("1 biosample picked for H3K27me3",
                                                            timeout=60_000)
    expect(page.locator("#design-alert [role=alert]")).to_have_count(0)
    page.locator("#design-rerank input[type=checkbox]").check()
    expect(hint).to_contain_text("5 biosamples (E003, E017, E065, E116, E117) can be picked")
    page.fill("#design-k", "0")
    expect(page).to_have_url(re.compile(r"k=0"))
    page.click("#design-run")
    expect(page.locator("#design-alert [role=alert]")).to_have_text(
        "k must be between 1 and 200, got 0", timeout=60_000)


def test_a_partial_upload_says_what_it_covers_and_how_sure_the_placement_is(
        page, pilot_url, pilot_workspace, tmp_path):
    path = one_chromosome_bigwig(pilot_workspace, "E017", "H3K27me3", "chr7",
                                 tmp_path / "imr90.chr7.bw")
    upload_and_fit(page, pilot_url, path, "IMR90-chr7")
    result = page.locator("#design-fit-result")
    expect(result).to_contain_text(
        "The file covers 20% of the workspace's bins (226,212 of 1,126,469); the fit used those "
        "only", timeout=120_000)
    expect(page.locator("#design-fit-placement")).to_contain_text(
        re.compile(r"^Placement: .* the margin is [\d.e-]+ times the typical distance"))
    expect(page.locator("#design-fit-table tbody tr")).to_have_count(1 + 5)
    distances = page.locator("#design-fit-table td[data-dash-column=distance]").all_text_contents()
    # three significant digits, not 0.4869999885559082
    assert len(distances) == 5 and all(float(f"{float(d):.3g}") == float(d) and len(d) <= 6
                                       for d in distances)


def test_bad_uploads_show_alerts(page, pilot_url, data_mirror, tmp_path):
    page.goto(f"{pilot_url}/design")
    settle(page)
    page.click("#design-fit")
    alert = page.locator("#design-fit-alert [role=alert]")
    expect(alert).to_contain_text("choose a bigWig file", timeout=60_000)
    notes = tmp_path / "notes.bw"
    notes.write_text("this is not a bigWig\n")
    page.set_input_files("#design-upload input[type=file]", str(notes))
    expect(page.locator("#design-upload-label")).to_contain_text("notes.bw")
    page.fill("#design-new-name", "mine")
    page.click("#design-fit")
    expect(alert).to_contain_text("is not a readable bigWig file", timeout=60_000)
    fly = data_mirror / "bigwig-real" / "bigwig_chrx_2e6_5e6.bw"
    page.set_input_files("#design-upload input[type=file]", str(fly))
    page.click("#design-fit")
    expect(alert).to_contain_text("no signal over the workspace's regions", timeout=60_000)


def test_fitting_a_new_biosample_can_be_cancelled(page, pilot_url, pilot_workspace, tmp_path):
    from avocado_core.bigwig import export_bigwig

    path = export_bigwig(pilot_workspace.store, "E116", "H3K4me3", tmp_path / "gm.bw",
                         invert_transform=True)
    upload_and_fit(page, pilot_url, path, "GM-new")
    cancel = page.locator("#design-fit-cancel")
    expect(cancel).to_be_enabled(timeout=30_000)  # the fit runs in the background
    expect(page.locator("#design-fit-status")).to_have_text("fitting…")
    cancel.click()
    expect(page.locator("#design-fit")).to_be_enabled(timeout=30_000)
    page.wait_for_timeout(1500)
    expect(page.locator("#design-fit-result")).to_be_empty()
    expect(page.locator("#design-fit-alert [role=alert]")).to_have_count(0)


def test_a_placed_upload_is_imputed_shown_and_downloaded(page, pilot_url, pilot_workspace,
                                                          tmp_path, screenshot_dir):
    import zipfile

    from avocado_core.bigwig import export_bigwig

    ws = pilot_workspace
    path = export_bigwig(ws.store, "E116", "H3K4me3", tmp_path / "gm.bw", invert_transform=True)
    upload_and_fit(page, pilot_url, path, "GM-new")
    expect(page.locator("#design-impute-hint")).to_contain_text(
        "Predict GM-new's assays from its fitted row", timeout=60_000)
    page.click("#design-impute-run")
    summary = page.locator("#design-impute-summary")
    expect(summary).to_contain_text(f"GM-new: {len(ws.assays)} assays imputed", timeout=60_000)
    expect(summary).to_contain_text("the prediction settings of its nearest biosample")
    labels = page.locator("#design-impute-graph .annotation-text", has_text="fitted upload")
    expect(labels).to_have_count(1 + min(VIEW_TRACKS, len(ws.assays) - 1))  # upload + imputed
    expect(page.locator("#design-impute-graph")).to_contain_text("training fit")
    with page.expect_download() as info:
        page.click("#design-impute-download")
    with zipfile.ZipFile(info.value.path()) as z:
        assert sorted(z.namelist()) == sorted(
            ["README.txt", *(f"GM-new.{a}.imputed.bw" for a in ws.assays)])
    page.screenshot(path=str(screenshot_dir / "design-impute.png"), full_page=True)

