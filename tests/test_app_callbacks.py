"""The pages' logic without a browser: pure helpers, and callbacks through Dash's HTTP endpoint."""

from __future__ import annotations

import base64
import json

import numpy as np
import plotly.graph_objects as go
import pytest

from app_workspaces import pilot_workspace, synthetic_workspace  # noqa: F401  (fixtures)
from dashboard.app import create_app
from dashboard.pages import design, embeddings, locus


# ---------------------------------------------------------------------- helpers
def post_callback(client, outputs, inputs, state=(), changed=()):
    """Call a callback the way the browser does; returns {id: {prop: value}} or raises."""
    outs = [{"id": i, "property": p} for i, p in outputs]
    key = (f"{outputs[0][0]}.{outputs[0][1]}" if len(outputs) == 1
           else ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..")
    payload = {
        "output": key,
        "outputs": outs[0] if len(outs) == 1 else outs,
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": list(changed),
    }
    r = client.post("/_dash-update-component", json=payload)
    if r.status_code == 204:
        return {}
    assert r.status_code == 200, r.data[:500]
    return json.loads(r.data)["response"]


def text_of(component) -> str:
    """All text inside a serialized Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, list):
        return " ".join(text_of(c) for c in component)
    if isinstance(component, dict):
        return text_of(component.get("props", {}).get("children"))
    return ""


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


def test_locus_view_errors(pilot_workspace):  # noqa: F811
    with pytest.raises(ValueError, match="no experiment selected"):
        locus.locus_view(pilot_workspace, "chr1:151.2M-151.3M", [])


def test_locus_tracks_say_held_out_or_training_fit_and_the_band(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    held, calibration = ws.info["hold_out"]["held_out"], ws.info["hold_out"]["calibration"]
    trained = next((b, a) for b in ws.biosamples for a in ws.assays
                   if [b, a] not in held + calibration)
    chosen = [tuple(held[0]), trained, tuple(calibration[0])]
    fig, tracks, _ = locus.locus_view(ws, "chr1:151,200,000-151,300,000", chosen)
    assert [t.status for t in tracks] == ["held out", "training fit", "imputed only"]
    assert [t.trained for t in tracks] == [False, True, False]
    metric = [a["text"] for a in fig["layout"]["annotations"] if a["name"] == "track-metric"]
    assert metric[0].startswith("held out: not seen in training · MSE ")
    assert metric[1].startswith("training fit · MSE ") and metric[2] == "imputed only"
    for t in tracks:  # the calibrated band around the (clipped) imputation, never below 0
        assert t.calibrated and t.low.min() >= 0 and np.all(t.imputed >= 0)
        assert np.all(t.low <= t.imputed + 1e-6) and np.all(t.imputed <= t.high + 1e-6)
    assert sum(1 for d in fig["data"] if d["name"] == "90% band") == 3
    rows = locus.metrics_rows(tracks)
    assert [r.children[2].children for r in rows] == ["held out", "training fit", "imputed only"]


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
    assert locus.parse_tracks("E003|H3K4me3,E999|H3K4me3,E017|H3K27me3", ws) == [
        ("E003", "H3K4me3"), ("E017", "H3K27me3")]
    assert locus.drag_range({"xaxis2.range[0]": 10.5, "xaxis2.range[1]": 2000.2}) == (10, 2000)
    assert locus.drag_range({"autosize": True}) is None
    assert locus.gene_from_click({"points": [{"customdata": "PSMD4"}]}) == "PSMD4"
    assert locus.gene_from_click({"points": [{"x": 1, "y": 2}]}) is None


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


def test_selection_ids_and_links(synthetic_workspace):  # noqa: F811
    ws = synthetic_workspace
    ids = embeddings.selection_ids({"points": [{"customdata": ["S001", "LIVER"]},
                                               {"customdata": ["S002", "BLOOD"]}]})
    assert ids == ["S001", "S002"]
    links = embeddings.selection_links(ws, "biosamples", ids)
    hrefs = [link.href for link in links]
    assert hrefs[0].startswith("/locus?tracks=S001|") and hrefs[1] == "/design?candidates=S001,S002"
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
    outputs = [("locus-graph", "figure"), ("locus-current", "data"), ("locus-input", "value"),
               ("locus-span", "children"), ("locus-metrics", "children"),
               ("locus-url", "data"), ("locus-alert", "children")]
    tracks = [["E003", "H3K4me3"], ["E017", "H3K4me3"]]

    def call(text, changed="locus-go.n_clicks", current=None):
        inputs = [("locus-go", "n_clicks", 1), ("locus-input", "n_submit", None),
                  ("locus-in", "n_clicks", None), ("locus-out", "n_clicks", None),
                  ("locus-left", "n_clicks", None), ("locus-right", "n_clicks", None),
                  ("locus-gene-click", "data", None), ("locus-drag", "data", None),
                  ("locus-tracks", "data", tracks), ("locus-sel-region", "value", None)]
        if changed == "locus-in.n_clicks":
            inputs[2] = ("locus-in", "n_clicks", 1)
        state = [("locus-input", "value", text), ("locus-current", "data", current),
                 ("locus-selection", "data", None)]
        return post_callback(client, outputs, inputs, state, [changed])

    out = call("chr1:151.2M-151.3M")
    assert out["locus-input"]["value"] == "chr1:151,200,000-151,300,000"
    # the address bar follows in the same response
    url = out["locus-url"]["data"]
    assert url == {"path": "/locus", "query": "?locus=chr1:151,200,000-151,300,000&tracks="
                                              "E003|H3K4me3,E017|H3K4me3"}
    assert len(out["locus-metrics"]["children"]) == 2
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


def test_track_picker_callback_toggles_cells(pilot_app):
    client = pilot_app.server.test_client()
    outputs = [("locus-tracks", "data"), ("locus-picker", "figure"),
               ("locus-picked-count", "children")]
    click = {"points": [{"x": "H3K27me3", "y": "E065"}]}
    inputs = [("locus-picker", "clickData", click), ("locus-clear", "n_clicks", None),
              ("locus-picker-color", "value", "status")]
    out = post_callback(client, outputs, inputs,
                        [("locus-tracks", "data", [["E003", "H3K4me3"]])],
                        ["locus-picker.clickData"])
    assert out["locus-tracks"]["data"] == [["E003", "H3K4me3"], ["E065", "H3K27me3"]]
    assert out["locus-picked-count"]["children"] == "2 tracks chosen"
    out = post_callback(client, outputs, inputs,
                        [("locus-tracks", "data", out["locus-tracks"]["data"])],
                        ["locus-picker.clickData"])
    assert out["locus-tracks"]["data"] == [["E003", "H3K4me3"]]
    # colouring by uncertainty redraws the picker only (the tracks stay: no redraw)
    out = post_callback(client, outputs, inputs[:2] + [("locus-picker-color", "value", "band")],
                        [("locus-tracks", "data", [["E003", "H3K4me3"]])],
                        ["locus-picker-color.value"])
    assert set(out) == {"locus-picker"}
    heat = out["locus-picker"]["figure"]["data"][0]
    z = heat["z"]  # plotly sends numeric arrays base64-encoded
    z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]) if "bdata" in z else z
    assert heat["showscale"] and z.size == 25 and np.isfinite(np.asarray(z, float)).all()


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
    import base64

    ok = "data:application/octet-stream;base64," + base64.b64encode(b"abc").decode()
    assert design.decode_upload(ok, "a.bw", 10) == b"abc"
    with pytest.raises(ValueError, match="choose a bigWig"):
        design.decode_upload(None, None, 10)
    with pytest.raises(ValueError, match="limited to"):
        design.decode_upload(ok, "a.bw", 2)
    with pytest.raises(ValueError, match="could not be read"):
        design.decode_upload("garbage", "a.bw", 10)


def test_fit_new_biosample_from_a_bigwig(pilot_workspace, tmp_path, data_mirror):  # noqa: F811
    from avocado_core.bigwig import export_bigwig

    ws = pilot_workspace
    path = export_bigwig(ws.store, "E116", "H3K4me3", tmp_path / "new.bw", invert_transform=True)
    nearest = design.fit_new_biosample(ws, path, "GM-new", "H3K4me3", n_epochs=1)
    assert sorted(nearest["biosample"]) == sorted(ws.biosamples)
    assert nearest["distance"].is_monotonic_increasing
    assert nearest.attrs["covered"] > 0.5
    assert "GM-new" not in ws.model.biosamples  # the served model is untouched
    with pytest.raises(ValueError, match="already exists"):
        design.fit_new_biosample(ws, path, "E003", "H3K4me3")
    fly = data_mirror / "bigwig-real" / "bigwig_chrx_2e6_5e6.bw"
    with pytest.raises(ValueError, match="no signal over the workspace's regions"):
        design.fit_new_biosample(ws, fly, "fly", "H3K4me3")
    text = tmp_path / "notes.bw"
    text.write_text("not a bigwig\n")
    with pytest.raises(ValueError, match="not a readable bigWig"):
        design.fit_new_biosample(ws, text, "x", "H3K4me3")


def test_upload_errors_name_the_uploaded_file(pilot_workspace, tmp_path,  # noqa: F811
                                               data_mirror):
    truncated = (data_mirror / "bigwig-real" / "bigwig_chrx_2e6_5e6.bw").read_bytes()[:128]
    with pytest.raises(ValueError) as info:
        design.fit_uploaded_bigwig(pilot_workspace, truncated, "my-sample.bw", "new", "H3K4me3",
                                   str(tmp_path))
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
    windows = locus.selection_windows(ws, sel_id)
    assert windows[0].startswith("chr1:") and len(windows) <= len(bins)
    spans = [locus.parse_locus(w) for w in windows]
    psmd4 = [s for s in spans if s[1] <= 151_200_000 < s[2]]
    # the two touching bins merged into one 50 bp interval, with 20 kb either side
    assert psmd4 == [("chr1", 151_180_000, 151_220_050)]
    assert ("chr1", 151_255_000, 151_295_025) in spans
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
