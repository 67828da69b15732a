"""The track picker at ENCODE's size (dashboard.picker_query, dashboard.pages.locus_picker) and
the names beside ids (dashboard.names): known-answer tables, then the callbacks on the reduced
ENCODE-layout workspace through Dash's HTTP endpoint."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from app_client import PICKER_OUTPUTS, outputs_of, picker_inputs, post_callback, text_of
from app_workspaces import encode_layout_workspace  # noqa: F401  (fixture)
from dashboard.app import create_app
from dashboard.figures.picker import HEADER
from dashboard.names import labels_of, names_of, preferred_column, short_assay_labels, with_names
from dashboard.pages import design, design_upload, locus
from dashboard.pages.locus_picker import chosen_options, picker_context
from dashboard.picker_query import PickerQuery, app_status, query_view

STATUS = pd.DataFrame([["observed", "imputed", "imputed"],
                       ["imputed", "observed", "held out"],
                       ["observed", "observed", "imputed"],
                       ["imputed", "imputed", "imputed"]],
                      index=["B1", "B2", "B3", "B4"], columns=["A1", "A2", "A3"])
BIOSAMPLES = pd.DataFrame({"type": ["cell line", "tissue", "tissue", "cell line"],
                           "summary": ["K562 nuclear", "liver adult", "lung fetal", "HepG2"]},
                          index=STATUS.index)
ASSAYS = pd.DataFrame({"kind": ["active mark", "active mark", "factor"],
                       "target": ["H3K4me3", "H3K27ac", "CTCF"]}, index=STATUS.columns)


def view(**query):
    embedding = pd.Series({"B1": 0.5, "B2": -1.0, "B3": 2.0, "B4": 0.0})
    return query_view(app_status(STATUS, has_model=True), PickerQuery(**query),
                      biosample_meta=BIOSAMPLES, assay_meta=ASSAYS, row_facet="type",
                      col_facet="kind", embedding=embedding)


# ---------------------------------------------------------------------- the query, pure
def test_words_facets_and_status_narrow_the_cells_and_count_each_facet():
    everything = view()
    assert everything.n_cells == 12 and everything.summary() == (
        "12 of 12 cells shown · 4 of 4 biosamples × 3 of 3 assays")
    # grouped by type (alphabetical), columns by kind; ids inside a group
    assert list(everything.status.index) == ["B1", "B4", "B2", "B3"]
    assert list(everything.row_groups) == ["cell line", "cell line", "tissue", "tissue"]
    # every word must occur, in the id or any text column, in any case
    assert list(view(biosample_text="LIVER adult").status.index) == ["B2"]
    assert view(biosample_text="liver fetal").n_cells == 0
    assert list(view(assay_text="ctcf").status.columns) == ["A3"]
    # observed only: the rows and columns without an observed cell go, hidden cells are ""
    observed = view(statuses=("observed",))
    assert observed.n_cells == 4 and list(observed.status.columns) == ["A1", "A2"]
    assert list(observed.status.index) == ["B1", "B2", "B3"]
    assert observed.status.loc["B1", "A2"] == "" and observed.status.loc["B3", "A2"] == "observed"
    assert observed.row_counts == {"cell line": 1, "tissue": 2}
    assert observed.col_counts == {"active mark": 2}
    # a facet counts with the other filters, not its own: tissue kept, cell lines still counted
    tissue = view(row_values=("tissue",))
    assert list(tissue.status.index) == ["B2", "B3"]
    assert tissue.row_counts == {"cell line": 2, "tissue": 2}
    assert tissue.status_counts == {"observed": 3, "held out": 1, "imputed": 2, "missing": 0}
    # the model imputes every other cell: none is "missing" in the app
    assert everything.status_counts["missing"] == 0
    assert (app_status(STATUS.replace("imputed", "missing"), has_model=False) == "missing"
            ).to_numpy().sum() == 7
    # a lasso's biosamples
    assert list(view(biosamples=("B3", "B1")).status.index) == ["B1", "B3"]


def test_rows_ordered_by_experiments_or_by_the_embedding():
    by_count = view(row_order="experiments", group_rows=False)
    assert list(by_count.status.index) == ["B2", "B3", "B1", "B4"]  # 2, 2, 1, 0 measured
    assert by_count.row_groups is None
    assert list(view(row_order="embedding", group_rows=False).status.index) == [
        "B2", "B4", "B1", "B3"]
    # inside groups
    assert list(view(row_order="embedding").status.index) == ["B4", "B1", "B2", "B3"]
    with pytest.raises(ValueError, match="unknown row order 'size'"):
        view(row_order="size")


def test_names_beside_ids():
    meta = pd.DataFrame({"summary": ["K562 nuclear fraction", None], "term": ["K562", "x"]},
                        index=["J004", "J005"])
    assert list(labels_of(meta, ["J004", "J005", "J999"])) == [
        "J004 · K562 nuclear fraction", "J005", "J999"]
    assert list(names_of(None, ["E003"])) == [""]
    pilot = pd.DataFrame({"description": ["H1 Cells"]}, index=["E003"])
    assert list(labels_of(pilot, ["E003"])) == ["E003 · H1 Cells"]
    assays = pd.DataFrame({"technique": ["ChIP-seq", "polyA_RNA-seq", "DNase-seq"],
                           "target": ["H3K4me3", "", ""], "strand": ["", "minus", ""]},
                          index=["ChIP-seq_H3K4me3_signal_p-value",
                                 "polyA_RNA-seq_minus_strand_signal_of_all_reads",
                                 "DNase-seq_read-depth_normalized_signal"])
    assert list(short_assay_labels(assays, assays.index)) == ["H3K4me3", "polyA_RNA-seq −",
                                                              "DNase-seq"]
    assert list(short_assay_labels(None, ["H3K4me3"])) == ["H3K4me3"]
    # a facet groups rows: five anatomies of five biosamples group nothing
    assert preferred_column(pd.DataFrame({"a": list("abcde")}), ["a"]) is None
    assert preferred_column(BIOSAMPLES, ["anatomy", "type"]) == "type"


def test_names_beside_ids_in_design_tables():
    """A "name" column right after the ids; none where no biosample has a name."""
    picks = pd.DataFrame({"rank": [1, 2], "biosample": ["B3", "B1"], "gain": [0.5, 0.25],
                          "coverage": [0.5, 0.75]})
    named = with_names(picks, BIOSAMPLES)
    assert list(named.columns) == ["rank", "biosample", "name", "gain", "coverage"]
    assert list(named["name"]) == ["lung fetal", "K562 nuclear"]
    assert list(with_names(picks, pd.DataFrame({"summary": ["B1"]}, index=["B1"]))
                .columns) == list(picks.columns)  # a name that is the id adds nothing
    assert with_names(picks, None) is picks and with_names(picks, BIOSAMPLES[["type"]]) is picks

    def columns(table):
        return [c["id"] for c in table.columns]

    full = picks.merge(BIOSAMPLES, left_on="biosample", right_index=True)
    assert columns(design.picks_table(full, BIOSAMPLES)) == [
        "rank", "biosample", "name", "type", "gain", "coverage"]  # not the summary twice
    nameless = full.drop(columns="summary")
    assert columns(design.picks_table(nameless, BIOSAMPLES[["type"]])) == [
        "rank", "biosample", "type", "gain", "coverage"]
    nearest = pd.DataFrame({"biosample": ["B2", "B4"], "distance": [0.1, 0.9]}).merge(
        BIOSAMPLES, left_on="biosample", right_index=True)
    table = design.nearest_table(nearest, BIOSAMPLES)
    assert columns(table) == ["biosample", "name", "distance", "type"]
    assert [r["name"] for r in table.data] == ["liver adult", "HepG2"]
    assert columns(design.nearest_table(nearest[["biosample", "distance", "type"]], None)) == [
        "biosample", "distance", "type"]
    nearest.attrs["spacing"] = 1.0
    assert design_upload.placement_text(nearest).startswith(
        "Placement: B2 · liver adult is clearly the nearest")


def test_lasso_tracks_and_track_order(encode_layout_workspace):  # noqa: F811
    ws = encode_layout_workspace
    status = ws.status()
    few = list(ws.biosamples[:4])
    tracks = locus.biosample_tracks(ws, few)
    assays = list(dict.fromkeys(a for _, a in tracks))
    assert len(assays) == 3 and tracks[:4] == [(b, assays[0]) for b in few]
    measured = status.loc[few].isin(["observed", "held out"]).sum()
    assert measured[assays[0]] == measured.max()  # the assay most of them measured first
    many = locus.biosample_tracks(ws, list(ws.biosamples))
    assert len(many) == locus.MAX_TRACKS and len({a for _, a in many}) == 1
    chosen = [("B1", "A1"), ("B2", "A2"), ("B1", "A2"), ("B3", "A1")]
    assert locus.arrange(chosen, "assay") == [("B1", "A1"), ("B3", "A1"), ("B2", "A2"),
                                              ("B1", "A2")]
    assert locus.arrange(chosen, "biosample") == [("B1", "A1"), ("B1", "A2"), ("B2", "A2"),
                                                  ("B3", "A1")]
    with pytest.raises(ValueError, match="unknown track order"):
        locus.arrange(chosen, "size")


# ---------------------------------------------------------------------- the page, over HTTP
@pytest.fixture(scope="module")
def encode_app(encode_layout_workspace, tmp_path_factory):  # noqa: F811
    return create_app(encode_layout_workspace,
                      background_dir=str(tmp_path_factory.mktemp("bg-encode")))


def _rows(figure: dict) -> list[str]:
    return [re.sub("<[^>]+>", "", t) for t in figure["layout"]["yaxis"]["ticktext"]]


def test_the_picker_filters_counts_and_toggles_by_label(encode_app,
                                                        encode_layout_workspace):  # noqa: F811
    ws = encode_layout_workspace
    meta = ws.biosample_metadata()
    client = encode_app.server.test_client()
    state = [("locus-tracks", "data", [])]
    out = post_callback(client, PICKER_OUTPUTS, picker_inputs(bio_text="adrenal"), state,
                        ["picker-bio-text.value"])
    adrenal = meta.index[meta["summary"].str.contains("adrenal")]
    n_assays = len(ws.assays)
    assert out["picker-summary"]["children"] == (
        f"{len(adrenal) * n_assays:,} of {len(meta) * n_assays:,} cells shown · {len(adrenal)} "
        f"of {len(meta)} biosamples × {n_assays} of {n_assays} assays")
    assert "locus-tracks" not in out  # a filter leaves the tracks as they are
    figure = out["locus-picker"]["figure"]
    assert _rows(figure)[0] == f"tissue · {len(adrenal)}"  # the group's header, then its rows
    assert figure["layout"]["yaxis"]["categoryarray"][1:] == [
        f"{b} · {meta.loc[b, 'summary']}" for b in adrenal]
    types = {o["value"]: o["label"] for o in out["picker-row-values"]["options"]}
    assert types == {"tissue": f"tissue ({len(adrenal)})"}
    kinds = ws.assay_metadata()["kind"].value_counts()
    assert {o["label"] for o in out["picker-col-values"]["options"]} == {
        f"{k} ({v})" for k, v in kinds.items()}
    # a click names the row by its label: exactly that experiment is toggled
    b = adrenal[0]
    assay = ws.assays[0]
    click = {"points": [{"x": assay, "y": f"{b} · {meta.loc[b, 'summary']}"}]}
    out = post_callback(client, PICKER_OUTPUTS, picker_inputs(click=click, bio_text="adrenal"),
                        state, ["locus-picker.clickData"])
    assert out["locus-tracks"]["data"] == [[b, assay]]
    assert out["locus-chosen"]["value"] == [f"{b}|{assay}"]
    assert out["locus-picked-count"]["children"] == "1 track chosen"
    # a click on a group's header (it has no cell to click: a stray event) changes nothing
    header = {"points": [{"x": assay, "y": HEADER + "tissue"}]}
    assert post_callback(client, PICKER_OUTPUTS, picker_inputs(click=header), state,
                         ["locus-picker.clickData"]) == {}
    # the chosen-tracks list (the keyboard's way): what it holds is what is chosen
    listed = [f"{b}|{a}" for a in ws.assays[:2]]
    out = post_callback(client, PICKER_OUTPUTS, picker_inputs(listed=listed), state,
                        ["locus-chosen.value"])
    assert out["locus-tracks"]["data"] == [[b, a] for a in ws.assays[:2]]
    # nothing matches: it says so
    out = post_callback(client, PICKER_OUTPUTS, picker_inputs(bio_text="zzz"), state,
                        ["picker-bio-text.value"])
    assert out["picker-summary"]["children"].startswith("No cell matches: 0 of ")


def test_the_chosen_list_offers_what_is_typed(encode_layout_workspace):  # noqa: F811
    ws = encode_layout_workspace
    pc = picker_context(ws)
    b = pc.row_labels.index[pc.row_labels.str.contains("adrenal")][0]
    chosen = [(b, ws.assays[0])]
    options = chosen_options(pc, chosen, "adrenal ctcf")
    assert options[0] == {"value": f"{b}|{ws.assays[0]}",
                          "label": pc.experiment_label(b, ws.assays[0])}
    offered = [o["label"] for o in options[1:]]
    assert offered and all("adrenal" in o and "CTCF" in o for o in offered)
    assert all(re.search(r"\((observed|imputed)\)$", o) for o in offered)
    assert len(chosen_options(pc, [], "a")) == 50  # the first matches only
    assert chosen_options(pc, [], None) == []


def test_a_lasso_opens_the_locus_page_on_its_biosamples(encode_app,
                                                        encode_layout_workspace):  # noqa: F811
    ws = encode_layout_workspace
    group = list(ws.biosamples[:3])
    with encode_app.server.test_request_context():
        page = locus.layout(biosamples=",".join(group + ["nobody"]))
    tracks = next(c for c in _walk(page) if getattr(c, "id", None) == "locus-tracks").data
    assert [tuple(t) for t in tracks] == locus.biosample_tracks(ws, group)
    only = next(c for c in _walk(page) if getattr(c, "id", None) == "picker-biosamples")
    assert only.value == group
    figure = next(c for c in _walk(page) if getattr(c, "id", None) == "locus-picker").figure
    assert len([r for r in _rows(figure) if re.match(r"J\d{3} · ", r)]) == 3
    assert "3 of 40 biosamples" in text_of(
        next(c for c in _walk(page) if getattr(c, "id", None) == "picker-summary"))
    with encode_app.server.test_request_context():  # the view from the address
        page = locus.layout(height="compact", order="assay")
    values = {c.id: c.value for c in _walk(page) if getattr(c, "id", None) in (
        "locus-height", "locus-order")}
    assert values == {"locus-height": "compact", "locus-order": "assay"}
    from dashboard.pages import embeddings

    with encode_app.server.test_request_context():  # names beside ids in the map's choices
        page = embeddings.layout(axis="genome", color="signal")
    choice = next(c for c in _walk(page) if getattr(c, "id", None) == "emb-exp-biosample")
    meta = ws.biosample_metadata()
    assert choice.options[0] == {"label": f"{group[0]} · {meta.loc[group[0], 'summary']}",
                                 "value": group[0]}


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            yield from _walk(child)


def test_forty_tracks_compact_and_grouped_by_assay(encode_layout_workspace):  # noqa: F811
    ws = encode_layout_workspace
    status = ws.status()
    chosen = [(b, a) for a in status.columns[:4] for b in status.index[:10]][::-1]
    fig, tracks, _ = locus.locus_view(ws, "chr1:0-50,000", chosen, height="compact",
                                      order="assay")
    # rows of 36 px, 6 px apart, and the margins (76 px)
    assert len(tracks) == 40 and fig["layout"]["height"] == 40 * 42 - 6 + 76
    assays = [t.assay for t in tracks]
    assert assays == sorted(assays, key=assays.index)  # each assay's tracks together
    labels = [a["text"] for a in fig["layout"]["annotations"] if a["name"] == "track-label"]
    meta = ws.biosample_metadata()
    t = tracks[0]
    assert labels[0].startswith(
        f"<b>{t.biosample} · {meta.loc[t.biosample, 'summary']} · {t.assay}</b>  ")
    with pytest.raises(ValueError, match="at most 40"):
        locus.locus_view(ws, "chr1:0-50,000", chosen + [(status.index[11], status.columns[0])])
    with pytest.raises(ValueError, match="unknown track height"):
        locus.locus_view(ws, "chr1:0-50,000", chosen[:1], height="huge")
    # the address keeps the view (and only what is not the default)
    current = {"chrom": "chr1", "start": 0, "end": 50_000}
    url = locus.page_url(current, chosen[:1], None, "compact", "assay")["query"]
    assert url.endswith("&height=compact&order=assay")
    assert "height" not in locus.page_url(current, chosen[:1], None)["query"]


def test_a_map_is_coloured_by_groups_not_by_a_name_per_point():
    from types import SimpleNamespace

    from dashboard.pages import embeddings

    n = 50
    meta = pd.DataFrame({"summary": [f"tissue {i}" for i in range(n)],
                         "type": ["cell line", "tissue"] * (n // 2),
                         "n_observed": np.arange(n)}, index=[f"J{i:03d}" for i in range(n)])
    ws = SimpleNamespace(biosample_metadata=lambda: meta)
    assert [c["value"] for c in embeddings.color_choices(ws, "biosamples")] == [
        "type", "n_observed"]
    few = SimpleNamespace(biosample_metadata=lambda: meta.head(5))  # five: one colour each
    assert "summary" in [c["value"] for c in embeddings.color_choices(few, "biosamples")]


def test_pca_maps_say_their_share_of_the_variance(encode_layout_workspace):  # noqa: F811
    from dashboard.pages import embeddings

    ws = encode_layout_workspace
    fig, _, _ = embeddings.embedding_view(ws, "biosamples", "pca", "all", "type")
    share = ws.projection("biosamples", "pca").attrs["explained_variance"]
    assert fig.layout.xaxis.title.text == f"PC1 · {100 * share[0]:.1f} % of variance"
    assert fig.layout.yaxis.title.text == f"PC2 · {100 * share[1]:.1f} % of variance"
    assert 0 < share[1] <= share[0] and share[0] + share[1] <= 1
    meta = ws.biosample_metadata()
    b = fig.data[0].customdata[0]
    assert b[1] == f"{b[0]} · {meta.loc[b[0], 'summary']}"  # names on hover
    assays, _, n = embeddings.embedding_view(ws, "assays", "pca", "all", "kind")
    short = short_assay_labels(ws.assay_metadata(), ws.assays)
    assert sorted(t for tr in assays.data for t in tr.text) == sorted(short)
    assert n == len(ws.assays) and np.isfinite(assays.data[0].x).all()


def test_design_results_name_their_biosamples(encode_app, encode_layout_workspace):  # noqa: F811
    """The picks table, the map's and the curve's hovers say the ENCODE names beside the ids."""
    ws = encode_layout_workspace
    known = {"J000": "KMS-11", "J014": "epithelial cell of proximal tubule",
             "J028": "chorion male embryo (16 weeks)"}
    picks = design.biosample_design(ws, ws.assays[0], 3, candidates=list(known),
                                    rerank_profiled=True)
    result = design.design_result(picks, ws.projection("biosamples", "pca"), ws.assays[0],
                                  list(known))
    client = encode_app.server.test_client()
    out = post_callback(client, outputs_of(encode_app, "design-summary.children"),
                        [("design-result", "data", result), ("design-placed", "data", None)],
                        changed=["design-result.data"])
    table = out["design-table"]["children"]["props"]
    assert [c["id"] for c in table["columns"]] == [
        "rank", "biosample", "name", "group", "term", "type", "gain", "coverage"]
    assert {r["biosample"]: r["name"] for r in table["data"]} == known
    labels = [f"{b} · {known[b]}" for b in picks["biosample"]]
    picked = out["design-picks-graph"]["figure"]["data"][-1]
    assert picked["customdata"] == labels
    assert picked["text"] == [f"#{i} {label}" for i, label in enumerate(labels, 1)]
    other = out["design-picks-graph"]["figure"]["data"][0]  # hover: every point has its name
    assert all(" · " in c for c in other["customdata"])
    for trace in out["design-gains-graph"]["figure"]["data"]:
        assert trace["customdata"] == labels
