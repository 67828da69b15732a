"""The pages' logic without a browser: pure helpers, and callbacks through Dash's HTTP endpoint."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from app_client import (
    PICKER_OUTPUTS,
    draw_locus,
    outputs_of,
    picker_inputs,
    post_callback,
    text_of,
)
from app_workspaces import (  # noqa: F401  (fixtures)
    one_chromosome_bigwig,
    pilot_workspace,
    placement_workspace,
    synthetic_workspace,
)
from dashboard.app import create_app
from dashboard.figures.tracks import Track
from dashboard.pages import design, design_upload, embeddings, locus, locus_export


@pytest.fixture(scope="module")
def synthetic_app(synthetic_workspace, tmp_path_factory):  # noqa: F811
    return create_app(synthetic_workspace, background_dir=str(tmp_path_factory.mktemp("bg")))


@pytest.fixture(scope="module")
def pilot_app(pilot_workspace, tmp_path_factory):  # noqa: F811
    return create_app(pilot_workspace, background_dir=str(tmp_path_factory.mktemp("bgp")))


# ---------------------------------------------------------------------- locus: pure helpers
def test_resolve_locus_accepts_the_three_forms(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    expected = ("chr1", 151_200_000, 151_300_000)
    assert locus.resolve_locus(ws, "chr1:151,200,000-151,300,000") == expected
    assert locus.resolve_locus(ws, "chr1:151.2M-151.3M") == expected
    chrom, start, end = locus.resolve_locus(ws, "psmd4")  # case-insensitive gene name
    gene = ws.annotations.gene("PSMD4")
    assert chrom == "chr1" and start < gene["start"] and end > gene["end"]


@pytest.mark.parametrize("text, message", [
    ("chr1:151,300,000-151,200,000", "reversed"),
    ("chr1:abc", "cannot parse"),
    ("NOTAGENE123", "NOTAGENE123"),
    ("", "type a locus"),
    ("chr1 151", "neither a locus"),
])
def test_resolve_locus_errors_are_user_errors(pilot_workspace, text, message):  # noqa: F811
    with pytest.raises((ValueError, KeyError), match=message):
        locus.resolve_locus(pilot_workspace, text)


def test_snap_window_limits_and_regions(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    chrom, start, end, b0, b1 = locus.snap_window(ws, "chr1", 151_200_010, 151_300_000)
    assert (start, end) == (151_200_000, 151_300_000) and b1 - b0 == 4000
    with pytest.raises(ValueError, match="too large to draw"):
        locus.snap_window(ws, "chr1", 100_000_000, 110_000_000)
    with pytest.raises(ValueError, match="does not lie within one region"):
        locus.snap_window(ws, "chr1", 1_000_000, 1_100_000)


def test_zoom_pan_and_keep_in_region(pilot_workspace):  # noqa: F811
    assert locus.zoom("chr1", 1000, 4000, 3) == ("chr1", 2000, 3000)
    assert locus.zoom("chr1", 2000, 3000, 1 / 3) == ("chr1", 1000, 4000)
    assert locus.pan("chr1", 1000, 3000, 0.5) == ("chr1", 2000, 4000)
    assert locus.pan("chr1", 500, 2500, -0.5) == ("chr1", 0, 2000)
    prev = {"chrom": "chr1", "start": 151_600_000, "end": 151_650_000}
    # the pilot region ENr231 ends at 151,658,075: panning right stops there
    c, s, e = locus.keep_in_region(pilot_workspace, "chr1", 151_625_000, 151_675_000, prev)
    assert e == 151_658_075 and e - s == 50_000


def test_locus_view_ten_tracks_and_agreement(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    exps = [(b, a) for b in ws.biosamples[:2] for a in ws.assays]
    fig, tracks, window = locus.locus_view(ws, "chr1:151.2M-151.3M", exps)
    fig = go.Figure(fig)  # also checks that the plain-dict figure is valid plotly
    assert window == ("chr1", 151_200_000, 151_300_000)
    assert len(tracks) == 10
    assert fig.layout.meta["n_tracks"] == 10
    labels = [a.text for a in fig.layout.annotations if a.name == "track-label"]
    assert len(labels) == 10
    t = tracks[0]
    from avocado_core import metrics
    assert t.metrics["mse"] == pytest.approx(metrics.mse(t.observed, t.imputed))
    names = [tr for tr in fig.data if tr.name == "gene names"][0].text
    assert "PSMD4" in names


def test_locus_view_without_tracks_draws_the_genes_and_says_so(pilot_workspace):  # noqa: F811
    # The plot shows what the picker says: no track (not the last tracks drawn).
    fig, tracks, window = locus.locus_view(pilot_workspace, "chr1:151.2M-151.3M", [])
    assert tracks == [] and window == ("chr1", 151_200_000, 151_300_000)
    notes = [a["text"] for a in fig["layout"]["annotations"] if a["name"] == "no-tracks"]
    assert notes == ["No track chosen: click cells of the track picker to show tracks."]
    assert {d["name"] for d in fig["data"]} == {"gene names", "exons", "introns", "strand"}
    with pytest.raises(ValueError, match="no experiment selected"):  # nothing to export
        locus.locus_tracks(pilot_workspace, 0, 10, [])


def test_locus_tracks_say_held_out_or_training_fit_and_the_band(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    held, calibration = ws.info["hold_out"]["held_out"], ws.info["hold_out"]["calibration"]
    trained = next((b, a) for b in ws.biosamples for a in ws.assays
                   if [b, a] not in held + calibration)
    chosen = [tuple(held[0]), trained, tuple(calibration[0])]
    fig, tracks, _ = locus.locus_view(ws, "chr1:151,200,000-151,300,000", chosen)
    assert [t.status for t in tracks] == ["held out", "training fit", "imputed only"]
    assert [t.trained for t in tracks] == [False, True, False]
    metric = [a["text"].split("px'>")[1] for a in fig["layout"]["annotations"]
              if a["name"] == "track-label"]
    assert metric[0].startswith("held out: not seen in training · MSE ")
    assert metric[1].startswith("training fit · MSE ") and metric[2] == "imputed only</span>"
    for t in tracks:  # the calibrated band around the (clipped) imputation, never below 0
        assert t.calibrated and t.low.min() >= 0 and np.all(t.imputed >= 0)
        assert np.all(t.low <= t.imputed + 1e-6) and np.all(t.imputed <= t.high + 1e-6)
    band = [d for d in fig["data"] if d["name"] == "90% band"]  # one trace, a shape per track
    band_y = np.frombuffer(base64.b64decode(band[0]["y"]["bdata"]), dtype=np.float32)
    assert len(band) == 1 and np.isnan(band_y).sum() == 2
    table = locus.metrics_table(tracks)
    assert re.findall(r'<td class="status-[a-z-]+">([^<]+)</td>', table) == [
        "held out", "training fit", "imputed only"]


def test_bedgraph_and_parse_tracks(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    _, tracks, _ = locus.locus_view(ws, "chr1:151,200,000-151,201,000", [("E003", "H3K4me3")])
    text = locus.bedgraph_text("chr1", 151_200_000, 25, tracks)
    lines = text.splitlines()
    assert lines[0].startswith('track type=bedGraph name="E003 H3K4me3 observed"')
    assert lines[1].split("\t")[:3] == ["chr1", "151200000", "151200025"]
    # observed, imputed and the band's two bounds (the test workspace is an ensemble)
    assert sum(line.startswith("track") for line in lines) == 4 and len(lines) == 4 + 4 * 40
    assert 'name="E003 H3K4me3 band_low"' in text
    assert lines[0].endswith('description="Avocado observed signal of H3K4me3 in E003, '
                             'arcsinh(-log10 p)"')
    assert locus.parse_tracks("E003|H3K4me3,E999|H3K4me3,E017|H3K27me3", ws) == [
        ("E003", "H3K4me3"), ("E017", "H3K27me3")]
    assert locus.drag_range({"xaxis2.range[0]": 10.5, "xaxis2.range[1]": 2000.2}) == (10, 2000)
    assert locus.drag_range({"autosize": True}) is None
    assert locus.gene_from_click({"points": [{"customdata": "PSMD4"}]}) == "PSMD4"
    assert locus.gene_from_click({"points": [{"x": 1, "y": 2}]}) is None


def _export_tracks() -> list[Track]:
    """Two experiments over 3 bins of known values: one with observed, imputed and a band,
    one imputed only."""
    v = np.array([0.0, 1.0, 2.5], dtype=np.float32)
    return [Track("E065", "H3K4me3", v, v + 1, low=v + 0.5, high=v + 2),
            Track("E003", "H3K27me3", None, v * 2)]


def _parse_bedgraph(text: str) -> tuple[str, pd.DataFrame]:
    track, *rows = text.splitlines()
    table = pd.read_csv(io.StringIO("\n".join(rows)), sep="\t", header=None,
                        names=["chrom", "start", "end", "value"])
    return track, table


def test_locus_exports_in_log10p_are_sinh_of_the_stored_values():
    tracks, v = _export_tracks(), np.array([0.0, 1.0, 2.5])
    for units, expect in (("arcsinh", v), ("log10p", np.sinh(v))):
        csv = locus_export.csv_text("chr1", 1_000, 25, tracks, units)
        header = csv.splitlines()[0]
        assert header == ("chrom,start,end,E065.H3K4me3.observed,E065.H3K4me3.imputed,"
                          "E065.H3K4me3.band_low,E065.H3K4me3.band_high,E003.H3K27me3.imputed")
        table = pd.read_csv(io.StringIO(csv))
        assert table["start"].tolist() == [1_000, 1_025, 1_050]
        np.testing.assert_allclose(table["E065.H3K4me3.observed"], expect, rtol=5e-4)
        np.testing.assert_allclose(table["E065.H3K4me3.band_high"],
                                   np.sinh(v + 2) if units == "log10p" else v + 2, rtol=5e-4)
        text = locus_export.bedgraph_text("chr1", 1_000, 25, tracks, units)
        assert text.count("track type=bedGraph") == 5
        track, rows = _parse_bedgraph(text.split("\ntrack ")[0])  # the first series
        assert track.endswith(f', {locus_export.EXPORT_UNITS[units]}"')
        np.testing.assert_allclose(rows["value"], expect, rtol=5e-4)
    # by hand: sinh(2.5) = 6.0502, sinh(3.5) = 16.543, sinh(3) = 10.018, sinh(4.5) = 45.003,
    # sinh(5) = 74.203, to 4 significant digits
    assert csv.splitlines()[-1] == "chr1,1050,1075,6.05,16.54,10.02,45,74.2"
    with pytest.raises(ValueError, match="unknown units 'p'"):
        locus_export.csv_text("chr1", 1_000, 25, tracks, "p")


def test_locus_bedgraph_zip_holds_one_file_per_series():
    tracks, v = _export_tracks(), np.array([0.0, 1.0, 2.5])
    data = locus_export.bedgraph_zip("chr1", 1_000, 25, tracks, "log10p")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {n: z.read(n).decode() for n in z.namelist()}
    window = "chr1_1000_1075"
    expected = {"E065.H3K4me3.observed": v, "E065.H3K4me3.imputed": v + 1,
                "E065.H3K4me3.band_low": v + 0.5, "E065.H3K4me3.band_high": v + 2,
                "E003.H3K27me3.imputed": v * 2}
    assert sorted(files) == sorted(f"{s}.{window}.bedGraph" for s in expected)
    for series, values in expected.items():
        track, rows = _parse_bedgraph(files[f"{series}.{window}.bedGraph"])
        b, a, kind = series.split(".")
        assert track == (f'track type=bedGraph name="{b} {a} {kind}" description="Avocado '
                         f'{kind} signal of {a} in {b}, -log10 p"')
        assert rows[["chrom", "start"]].values.tolist() == [["chr1", 1_000], ["chr1", 1_025],
                                                            ["chr1", 1_050]]
        np.testing.assert_allclose(rows["value"], np.sinh(values), rtol=5e-4)
    # the multi-track bedGraph is the same series, one after the other
    assert "".join(files[f"{s}.{window}.bedGraph"] for s in expected) == \
        locus_export.bedgraph_text("chr1", 1_000, 25, tracks, "log10p")
    assert data == locus_export.bedgraph_zip("chr1", 1_000, 25, tracks, "log10p")  # no dates


# ---------------------------------------------------------------------- embeddings: pure helpers
def test_embedding_view_biosamples_and_genome(synthetic_workspace):  # noqa: F811
    ws = synthetic_workspace
    fig, caption, n = embeddings.embedding_view(ws, "biosamples", "umap", "all", "anatomy")
    assert n == len(ws.biosamples) and caption.startswith(f"{n} biosamples")
    assert all("(" in t.name for t in fig.data)
    fig, caption, n = embeddings.embedding_view(ws, "genome", "pca", "all", "signal",
                                                (ws.biosamples[0], ws.assays[0], "imputed"))
    assert "Sample of 4,000 of 4,000 positions" in caption
    assert fig.data[0].marker.showscale
    fig, caption, _ = embeddings.embedding_view(ws, "genome", "umap", "5kbp", None)
    assert fig is None and "has not been computed" in caption
    with pytest.raises(ValueError, match="unknown axis"):
        embeddings.embedding_view(ws, "cells", "umap", "all", None)


def test_embedding_genome_sample_of_the_pilot(pilot_workspace):  # noqa: F811
    fig, caption, n = embeddings.embedding_view(pilot_workspace, "genome", "pca", "all", "class")
    assert n == 100_000
    assert caption.startswith("Sample of 100,000 of 1,126,469 positions stratified")
    assert {t.name.split(" (")[0] for t in fig.data} >= {"promoter", "gene body", "other"}
    assert all(t.type == "scattergl" for t in fig.data)
    # the hover names the nearest gene: every gene-body position lies in one
    assert "nearest gene: %{customdata[3]}" in fig.data[0].hovertemplate
    body = next(t for t in fig.data if t.name.startswith("gene body"))
    assert all(str(cd[3]).startswith("in ") for cd in body.customdata)
    assert fig.layout.clickmode == "event"  # a click opens the locus instead of selecting


def test_nearest_gene_labels():
    labels = embeddings.nearest_gene_labels(["MYC", "MYC", "MYC", None], [0, 2_300, 850, -1])
    assert labels.tolist() == ["in MYC", "MYC (2.3 kb)", "MYC (850 bp)",
                               "none on this chromosome"]


def test_selection_ids_and_links(synthetic_workspace):  # noqa: F811
    ws = synthetic_workspace
    ids = embeddings.selection_ids({"points": [{"customdata": ["S001", "LIVER"]},
                                               {"customdata": ["S002", "BLOOD"]}]})
    assert ids == ["S001", "S002"]
    links = embeddings.selection_links(ws, "biosamples", ids)
    hrefs = [link.href for link in links]
    assert hrefs == ["/locus?biosamples=S001,S002", "/design?candidates=S001,S002"]
    assert embeddings.saved_selection_id(ws, "biosamples", ids, "all") is None  # in the URL
    bins = list(range(400, 1400, 4))  # 250 genome positions: saved, the URL gets an id
    sel_id = embeddings.saved_selection_id(ws, "genome", bins, "all")
    assert len(sel_id) == 12 and embeddings.saved_selection_id(ws, "genome", bins, "all") == sel_id
    to_locus, to_design, bed = embeddings.selection_links(ws, "genome", bins, sel_id)
    assert to_locus.href == f"/locus?selection={sel_id}"
    assert to_design.href == f"/design?positions={sel_id}"
    assert "250 selected positions" in to_locus.children and bed.id == "emb-bed"
    lines = embeddings.selection_bed_text(ws, sel_id).splitlines()
    first = lines[0].split("\t")
    assert len(lines) == 250 and first[:4] == ["chr1", "10000", "10025", "selected_1"]


def test_small_axes_say_pca_and_label_their_points(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    fig, caption, n = embeddings.embedding_view(ws, "biosamples", "umap", "all", "anatomy")
    assert caption == ("5 biosamples · PCA of the biosample embedding (UMAP needs at least 8 "
                       "biosamples; with 5 the map is PCA)")
    assert sorted(t for tr in fig.data for t in tr.text) == sorted(ws.biosamples)
    assert all(tr.mode == "markers+text" for tr in fig.data)
    umap, pca = embeddings.method_options(ws, "assays")
    assert umap["disabled"] and not pca.get("disabled")
    assert not embeddings.method_options(ws, "genome")[0]["disabled"]


# ---------------------------------------------------------------------- design: pure helpers
def test_biosample_design_counts_profiled_as_chosen(synthetic_workspace):  # noqa: F811
    ws = synthetic_workspace
    status = ws.status()
    assay = ws.assays[0]
    picks = design.biosample_design(ws, assay, 5)
    profiled = set(status.index[status[assay] == "observed"])
    assert len(picks) == 5 and not set(picks["biosample"]) & profiled
    assert set(picks.attrs["profiled"]) == profiled
    assert np.all(np.diff(picks["gain"]) <= 1e-9)  # diminishing returns
    assert "anatomy" in picks.columns
    brain = design.biosample_design(ws, assay, 3, column="anatomy", values=["BRAIN"])
    assert set(brain["anatomy"]) == {"BRAIN"}
    with pytest.raises(ValueError, match="k must be between"):
        design.biosample_design(ws, assay, 0)
    with pytest.raises(ValueError, match="no biosample has anatomy"):
        design.biosample_design(ws, assay, 3, column="anatomy", values=["MARS"])


def test_pilot_design_needs_reranking(pilot_workspace):  # noqa: F811
    # E065's H3K4me3 (a calibration experiment) was removed from the test store: the only
    # biosample still without the assay
    picks = design.biosample_design(pilot_workspace, "H3K4me3", 1)
    assert list(picks["biosample"]) == ["E065"]
    with pytest.raises(ValueError, match="exceeds the 1 candidate"):
        design.biosample_design(pilot_workspace, "H3K4me3", 2)
    picks = design.biosample_design(pilot_workspace, "H3K4me3", 3, rerank_profiled=True)
    assert len(picks) == 3 and picks["biosample"].is_unique


def test_an_upload_is_placed_on_the_design_map(pilot_app, pilot_workspace):  # noqa: F811
    """A placed biosample whose fitted row is a known biosample's lands on its point, and the
    design page's map draws it as its own, named trace."""
    ws = pilot_workspace
    proj = ws.projection("biosamples", "umap")
    known = proj["name"].iloc[2]
    nearest = pd.DataFrame({"biosample": [known], "distance": [0.0]})
    row = np.asarray(ws.model.biosample_embedding())[list(ws.model.biosamples).index(known)]
    nearest.attrs.update(name="my upload", embedding=row.tolist())
    placed = design_upload.placed_point(ws, nearest, proj)
    np.testing.assert_allclose(placed[["x", "y"]].to_numpy()[0],
                               proj[["x", "y"]].to_numpy()[2], atol=1e-5)
    assert placed["note"].iloc[0].startswith("placed by")
    picks = design.biosample_design(ws, "H3K4me3", 1)
    result = design.design_result(picks, proj, "H3K4me3", None)
    client = pilot_app.server.test_client()
    outputs = outputs_of(pilot_app, "design-summary.children")
    out = post_callback(client, outputs,
                        [("design-result", "data", result),
                         ("design-placed", "data", placed.to_dict("records"))],
                        changed=["design-placed.data"])
    traces = out["design-picks-graph"]["figure"]["data"]
    assert traces[-1]["name"] == "my upload (uploaded)" and traces[-1]["text"] == ["my upload"]
    assert traces[-1]["customdata"][0][1] == placed["note"].iloc[0]
    assert "picked (1)" in [t["name"] for t in traces]
    alone = post_callback(client, outputs, [("design-result", "data", result),
                                            ("design-placed", "data", None)])
    assert not any("uploaded" in t["name"]
                   for t in alone["design-picks-graph"]["figure"]["data"])


def test_position_design_and_bed(pilot_workspace):  # noqa: F811
    picks = design.position_design(pilot_workspace, 10, klass="promoter")
    assert (picks["class"] == "promoter").all() and len(picks) == 10
    bed = design.bed_text(picks).splitlines()
    assert len(bed) == 10
    chrom, start, end, name, score = bed[0].split("\t")
    assert chrom.startswith("chr") and int(end) - int(start) == 25 and name == "pick1"


# ---------------------------------------------------------------------- callbacks over HTTP
def test_pages_render_from_the_url(synthetic_app):
    from dashboard.pages import design as d
    from dashboard.pages import embeddings as e
    from dashboard.pages import locus as lo

    with synthetic_app.server.test_request_context():
        page = e.layout(axis="genome", method="pca", color="chrom", sel="1,2,3")
        assert "Genome positions" in json.dumps(page.to_plotly_json(), default=str)
        lo.layout(locus="chr1:1,000-2,000", tracks="S001|DNase")
        d.layout(assay="H3K4me3", k="4", candidates="S001,S002")
    client = synthetic_app.server.test_client()
    for path in ("/", "/locus", "/design"):
        assert client.get(path).status_code == 200


def test_locus_callback_draws_and_alerts(pilot_app):
    client = pilot_app.server.test_client()
    tracks = [["E003", "H3K4me3"], ["E017", "H3K4me3"]]

    def call(text, changed="locus-go.n_clicks", current=None):
        return draw_locus(client, text, tracks, changed, current)

    out = call("chr1:151.2M-151.3M")
    assert out["locus-input"]["value"] == "chr1:151,200,000-151,300,000"
    # the address bar follows in the same response
    url = out["locus-url"]["data"]
    assert url == {"path": "/locus", "query": "?locus=chr1:151,200,000-151,300,000&tracks="
                                              "E003|H3K4me3,E017|H3K4me3"}
    assert out["locus-metrics"]["children"].count("<tr><td>") == 2
    assert "100 kb" in text_of(out["locus-span"]["children"])
    zoomed = call("ignored", "locus-in.n_clicks", out["locus-current"]["data"])
    cur = zoomed["locus-current"]["data"]
    assert cur["end"] - cur["start"] == pytest.approx(100_000 / 3, abs=50)
    bad = call("chr1:151.3M-151.2M")
    assert "reversed" in text_of(bad["locus-alert"]["children"])
    assert "locus-graph" not in bad and "locus-url" not in bad  # the old view stays
    gene = call("NOSUCHGENE")
    assert "NOSUCHGENE" in text_of(gene["locus-alert"]["children"])
    wide = call("chr1:100,000,000-120,000,000")
    assert "too large to draw" in text_of(wide["locus-alert"]["children"])
    # a 5,000-digit coordinate: the locus box's own alert, not a page-wide error
    huge = call("chr1:" + "9" * 5000 + "-" + "9" * 5001)
    assert "too large" in text_of(huge["locus-alert"]["children"])
    assert "global-alert" not in huge and "locus-graph" not in huge


def test_a_pan_scroll_or_box_zoom_relayout_gives_the_new_window():
    # a drag (pan) or a scroll (zoom) on any row: both ends, as numbers
    assert locus.drag_range({"xaxis.range[0]": 151_250_000.4,
                             "xaxis.range[1]": 151_350_000.9}) == (151_250_000, 151_350_000)
    assert locus.drag_range({"xaxis3.range[0]": 1_000, "xaxis3.range[1]": 301_000}) == (
        1_000, 301_000)
    # the whole range at once, or reversed ends
    assert locus.drag_range({"xaxis.range": [2_000.0, 12_000.0]}) == (2_000, 12_000)
    assert locus.drag_range({"xaxis2.range[0]": 900, "xaxis2.range[1]": 100}) == (100, 900)
    # a pan left of the chromosome's start keeps its span, from 0
    assert locus.drag_range({"xaxis.range[0]": -4_000, "xaxis.range[1]": 6_000}) == (0, 10_000)
    # not a new window: a resize, a reset, half a range, a y-axis
    for relayout in ({"autosize": True}, {"xaxis.autorange": True}, {"xaxis.range[0]": 5},
                     {"yaxis2.range[0]": 0, "yaxis2.range[1]": 3}, {"dragmode": "zoom"}, None):
        assert locus.drag_range(relayout) is None
    # a scroll zooms the x-axis only; the box zoom stays in the modebar
    assert locus.GRAPH_CONFIG["scrollZoom"] is True
    assert "zoom2d" not in locus.GRAPH_CONFIG["modeBarButtonsToRemove"]


def test_a_pan_relayout_redraws_the_panned_window(pilot_app):
    client = pilot_app.server.test_client()
    relayout = {"xaxis2.range[0]": 151_250_000.0, "xaxis2.range[1]": 151_350_000.0}
    out = post_callback(client, [("locus-drag", "data")],
                        [("locus-graph", "relayoutData", relayout)],
                        changed=["locus-graph.relayoutData"])
    dragged = out["locus-drag"]["data"]
    assert dragged == [151_250_000, 151_350_000]
    current = {"chrom": "chr1", "start": 151_200_000, "end": 151_300_000}
    out = draw_locus(client, "ignored", [["E003", "H3K4me3"]], "locus-drag.data", current,
                     dragged=dragged)
    drawn = out["locus-current"]["data"]
    assert (drawn["chrom"], drawn["start"], drawn["end"]) == ("chr1", 151_250_000, 151_350_000)
    assert out["locus-input"]["value"] == "chr1:151,250,000-151,350,000"
    assert out["locus-graph"]["figure"]["layout"]["xaxis"]["range"] == [151_250_000,
                                                                        151_350_000]
    # a scroll out past the widest window: the page's alert, the old view stays
    wide = draw_locus(client, "ignored", [["E003", "H3K4me3"]], "locus-drag.data", current,
                      dragged=[150_000_000, 153_000_000])
    assert "too large to draw" in text_of(wide["locus-alert"]["children"])
    assert "locus-graph" not in wide
    # a pan past the pilot region's end (151,658,075) slides back, keeping the 100 kb
    edge = draw_locus(client, "ignored", [["E003", "H3K4me3"]], "locus-drag.data", current,
                      dragged=[151_600_000, 151_700_000])["locus-current"]["data"]
    assert edge["end"] == 151_658_075 and edge["end"] - edge["start"] == 100_000


def test_the_y_scale_reaches_the_figure_and_the_address(pilot_app):
    client = pilot_app.server.test_client()
    tracks = [["E003", "H3K4me3"], ["E017", "H3K4me3"]]
    shared = draw_locus(client, "chr1:151.2M-151.3M", tracks)
    own = draw_locus(client, "chr1:151.2M-151.3M", tracks, scale="track")
    ranges = {name: out["locus-graph"]["figure"]["layout"]["meta"]["ranges"]
              for name, out in (("shared", shared), ("own", own))}
    assert ranges["shared"][0] == ranges["shared"][1]  # two H3K4me3 tracks, one range
    assert ranges["own"][0] != ranges["own"][1]
    assert max(r[1] for r in ranges["own"]) == ranges["shared"][0][1]
    assert own["locus-url"]["data"]["query"].endswith("&scale=track")
    assert "scale" not in shared["locus-url"]["data"]["query"]
    with pilot_app.server.test_request_context():  # the scale from the address
        assert find(locus.layout(scale="track"), "locus-scale").value == "track"
        assert find(locus.layout(scale="huge"), "locus-scale").value == "assay"
    bad = draw_locus(client, "chr1:151.2M-151.3M", tracks, scale="huge")
    assert "unknown y scale 'huge'" in text_of(bad["locus-alert"]["children"])


def test_locus_export_callback_units_and_zip(pilot_app, pilot_workspace):  # noqa: F811
    client = pilot_app.server.test_client()
    # the alert is a duplicate output: its property carries the callback's hash
    key = next(k for k in pilot_app.callback_map if k.startswith("..locus-download.data..."))
    alert_prop = key.removesuffix("..").rsplit(".", 1)[1]
    current = {"chrom": "chr1", "start": 151_200_000, "end": 151_201_000}
    _, tracks, _ = locus.locus_view(pilot_workspace, "chr1:151,200,000-151,201,000",
                                    [("E003", "H3K4me3")])

    def export(button, units):
        inputs = [(b, "n_clicks", 1 if b == button else None)
                  for b in ("locus-bedgraph", "locus-bedgraph-zip", "locus-csv")]
        state = [("locus-current", "data", current),
                 ("locus-tracks", "data", [["E003", "H3K4me3"]]), ("locus-units", "value", units)]
        out = post_callback(client, [("locus-download", "data"), ("locus-alert", alert_prop)],
                            inputs, state, [f"{button}.n_clicks"])
        assert out["locus-alert"] == {"children": None}
        return out["locus-download"]["data"]

    sent = export("locus-bedgraph-zip", "log10p")
    assert sent["filename"] == "avocado_chr1_151200000_151201000.bedGraph.zip" and sent["base64"]
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(sent["content"]))) as z:
        names = z.namelist()
        imputed = z.read("E003.H3K4me3.imputed.chr1_151200000_151201000.bedGraph").decode()
    assert names == [f"E003.H3K4me3.{k}.chr1_151200000_151201000.bedGraph"
                     for k in ("observed", "imputed", "band_low", "band_high")]
    track, rows = _parse_bedgraph(imputed)
    assert track.endswith(', -log10 p"') and len(rows) == 40
    np.testing.assert_allclose(rows["value"], np.sinh(tracks[0].imputed), rtol=5e-4, atol=1e-6)
    sent = export("locus-csv", "log10p")
    assert sent["filename"] == "avocado_chr1_151200000_151201000.log10p.csv"
    assert sent["content"].startswith("chrom,start,end,")
    table = pd.read_csv(io.StringIO(sent["content"]))
    np.testing.assert_allclose(table["E003.H3K4me3.observed"], np.sinh(tracks[0].observed),
                               rtol=5e-4, atol=1e-6)
    sent = export("locus-bedgraph", "arcsinh")  # the multi-track bedGraph, stored units
    assert sent["filename"] == "avocado_chr1_151200000_151201000.bedGraph"
    assert sent["content"].count(', arcsinh(-log10 p)"\n') == 4


def test_track_picker_callback_toggles_cells(pilot_app):
    client = pilot_app.server.test_client()
    click = {"points": [{"x": "H3K27me3", "y": "E065 · Aorta"}]}  # y: the row's label
    out = post_callback(client, PICKER_OUTPUTS, picker_inputs(click=click),
                        [("locus-tracks", "data", [["E003", "H3K4me3"]])],
                        ["locus-picker.clickData"])
    assert out["locus-tracks"]["data"] == [["E003", "H3K4me3"], ["E065", "H3K27me3"]]
    assert out["locus-picked-count"]["children"] == "2 tracks chosen"
    assert out["locus-chosen"]["value"] == ["E003|H3K4me3", "E065|H3K27me3"]
    out = post_callback(client, PICKER_OUTPUTS, picker_inputs(click=click),
                        [("locus-tracks", "data", out["locus-tracks"]["data"])],
                        ["locus-picker.clickData"])
    assert out["locus-tracks"]["data"] == [["E003", "H3K4me3"]]
    # colouring by uncertainty redraws the picker only (the tracks stay: no redraw)
    out = post_callback(client, PICKER_OUTPUTS, picker_inputs(color="band"),
                        [("locus-tracks", "data", [["E003", "H3K4me3"]])],
                        ["locus-picker-color.value"])
    assert "locus-tracks" not in out and "locus-chosen" not in out
    heats = [t for t in out["locus-picker"]["figure"]["data"] if t["type"] == "heatmap"]
    assert sum(t["showscale"] for t in heats) == 1


def test_embedding_callback_and_url_state(synthetic_app):
    client = synthetic_app.server.test_client()
    outputs = [("emb-graph", "figure"), ("emb-caption", "children"), ("emb-missing", "children"),
               ("emb-compute", "hidden"), ("emb-total", "data"), ("emb-alert", "children")]
    inputs = [("emb-axis", "value", "biosamples"), ("emb-method", "value", "pca"),
              ("emb-res", "value", "all"), ("emb-color", "value", "anatomy"),
              ("emb-exp-biosample", "value", "S001"), ("emb-exp-assay", "value", "DNase"),
              ("emb-exp-kind", "value", "auto"), ("emb-version", "data", 0)]
    out = post_callback(client, outputs, inputs, [("emb-selection", "data", [])],
                        ["emb-color.value"])
    assert out["emb-total"]["data"] == 240
    legend = [t["name"] for t in out["emb-graph"]["figure"]["data"]]
    assert any(name.startswith("LIVER (") for name in legend)
    url = post_callback(client, [("emb-url", "data")],
                        inputs[:7] + [("emb-selection", "data", ["S001", "S002"]),
                                      ("emb-selection-id", "data", None)],
                        changed=["emb-selection.data"])
    assert url["emb-url"]["data"]["query"] == ("?axis=biosamples&method=pca&color=anatomy"
                                               "&sel=S001,S002")
    url = post_callback(client, [("emb-url", "data")],
                        inputs[:7] + [("emb-selection", "data", ["S001", "S002"]),
                                      ("emb-selection-id", "data", "0123456789ab")],
                        changed=["emb-selection-id.data"])
    assert url["emb-url"]["data"]["query"].endswith("&selid=0123456789ab")


def test_embedding_click_on_a_genome_point_opens_its_locus(synthetic_app):
    """A click on the genome map sends the locus page a 20 kb window centred on the point's
    bin (block, at 5 kbp); a click on the biosample map selects and goes nowhere."""
    client = synthetic_app.server.test_client()
    outputs = outputs_of(synthetic_app, "emb-nav.href")
    assert [i for i, _ in outputs] == ["emb-nav", "emb-alert"]

    def click(axis, point, res="all"):
        return post_callback(client, outputs, [("emb-graph", "clickData",
                                                {"points": [{"customdata": point}]})],
                             [("emb-axis", "value", axis), ("emb-res", "value", res)],
                             ["emb-graph.clickData"])

    # synthetic positions are 25 bp bins from chr1:0: bin 800 is chr1:20,000-20,025
    out = click("genome", [800, "chr1:20,000"])
    assert out["emb-nav"]["href"] == "/locus?locus=chr1:10,012-30,012"
    assert click("genome", [800], "5kbp")["emb-nav"]["href"] == "/locus?locus=chr1:12,500-32,500"
    assert click("genome", [0])["emb-nav"]["href"] == "/locus?locus=chr1:0-20,000"  # kept >= 0
    assert click("biosamples", ["S001", "LIVER"]) == {}
    alert = click("genome", ["not-a-bin"])["emb-alert"]["children"]
    assert "names no bin" in text_of(alert)


# ---------------------------------------------------------------------- serving
def test_wsgi_reads_the_workspace_from_the_environment(synthetic_workspace, monkeypatch,  # noqa: F811
                                                       tmp_path):
    import importlib
    import sys

    monkeypatch.setenv("AVOCADO_WORKSPACE", str(synthetic_workspace.path))
    monkeypatch.setenv("AVOCADO_CACHE_DIR", str(tmp_path / "cache"))
    sys.modules.pop("dashboard.wsgi", None)
    wsgi = importlib.import_module("dashboard.wsgi")
    client = wsgi.server.test_client()
    assert client.get("/design").status_code == 200
    assert wsgi.server.debug is False
    monkeypatch.delenv("AVOCADO_WORKSPACE")
    sys.modules.pop("dashboard.wsgi", None)
    with pytest.raises(ValueError, match="set AVOCADO_WORKSPACE"):
        importlib.import_module("dashboard.wsgi")


def test_requests_are_size_limited(synthetic_workspace, tmp_path):  # noqa: F811
    app = create_app(synthetic_workspace, background_dir=str(tmp_path), max_upload_bytes=1000)
    client = app.server.test_client()
    r = client.post("/_dash-update-component", data=b"x" * 5000,
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413


# ---------------------------------------------------------------------- a new biosample
def test_decode_upload_checks():

    ok = "data:application/octet-stream;base64," + base64.b64encode(b"abc").decode()
    assert design_upload.decode_upload(ok, "a.bw", 10) == b"abc"
    with pytest.raises(ValueError, match="choose a bigWig"):
        design_upload.decode_upload(None, None, 10)
    with pytest.raises(ValueError, match="limited to"):
        design_upload.decode_upload(ok, "a.bw", 2)
    with pytest.raises(ValueError, match="could not be read"):
        design_upload.decode_upload("garbage", "a.bw", 10)


def test_fit_new_biosample_from_a_bigwig(pilot_workspace, tmp_path, data_mirror):  # noqa: F811
    from avocado_core.bigwig import export_bigwig

    ws = pilot_workspace
    path = export_bigwig(ws.store, "E116", "H3K4me3", tmp_path / "new.bw", invert_transform=True)
    nearest = design_upload.fit_new_biosample(ws, path, "GM-new", "H3K4me3", n_epochs=1)
    assert sorted(nearest["biosample"]) == sorted(ws.biosamples)
    assert nearest["distance"].is_monotonic_increasing
    assert nearest.attrs["covered"] > 0.5
    assert "GM-new" not in ws.model.biosamples  # the served model is untouched
    with pytest.raises(ValueError, match="already exists"):
        design_upload.fit_new_biosample(ws, path, "E003", "H3K4me3")
    fly = data_mirror / "bigwig-real" / "bigwig_chrx_2e6_5e6.bw"
    with pytest.raises(ValueError, match="no signal over the workspace's regions"):
        design_upload.fit_new_biosample(ws, fly, "fly", "H3K4me3")
    text = tmp_path / "notes.bw"
    text.write_text("not a bigwig\n")
    with pytest.raises(ValueError, match="not a readable bigWig"):
        design_upload.fit_new_biosample(ws, text, "x", "H3K4me3")


def test_upload_errors_name_the_uploaded_file(pilot_workspace, tmp_path,  # noqa: F811
                                               data_mirror):
    truncated = (data_mirror / "bigwig-real" / "bigwig_chrx_2e6_5e6.bw").read_bytes()[:128]
    with pytest.raises(ValueError) as info:
        design_upload.fit_uploaded_bigwig(pilot_workspace, truncated, "my-sample.bw", "new",
                                          "H3K4me3", str(tmp_path))
    message = str(info.value)
    assert "'my-sample.bw' is not a readable bigWig file" in message
    assert str(tmp_path) not in message and "upload.bw" not in message
    assert not list(tmp_path.iterdir())  # the temporary copy is gone


def test_the_apps_temporary_folder_goes_when_it_stops(synthetic_workspace, tmp_path,  # noqa: F811
                                                      monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    from dashboard.app import TEMP_PREFIX, close_app

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # the folder of a server that was killed (kill -9): its process is gone
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"{TEMP_PREFIX}{dead}-abc"
    (stale / "background").mkdir(parents=True)
    app = create_app(synthetic_workspace)
    temp = app.server.config["AVOCADO_TEMP_DIR"]
    assert not stale.exists()  # removed when the next app starts
    assert os.path.dirname(temp) == str(tmp_path) and f"{TEMP_PREFIX}{os.getpid()}-" in temp
    assert os.path.isdir(os.path.join(temp, "background"))  # the jobs' diskcache
    app.server.config["AVOCADO_CLOSE"]()  # what `avocado serve` calls when it stops
    assert not os.path.exists(temp)
    close_app(app)  # twice is harmless


# ---------------------------------------------------------------------- a genome selection
def test_a_saved_genome_selection_reaches_the_locus_and_design_pages(pilot_workspace):  # noqa: F811
    from avocado_core.saved_selections import save_selection

    ws = pilot_workspace
    regions = ws.store.regions
    b0, _ = regions.locus_bins("chr1:151,200,000-151,300,000")
    promoters = np.flatnonzero(ws.bin_classes == "promoter")
    bins = [b0, b0 + 1, b0 + 3000, *promoters[:300:3].tolist()]  # 3 near PSMD4 + 100 promoters
    sel_id = save_selection(ws.path, "genome", bins)
    windows = locus.selection_windows(ws, sel_id).windows
    assert windows[0].startswith("chr1:") and len(windows) <= len(bins)
    spans = [locus.parse_locus(w) for w in windows]
    psmd4 = [s for s in spans if s[1] <= 151_200_000 < s[2]]
    # the points near PSMD4 (and promoters close to them) share one window, with 20 kb of
    # context on each side of the outermost ones
    assert len(psmd4) == 1 and psmd4[0][1] <= 151_180_000 and psmd4[0][2] >= 151_295_025
    assert spans == sorted(spans, key=lambda s: (regions.locus_bins(s)[0]))
    mask = design.selection_mask(ws, sel_id)
    assert mask.sum() == len(set(bins))
    picks = design.position_design(ws, 5, positions=sel_id)
    assert len(picks) == 5 and mask[picks["bin"].to_numpy()].all()
    with pytest.raises(ValueError, match="not a selection id"):
        locus.selection_windows(ws, "nope")


def test_synthetic_signal_is_labelled_in_the_top_bar(synthetic_app, pilot_app):
    def badge(app):
        return "synthetic-badge" in json.dumps(app.layout.to_plotly_json(), default=str)

    assert badge(synthetic_app) and not badge(pilot_app)


def test_the_job_launcher_builds_the_app_without_loading_the_model(pilot_workspace,  # noqa: F811
                                                                 monkeypatch):
    """The launcher forks every job: a model loaded in it (torch's threads) hangs the forked
    jobs, so building its app (the top bar included) reads no weights."""
    from avocado_core.workspace import Workspace

    def refuse(self):
        raise AssertionError("the job launcher loaded the model")

    monkeypatch.setattr(Workspace, "model", property(refuse))
    app = create_app(pilot_workspace.path, _launcher=True)
    assert "settings chosen" in json.dumps(app.layout().to_plotly_json()
                                           if callable(app.layout)
                                           else app.layout.to_plotly_json(), default=str)


def test_the_top_bar_says_what_training_chose(pilot_app, synthetic_app):
    """The pilot's models chose their settings on validation tracks (the default): the badge
    counts the models and its tooltip says what was chosen; the synthetic one chose nothing."""
    def model_badge(app):
        shell = app.layout() if callable(app.layout) else app.layout
        return next(c for c in shell._traverse() if getattr(c, "id", None) == "model-badge")

    pilot = model_badge(pilot_app)
    assert pilot.children == "2 models · settings chosen"
    assert pilot.title.startswith("Chosen on validation tracks split off the training tracks: ")
    assert "per biosample: E003 blend" in pilot.title and "validation tracks" in pilot.title
    plain = model_badge(synthetic_app)
    assert plain.children == "1 model" and plain.title == "Settings as given at training"


# ---------------------------------------------------------------------- damaged selections
def find(component, component_id):
    """The element of a layout with this id."""
    return next(c for c in component._traverse() if getattr(c, "id", None) == component_id)


@pytest.mark.parametrize("content, problem", [
    (b"[10, 20]", "holds a JSON list"),
    (b'{"axis": "genome", "ids": [10, 20], "n_bins": [1]}', "'n_bins' has 1 values for 2"),
    (b'{"axis": "genome", "ids": [10, ', "not valid JSON"),
    (b"\x89PNG\r\n\x1a\n", "not UTF-8 text"),
])
def test_a_damaged_saved_selection_is_an_alert_naming_it_on_every_page(
        pilot_app, pilot_workspace, content, problem):  # noqa: F811
    from avocado_core.saved_selections import save_selection

    ws = pilot_workspace
    sel_id = save_selection(ws.path, "genome", [10, 20, 5000])
    path = ws.path / "selections" / f"{sel_id}.json"
    original = path.read_bytes()
    path.write_bytes(content)
    try:
        with pilot_app.server.test_request_context():
            pages = [(locus.layout(selection=sel_id), "locus-url-alert"),
                     (design.layout(positions=sel_id), "design-pos-alert"),
                     (embeddings.layout(axis="genome", method="pca", selid=sel_id),
                      "emb-url-alert")]
            for page, alert_id in pages:
                text = text_of(find(page, alert_id))
                assert text.startswith(f"saved selection {sel_id} (selections/{sel_id}.json) "
                                       "is damaged: ") and problem in text
        # the actions that read it later say the same
        for action in (lambda: design.position_design(ws, 3, positions=sel_id),
                       lambda: embeddings.selection_bed_text(ws, sel_id),
                       lambda: locus.selection_marks(ws, sel_id, "chr1", 0, 10_000)):
            with pytest.raises(ValueError, match=f"saved selection {sel_id} .* is damaged"):
                action()
    finally:
        path.write_bytes(original)


# ---------------------------------------------------------------------- long user text
MB = 1_000_000


@pytest.mark.parametrize("text, what", [
    ("A" * MB, "gene"),                      # looked up as a gene name
    ("chr1:" + "a" * MB, "cannot parse locus"),
    ("chr1 " + "1" * MB, "is neither a locus"),
    ("chr1:" + "1" * MB + "-2", "is too large"),
])
def test_a_megabyte_typed_in_the_locus_box_is_echoed_cut(pilot_app, text, what):
    out = draw_locus(pilot_app.server.test_client(), text, [["E003", "H3K4me3"]])
    message = text_of(out["locus-alert"]["children"])
    assert what in message and len(message) < 300
    assert f"({len(text):,} characters)" in message or "(1,000,0" in message


def test_every_message_that_echoes_user_input_is_cut(pilot_app, pilot_workspace):  # noqa: F811
    from dashboard.components import MAX_MESSAGE_CHARS, alert, error_message

    ws, long = pilot_workspace, "x" * MB
    client = pilot_app.server.test_client()
    label = post_callback(client, [("design-upload-label", "children")],
                          [("design-upload", "filename", long + ".bw")],
                          changed=["design-upload.filename"])
    assert len(text_of(label["design-upload-label"]["children"])) < 200
    checks = [
        (lambda: design_upload.decode_upload("garbage", long, 10), "could not be read"),
        (lambda: design.biosample_design(ws, "H3K4me3", long), "k must be a whole number"),
        (lambda: design.candidate_pool(ws, long, ["a"]), "unknown metadata column"),
        (lambda: design.position_design(ws, 3, resolution=long), "unknown resolution"),
        (lambda: embeddings.embedding_view(ws, long, "pca", "all", None), "unknown axis"),
        (lambda: locus.selection_windows(ws, long), "is not a selection id"),
        (lambda: ws.annotations.gene(long), "is not in the annotations"),
    ]
    for action, what in checks:
        with pytest.raises((ValueError, KeyError)) as info:
            action()
        message = error_message(info.value)
        assert what in message and f"({MB:,} characters)" in message and len(message) < 300
    with pilot_app.server.test_request_context():  # a URL parameter: ?selection=<1 MB>
        page = locus.layout(selection=long)
    assert "is not a selection id" in text_of(find(page, "locus-url-alert"))
    # and any message an alert shows, whatever made it
    assert len(alert("y" * MB).children) <= MAX_MESSAGE_CHARS + 30


# ---------------------------------------------------------------------- the track picker
def test_no_track_chosen_draws_no_track_and_keeps_it_in_the_address(pilot_app):
    out = draw_locus(pilot_app.server.test_client(), "chr1:151.2M-151.3M", [],
                     changed="locus-tracks.data")
    fig = out["locus-graph"]["figure"]
    assert [a["name"] for a in fig["layout"]["annotations"]].count("no-tracks") == 1
    assert "<tr><td>" not in out["locus-metrics"]["children"]
    assert out["locus-alert"]["children"] is None
    query = out["locus-url"]["data"]["query"]
    assert query == "?locus=chr1:151,200,000-151,300,000&tracks="
    with pilot_app.server.test_request_context():  # that address opens with no track chosen
        page = locus.layout(locus="chr1:151,200,000-151,300,000", tracks="")
    assert find(page, "locus-tracks").data == []
    assert find(page, "locus-picked-count").children == "0 tracks chosen"


# ---------------------------------------------------------------------- the selection navigator
def _dense_selection(ws, start=151_250_000, end=151_650_000, every=25):
    """Every 25th bin (625 bp apart, a lasso's density) over 400 kb of chr1."""
    from avocado_core.saved_selections import save_selection

    b0, b1 = ws.store.regions.locus_bins(("chr1", start, end))
    bins = np.arange(b0, b1, every)
    return save_selection(ws.path, "genome", bins.tolist()), bins


def test_the_navigator_steps_from_region_to_region_and_marks_positions(pilot_app,
                                                                       pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    sel_id, bins = _dense_selection(ws)
    nav = locus.selection_windows(ws, sel_id)
    spans = [locus.parse_locus(w) for w in nav.windows]
    assert nav.n_points == len(bins) == 640 and not nav.sampled
    assert nav.summary() == "640 selected positions in 3 regions (±20 kb of context)"
    # disjoint windows of at most 200 kb that hold every selected position
    assert all(e - s <= locus.SELECTION_WINDOW_BP for _, s, e in spans)
    assert all(s2 >= e1 for (_, _, e1), (_, s2, _) in zip(spans, spans[1:]))
    _, starts = ws.store.regions.bin_coordinates(bins)
    inside = np.zeros(len(bins), dtype=bool)
    for _, s, e in spans:
        inside |= (starts >= s) & (starts + 25 <= e)
    assert inside.all()
    # "next" moves to the next region: past everything in view
    client = pilot_app.server.test_client()
    step = post_callback(client, [("locus-sel-region", "value")],
                         [("locus-sel-prev", "n_clicks", None), ("locus-sel-next", "n_clicks", 1)],
                         [("locus-sel-region", "value", nav.windows[0]),
                          ("locus-sel-region", "options", nav.windows)],
                         ["locus-sel-next.n_clicks"])
    assert step["locus-sel-region"]["value"] == nav.windows[1]
    # the selected positions are marked in the plot
    out = draw_locus(client, nav.windows[1], [["E003", "H3K4me3"]],
                     changed="locus-sel-region.value", selection=sel_id, region=nav.windows[1])
    fig = out["locus-graph"]["figure"]
    _, s, e = spans[1]
    shown = starts[(starts >= s) & (starts < e)]
    marks = [(m["x0"], m["x1"]) for m in fig["layout"]["shapes"] if m["name"] == "selected"]
    # one mark per position (625 bp apart, wider than the two pixels a mark takes at least)
    assert len(marks) == len(shown) and all(a <= p and p + 25 <= b
                                            for (a, b), p in zip(marks, shown))
    assert [d["name"] for d in fig["data"]].count("selected positions") == 1


def test_a_navigator_that_samples_says_so(pilot_workspace, monkeypatch):  # noqa: F811
    ws = pilot_workspace
    promoters = np.flatnonzero(ws.bin_classes == "promoter")
    from avocado_core.saved_selections import save_selection

    sel_id = save_selection(ws.path, "genome", promoters.tolist())
    full = locus.selection_windows(ws, sel_id)
    monkeypatch.setattr(locus, "MAX_SELECTION_WINDOWS", 10)
    nav = locus.selection_windows(ws, sel_id)
    assert nav.sampled and len(nav.windows) == 10 and nav.n_windows == full.n_windows > 10
    assert nav.windows[0] == full.windows[0] and nav.windows[-1] == full.windows[-1]
    assert nav.summary().endswith(f"; the list shows 10 of the {full.n_windows:,} regions, "
                                  "evenly spaced along the genome")


# ---------------------------------------------------------------------- design defaults, numbers
def test_the_design_default_k_works_on_the_workspace_and_k_messages(pilot_app,
                                                                    pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    with pilot_app.server.test_request_context():
        page = design.layout()
    assay = find(page, "design-assay").value
    k = find(page, "design-k").value
    cand, _ = design.design_candidates(ws, assay)
    assert len(cand) == 1 and k == 1  # one biosample lacks each assay in the test workspace
    assert text_of(find(page, "design-k-hint").children) == (
        f"1 biosample ({cand[0]}) can be picked for {assay}: k is at most 1.")
    assert list(design.biosample_design(ws, assay, k)["biosample"]) == cand
    # no min / max on the box: the browser sends 0 as 0, not as None
    assert getattr(find(page, "design-k"), "min", None) is None
    for value, message in ((None, "k is empty: type a whole number between 1 and 200"),
                           (0, "k must be between 1 and 200, got 0"),
                           (2.5, "k must be a whole number between 1 and 200, got 2.5"),
                           (201, "k must be between 1 and 200, got 201")):
        with pytest.raises(ValueError, match=message):
            design.biosample_design(ws, assay, value)
    with pytest.raises(ValueError, match=rf"k=4 exceeds the 1 candidate biosample for {assay} "
                                         rf"\({cand[0]}\): choose k of at most 1; or tick"):
        design.biosample_design(ws, assay, 4)
    hint = post_callback(pilot_app.server.test_client(), [("design-k-hint", "children")],
                         [("design-assay", "value", assay), ("design-rerank", "value", ["rerank"]),
                          ("design-filter-col", "value", None),
                          ("design-filter-values", "value", [])],
                         [("design-candidates", "data", [])], ["design-rerank.value"])
    assert hint["design-k-hint"]["children"] == (
        f"5 biosamples ({', '.join(ws.biosamples)}) can be picked for {assay}: k is at most 5.")


def test_numbers_are_shown_to_three_significant_digits():
    from dashboard.components import significant

    table = pd.DataFrame({"biosample": ["E017", "E003"],
                          "distance": np.float32([0.487, 12.3456]),
                          "gain": [0.000123456, 5e-9]})
    data = design._table(table, "t", ["biosample", "distance", "gain"]).data
    assert data == [{"biosample": "E017", "distance": 0.487, "gain": 0.000123},
                    {"biosample": "E003", "distance": 12.3, "gain": 5e-9}]
    assert json.dumps(data[0]["distance"]) == "0.487"
    assert significant([np.nan, 0.0, -2.345e6]).tolist()[1:] == [0.0, -2.34e6]


# ---------------------------------------------------------------------- placing a partial upload
def test_a_track_of_one_chromosome_lands_nearest_its_own_biosample(placement_workspace,  # noqa: F811
                                                                   tmp_path):
    """IMR90 (E017) H3K27me3 cut to chr7, a fifth of the bins, placed as a new biosample: fitted
    on the bins it covers it lands nearest E017, as the whole track does (fitted with the
    other 80 % as zero signal it landed 4th)."""
    ws = placement_workspace
    regions = ws.store.regions
    chr7 = regions.bin_coordinates(np.arange(regions.n_bins))[0] == "chr7"
    path = one_chromosome_bigwig(ws, "E017", "H3K27me3", "chr7", tmp_path / "imr90.chr7.bw")
    nearest = design_upload.fit_new_biosample(ws, path, "IMR90-chr7", "H3K27me3",
                                       n_epochs=design_upload.FIT_EPOCHS)
    assert nearest["biosample"].iloc[0] == "E017"
    assert nearest.attrs["n_covered"] == chr7.sum() == 226_212
    assert design_upload.coverage_text(nearest).startswith(
        "The file covers 20% of the workspace's bins (226,212 of 1,126,469); the fit used those "
        "only")
    placement = design_upload.placement_text(nearest)
    assert placement.startswith("Placement: E017 · IMR90 fetal lung fibroblasts Cell Line is ")
    assert "typical distance" in placement
