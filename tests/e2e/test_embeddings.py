"""Embeddings page in headless Chromium: the pilot workspace and a synthetic compendium."""

from __future__ import annotations

import re

import pytest
from dash_idle import settle
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

LEGEND = "#emb-graph .legend .legendtext"


def box_select(page, start: float) -> None:
    """Once the page is idle, drag a box over the embedding with the Box Select tool: from
    ``start`` of the plot's width and height to 0.4 of them further."""
    settle(page)
    page.locator('#emb-graph .modebar-btn[data-title="Box Select"]').click()
    area = page.locator("#emb-graph .nsewdrag").first.bounding_box()
    x0, y0 = area["x"] + area["width"] * start, area["y"] + area["height"] * start
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + area["width"] * 0.4, y0 + area["height"] * 0.4, steps=8)
    page.mouse.up()


def test_pilot_biosamples_legend(page, pilot_url, pilot_workspace):
    page.goto(f"{pilot_url}/?axis=biosamples&method=pca&color=anatomy")
    expect(page.locator("#emb-caption")).to_have_text(
        "5 biosamples · PCA of the biosample embedding (UMAP needs at least 8 biosamples; "
        "with 5 the map is PCA)", timeout=30_000)
    anatomy = pilot_workspace.biosample_metadata()["anatomy"].value_counts()
    expected = {f"{k} ({v})" for k, v in anatomy.items()}
    expect(page.locator(LEGEND)).to_have_count(len(expected))
    assert set(page.locator(LEGEND).all_text_contents()) == expected
    expect(page.locator("#emb-selection-count")).to_have_text("5 points · none selected")
    # every point named; UMAP is offered only where it can run
    names = page.locator("#emb-graph .textpoint text").all_text_contents()
    assert sorted(names) == sorted(pilot_workspace.biosamples)
    expect(page.locator("#emb-method input[value=umap]")).to_be_disabled()


def test_pilot_genome_sample_in_webgl(page, pilot_url, pilot_workspace, screenshot_dir):
    page.goto(f"{pilot_url}/?axis=genome&method=pca&res=all&color=class")
    expect(page.locator("#emb-caption")).to_contain_text(
        "Sample of 100,000 of 1,126,469 positions stratified by annotation class",
        timeout=60_000)
    expect(page.locator(LEGEND, has_text=re.compile(r"^promoter \([\d,]+\)$"))
           ).to_have_count(1, timeout=30_000)
    legend = page.locator(LEGEND).all_text_contents()
    assert any(re.fullmatch(r"promoter \([\d,]+\)", t) for t in legend)
    assert sum(int(re.search(r"\(([\d,]+)\)", t).group(1).replace(",", ""))
               for t in legend) == 100_000
    expect(page.locator("#emb-graph canvas").first).to_be_attached()  # Scattergl draws with WebGL
    settle(page)
    page.screenshot(path=str(screenshot_dir / "embeddings.png"))
    # a projection that was not computed offers a background computation
    ws = pilot_workspace
    ws.projections.path(ws.fingerprint, "genome", "pca", "5kbp", ws.info["genome_points"], 0,
                        ws.bin_classes).unlink(missing_ok=True)  # a kept test workspace
    page.goto(f"{pilot_url}/?axis=genome&method=pca&res=5kbp&color=class")
    expect(page.locator("#emb-missing")).to_contain_text("has not been computed", timeout=30_000)
    settle(page)
    page.click("#emb-compute")  # a background callback computes and caches it
    expect(page.locator("#emb-caption")).to_contain_text(
        re.compile(r"Sample of [\d,]+ of [\d,]+ 5 kbp blocks"), timeout=60_000)
    expect(page.locator("#emb-compute")).to_be_hidden()


def test_synthetic_box_selection_goes_to_design(page, synthetic_url):
    page.goto(f"{synthetic_url}/?axis=biosamples&method=umap&color=anatomy")
    expect(page.locator("#emb-selection-count")).to_have_text("240 points · none selected",
                                                              timeout=30_000)
    expect(page.locator(LEGEND)).to_have_count(8, timeout=30_000)  # planted anatomy groups
    box_select(page, 0.2)
    count = page.locator("#emb-selection-count")
    expect(count).to_have_text(re.compile(r"^\d+ of 240 selected$"))
    n = int(count.inner_text().split()[0])
    assert 0 < n < 240
    # written by its own callback: the names, or a saved selection's id past 50 of them
    expect(page).to_have_url(re.compile(r"[?&](sel=[^&]+|selid=[0-9a-f]{12})"))
    page.locator("#emb-to-design").click()
    expect(page.locator("#design-candidates-note")).to_contain_text(
        f"Candidates: {n} biosamples from your selection", timeout=30_000)


def test_selection_and_colour_come_from_the_url(page, synthetic_url):
    page.goto(f"{synthetic_url}/?axis=biosamples&method=pca&color=n_observed&sel=S001,S002,S003")
    expect(page.locator("#emb-selection-count")).to_have_text("3 of 240 selected", timeout=30_000)
    expect(page.locator("#emb-graph .colorbar")).to_have_count(1)  # continuous colouring
    expect(page.locator("#emb-to-locus")).to_be_visible()
    page.locator("#emb-to-locus").click()
    expect(page.locator("#locus-span")).to_contain_text("tracks", timeout=30_000)
    expect(page.locator("#locus-graph g.annotation text", has_text=re.compile(r"^S001 · "))
           .first).to_be_attached(timeout=30_000)
    labels = page.locator("#locus-graph g.annotation text").all_text_contents()
    assert any(t.startswith("S001 · ") for t in labels)


def test_genome_point_opens_the_locus(page, synthetic_url):
    page.goto(f"{synthetic_url}/?axis=genome&method=pca&color=signal&exp=S001|DNase|imputed"
              "&sel=2000")
    expect(page.locator("#emb-caption")).to_contain_text("Sample of 4,000 of 4,000 positions",
                                                         timeout=30_000)
    expect(page.locator("#emb-graph .colorbar")).to_have_count(1)
    link = page.locator("#emb-to-locus")
    expect(link).to_have_text("Open the 1 selected position in the locus browser →")
    expect(page).to_have_url(re.compile(r"[?&]selid=[0-9a-f]{12}"))  # saved, shareable
    link.click()
    expect(page.locator("#locus-input")).to_have_value("chr1:30,000-70,025", timeout=30_000)


def test_genome_lasso_goes_to_locus_design_and_bed(page, synthetic_url):
    page.goto(f"{synthetic_url}/?axis=genome&method=pca&color=chrom")
    expect(page.locator("#emb-selection-count")).to_have_text("4,000 points · none selected",
                                                              timeout=30_000)
    box_select(page, 0.3)
    count = page.locator("#emb-selection-count")
    expect(count).to_have_text(re.compile(r"^[\d,]+ of 4,000 selected$"), timeout=30_000)
    n = int(count.inner_text().split()[0].replace(",", ""))
    assert n > 1
    expect(page).to_have_url(re.compile(r"[?&]selid=[0-9a-f]{12}"))  # any size: a short id
    sel_id = re.search(r"selid=([0-9a-f]{12})", page.url).group(1)
    # the whole selection as BED
    with page.expect_download() as info:
        page.locator("#emb-bed").click()
    bed = [line.split("\t") for line in open(info.value.path()).read().splitlines()]
    assert 0 < len(bed) <= n and sum(int(f[4]) for f in bed) == n
    assert all(f[0].startswith("chr") and int(f[2]) > int(f[1]) for f in bed)
    # the design page takes the positions as candidates
    expect(page.locator("#emb-to-design")).to_have_attribute(
        "href", f"/design?positions={sel_id}")
    # the locus page gets every position, in regions it steps through
    page.locator("#emb-to-locus").click()
    nav = page.locator("#locus-sel-count")
    expect(nav).to_contain_text(re.compile(rf"^{n:,} selected positions in [\d,]+ regions? "),
                                timeout=30_000)
    n_regions = int(nav.inner_text().split(" in ")[1].split()[0].replace(",", ""))
    assert 1 <= n_regions <= len(bed)  # nearby intervals share a region
    first = page.locator("#locus-input").input_value()
    assert first.startswith(f"{bed[0][0]}:")
    if n_regions > 1:
        settle(page)
        page.click("#locus-sel-next")
        expect(page.locator("#locus-input")).not_to_have_value(first, timeout=30_000)
    assert f"selection={sel_id}" in page.url
    page.goto(f"{synthetic_url}/design?positions={sel_id}")
    expect(page.locator("#design-pos-candidates-note")).to_contain_text(
        f"Candidates: {n:,} positions from your selection", timeout=30_000)
