"""The app at ENCODE's layout in headless Chromium (a reduced copy: 40 of its 400 biosamples,
the same code paths): the track picker's search, facets, click and keyboard; the biosample map's
PCA axes, names and lasso into the locus page."""

from __future__ import annotations

import re

import pytest
from dash_idle import settle
from playwright.sync_api import expect

from dashboard.names import short_assay_labels
from dashboard.pages.locus import biosample_tracks

pytestmark = pytest.mark.e2e

TRACK_LABEL = re.compile(r"^J\d{3} · .+ · \S+$")


def cell_centre(page, row: int, col: int) -> tuple[float, float]:
    """The centre of a picker cell by its slot (group headers count as slots)."""
    grid = page.locator("#locus-picker .nsewdrag").first.bounding_box()
    meta = page.evaluate("() => document.querySelector('#locus-picker .js-plotly-plot')"
                         ".layout.meta")
    return (grid["x"] + (col + 0.5) * grid["width"] / meta["n_cols"],
            grid["y"] + (row + 0.5) * grid["height"] / meta["n_rows"])


def test_the_picker_searches_filters_and_picks_by_click_and_keyboard(
        page, encode_url, encode_layout_workspace, screenshot_dir):
    ws = encode_layout_workspace
    meta, assays = ws.biosample_metadata(), ws.assay_metadata()
    page.goto(f"{encode_url}/locus?locus=chr1:0-25,000&tracks=")
    summary = page.locator("#picker-summary")
    n_b, n_a = len(meta), len(assays)
    expect(summary).to_have_text(f"{n_b * n_a:,} of {n_b * n_a:,} cells shown · {n_b} of "
                                 f"{n_b} biosamples × {n_a} of {n_a} assays", timeout=30_000)
    settle(page)
    # "/" goes to the biosample search; the matrix narrows as one types
    search = page.locator("#picker-bio-text")
    page.keyboard.press("/")
    expect(search).to_be_focused()
    # keys typed fast on a slow machine stay in order (a pause before asking the server put
    # Dash's caret back: "aal gndladren")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 6})
    page.keyboard.type("adrenal gland")
    expect(search).to_have_value("adrenal gland")
    settle(page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    adrenal = meta.index[meta["summary"].str.contains("adrenal gland")]
    rna = assays.index[assays["kind"] == "RNA"]
    expect(summary).to_contain_text(f"· {len(adrenal)} of {n_b} biosamples × {n_a} of {n_a} "
                                    "assays", timeout=30_000)
    settle(page)
    page.locator("#picker-col-values").get_by_text(re.compile(r"^RNA \(\d+\)$")).click()
    expect(summary).to_have_text(f"{len(adrenal) * len(rna)} of {n_b * n_a:,} cells shown · "
                                 f"{len(adrenal)} of {n_b} biosamples × {len(rna)} of {n_a} "
                                 "assays", timeout=30_000)
    settle(page)
    # the first cell (after the group headers): its hover names it, a click shows exactly it
    b, a = adrenal[0], rna[0]
    x, y = cell_centre(page, 1, 1)
    page.mouse.move(x, y)
    hover = page.locator("#locus-picker .hoverlayer .hovertext")
    expect(hover).to_contain_text(f"{b} · {meta.loc[b, 'summary']}")
    expect(hover).to_contain_text(f"{a}")
    page.mouse.click(x, y)
    expect(page.locator("#locus-picked-count")).to_have_text("1 track chosen", timeout=30_000)
    # the bold part of the row's annotation (the window's agreement follows it)
    label = page.locator("#locus-graph g.annotation text tspan[style*='bold']",
                         has_text=TRACK_LABEL)
    expect(label).to_have_text(f"{b} · {meta.loc[b, 'summary']} · {a}", timeout=30_000)
    expect(page).to_have_url(re.compile(r"tracks=" + re.escape(f"{b}|{a}") + "$"))
    settle(page)
    # the keyboard's way in: the chosen list takes typed words, arrows and Enter
    second = rna[1]
    page.locator("#locus-chosen").click()
    short = short_assay_labels(assays, [second]).iloc[0]
    page.keyboard.type(f"{b} {short.split()[0]}", delay=30)
    option = page.locator(".dash-dropdown-content label",
                          has_text=f"{b} · {meta.loc[b, 'summary']} · {short} (")
    expect(option).to_have_count(1, timeout=30_000)
    settle(page)
    while page.evaluate("() => document.activeElement.value") != f"{b}|{second}":
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    expect(page.locator("#locus-picked-count")).to_have_text("2 tracks chosen", timeout=30_000)
    expect(label).to_have_count(2, timeout=30_000)
    expect(page).to_have_url(re.compile(re.escape(f"{b}|{a},{b}|{second}") + "$"))
    page.screenshot(path=str(screenshot_dir / "encode-layout-locus.png"))


def test_the_map_names_biosamples_and_a_lasso_opens_their_tracks(
        page, encode_url, encode_layout_workspace, screenshot_dir):
    ws = encode_layout_workspace
    share = ws.projection("biosamples", "pca").attrs["explained_variance"]
    page.goto(f"{encode_url}/?axis=biosamples&method=pca&color=type")
    expect(page.locator("#emb-graph .g-xtitle")).to_have_text(
        f"PC1 · {100 * share[0]:.1f} % of variance", timeout=30_000)
    expect(page.locator("#emb-graph .g-ytitle")).to_have_text(
        f"PC2 · {100 * share[1]:.1f} % of variance")
    settle(page)
    area = page.locator("#emb-graph .nsewdrag").first.bounding_box()
    # a lasso (the map's drag mode) around the middle of the map
    cx, cy, w, h = (area["x"] + area["width"] / 2, area["y"] + area["height"] / 2,
                    area["width"] * 0.3, area["height"] * 0.3)
    page.mouse.move(cx - w, cy - h)
    page.mouse.down()
    for px, py in ((cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h), (cx - w, cy - h)):
        page.mouse.move(px, py, steps=6)
    page.mouse.up()
    count = page.locator("#emb-selection-count")
    expect(count).to_have_text(re.compile(rf"^\d+ of {len(ws.biosamples)} selected$"),
                               timeout=30_000)
    n = int(count.inner_text().split()[0])
    assert 0 < n < len(ws.biosamples)
    page.screenshot(path=str(screenshot_dir / "encode-layout-map.png"))
    link = page.locator("#emb-to-locus")
    ids = re.fullmatch(r"/locus\?biosamples=([J\d,]+)", link.get_attribute("href"))[1].split(",")
    assert len(ids) == n
    link.click()
    expect(page.locator("#picker-summary")).to_contain_text(
        f"· {n} of {len(ws.biosamples)} biosamples", timeout=30_000)
    expected = biosample_tracks(ws, ids)  # the assays most of them measured, for each of them
    expect(page.locator("#locus-metrics tbody tr")).to_have_count(len(expected), timeout=60_000)
    tracks = ",".join(f"{b}|{a}" for b, a in expected)
    expect(page).to_have_url(re.compile(r"tracks=" + re.escape(tracks) + "$"))
