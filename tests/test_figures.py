"""Figure builders of the app, as pure functions (no browser, no workspace)."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.figures.embedding import color_kind, embedding_figure
from dashboard.figures.genes import gene_traces, pack_rows
from dashboard.figures.picker import picker_figure
from dashboard.figures.selection import gains_figure, picks_figure
from dashboard.figures.tracks import (Track, format_span, locus_figure, rebin, ruler_ticks,
                                      tracks_table)


# ---------------------------------------------------------------------- re-binning and ruler
def test_rebin_means_equal_chunks():
    values = np.arange(12, dtype=np.float32)
    starts, means = rebin(values, 4)
    np.testing.assert_array_equal(starts, [0, 3, 6, 9])
    np.testing.assert_allclose(means, [1, 4, 7, 10])


def test_rebin_uneven_chunks_match_a_direct_mean():
    rng = np.random.default_rng(0)
    values = rng.normal(size=4001).astype(np.float32)
    starts, means = rebin(values, 1000)
    assert len(starts) == len(means) == 1000
    ends = np.append(starts[1:], len(values))
    expected = [values[s:e].mean() for s, e in zip(starts[:5], ends[:5])]
    np.testing.assert_allclose(means[:5], expected, rtol=1e-5)
    assert values.mean() == pytest.approx(
        np.sum(means * (ends - starts)) / len(values), rel=1e-5)


def test_rebin_leaves_short_windows_alone_and_rejects_zero():
    starts, means = rebin(np.array([1.0, 2.0]), 10)
    np.testing.assert_array_equal(starts, [0, 1])
    np.testing.assert_array_equal(means, [1.0, 2.0])
    with pytest.raises(ValueError, match="n_out"):
        rebin(np.ones(3), 0)


def test_ruler_ticks_are_round_and_inside_the_window():
    values, labels = ruler_ticks(151_200_000, 151_300_000)
    assert values[0] >= 151_200_000 and values[-1] < 151_300_000
    steps = np.diff(values)
    assert len(set(steps)) == 1 and steps[0] in (10_000, 20_000)
    assert labels[0] == "151.20 Mb"
    small, small_labels = ruler_ticks(1_000, 1_800)
    assert small_labels[0] == "1,000"


def test_format_span():
    assert format_span(850) == "850 bp"
    assert format_span(100_000) == "100 kb"
    assert format_span(1_250_000) == "1.25 Mb"


# ---------------------------------------------------------------------- genes
def test_pack_rows_separates_overlapping_genes():
    rows = pack_rows(np.array([0, 50, 200, 60]), np.array([100, 150, 300, 70]))
    assert rows[0] != rows[1]
    assert rows[2] == 0  # after the first gene ends
    assert len(set(rows[[0, 1, 3]])) == 3


def _genes():
    genes = pd.DataFrame({"chrom": "chr1", "start": [1_000, 6_000], "end": [4_000, 9_000],
                          "name": ["GENEA", "GENEB"], "strand": ["+", "-"]})
    exons = pd.DataFrame({"chrom": "chr1", "start": [1_000, 3_500, 6_000, 8_000],
                          "end": [1_200, 4_000, 6_500, 9_000],
                          "name": ["GENEA", "GENEA", "GENEB", "GENEB"]})
    return genes, exons


def test_gene_traces_draw_exons_arrows_and_clickable_names():
    genes, exons = _genes()
    traces = {t.name: t for t in go.Figure(data=gene_traces(genes, exons, 0, 10_000)).data}
    # four exon rectangles: 4 closed polygons of 5 points + a gap each
    assert np.isnan(np.asarray(traces["exons"].x, float)).sum() == 4
    assert list(traces["gene names"].text) == ["GENEA", "GENEB"]
    assert list(traces["gene names"].customdata) == ["GENEA", "GENEB"]
    symbols = np.asarray(traces["strand"].marker.symbol)
    names = np.asarray(traces["strand"].customdata)
    assert set(symbols[names == "GENEA"]) == {"triangle-right"}
    assert set(symbols[names == "GENEB"]) == {"triangle-left"}


# ---------------------------------------------------------------------- locus figure
def _tracks(n=4000):
    rng = np.random.default_rng(1)
    obs = rng.gamma(1.0, 1.0, n).astype(np.float32)
    return [
        Track("E003", "H3K4me3", obs, obs * 0.9, {"mse": 0.12, "pearson": 0.81}),
        Track("E017", "H3K4me3", None, obs * 2),
        Track("E017", "H3K27me3", obs * 0.5, None),
    ]


def typed_values(spec: dict) -> np.ndarray:
    """The numbers of a plotly.js typed array ({"dtype", "bdata"})."""
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))


def test_locus_figure_rows_labels_and_shared_assay_scale():
    genes, exons = _genes()
    tracks = _tracks()
    fig = go.Figure(locus_figure("chr1", 0, 100_000, 25, tracks, genes, exons, width_px=1000))
    labels = [a.text for a in fig.layout.annotations if a.name == "track-label"]
    assert labels == ["<b>E003 · H3K4me3</b>", "<b>E017 · H3K4me3</b>", "<b>E017 · H3K27me3</b>"]
    metrics = [a.text for a in fig.layout.annotations if a.name == "track-metric"]
    assert metrics == ["MSE 0.120 · r 0.81", "imputed only", "observed only"]
    # one y-range for the two H3K4me3 rows, its own for H3K27me3
    assert fig.layout.yaxis.range == fig.layout.yaxis2.range
    assert fig.layout.yaxis3.range[1] < fig.layout.yaxis.range[1]
    # re-binned to the screen width
    drawn = [t for t in fig.data if t.name in ("observed", "imputed")]
    assert max(len(typed_values(t.x)) for t in drawn) == 1000
    # sent as base64 typed arrays (plotly.js decodes them): the values drawn, not a copy
    np.testing.assert_array_equal(typed_values(drawn[0].x)[:3], [0, 100, 200])
    assert typed_values(drawn[0].y).dtype == np.float32
    assert fig.layout.xaxis.range == (0, 100_000)
    assert fig.layout.meta["n_tracks"] == 3
    # legend: observed and imputed once each
    assert sorted(t.name for t in fig.data if t.showlegend) == ["imputed", "observed"]


def test_locus_figure_rejects_windows_of_the_wrong_length():
    with pytest.raises(ValueError, match="4000 bins"):
        locus_figure("chr1", 0, 50_000, 25, _tracks())


def test_tracks_table_has_one_column_per_series():
    table = tracks_table("chr1", 1_000, 25, _tracks(8))
    assert list(table.columns) == ["chrom", "start", "end", "E003.H3K4me3.observed",
                                   "E003.H3K4me3.imputed", "E017.H3K4me3.imputed",
                                   "E017.H3K27me3.observed"]
    assert table["start"].tolist()[:2] == [1_000, 1_025]
    assert (table["end"] - table["start"] == 25).all()


# ---------------------------------------------------------------------- embedding
def _points(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"name": [f"S{i}" for i in range(n)], "x": rng.normal(size=n),
                         "y": rng.normal(size=n),
                         "anatomy": rng.choice(["BLOOD", "BRAIN", "LIVER"], n, p=[.5, .3, .2]),
                         "depth": rng.gamma(2.0, 3.0, n)})


def test_categorical_colouring_has_a_legend_with_counts_largest_first():
    pts = _points()
    fig = embedding_figure(pts, "anatomy")
    counts = pts["anatomy"].value_counts()
    assert [t.name for t in fig.data] == [f"{k} ({v})" for k, v in counts.items()]
    assert sum(len(t.x) for t in fig.data) == len(pts)
    assert fig.layout.dragmode == "lasso"
    assert fig.layout.legend.itemdoubleclick == "toggleothers"
    assert all(isinstance(t, go.Scatter) for t in fig.data)


def test_continuous_colouring_has_a_colorbar():
    fig = embedding_figure(_points(), "depth")
    assert len(fig.data) == 1
    assert fig.data[0].marker.showscale is True
    assert fig.data[0].marker.colorbar.title.text == "depth"
    assert color_kind(_points()["depth"]) == "continuous"
    assert color_kind(_points()["anatomy"]) == "categorical"


def test_many_points_use_webgl_and_selection_is_restored():
    pts = _points(20_000)
    fig = embedding_figure(pts, "anatomy", selected=["S1", "S2", "S3"])
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    assert sum(len(t.selectedpoints) for t in fig.data) == 3
    assert fig.data[0].customdata[0][0].startswith("S")


def test_embedding_figure_names_a_missing_column():
    with pytest.raises(KeyError, match="tissue"):
        embedding_figure(_points(), "tissue")


# ---------------------------------------------------------------------- design
def test_gains_figure_bars_and_running_objective():
    fig = gains_figure([0.5, 0.3, 0.1], labels=["a", "b", "c"])
    bars, line = fig.data
    assert list(bars.y) == [0.5, 0.3, 0.1]
    np.testing.assert_allclose(line.y, [0.5, 0.8, 0.9])


def test_picks_figure_layers():
    pts = _points(20)
    fig = picks_figure(pts, ["S3", "S1"], profiled=["S5", "S6"], candidates=["S1", "S3", "S7"])
    by_name = {t.name.split(" (")[0]: t for t in fig.data}
    assert list(by_name["picked"].text) == ["1", "2"]
    assert list(by_name["picked"].customdata) == ["S3", "S1"]
    assert len(by_name["already profiled"].x) == 2
    assert len(by_name["candidate"].x) == 1
    assert len(by_name["other"].x) == 15


def test_picker_figure_codes_and_marks():
    status = pd.DataFrame([["observed", "missing"], ["imputed", "observed"]],
                          index=["E1", "E2"], columns=["A1", "A2"])
    fig = picker_figure(status, [("E2", "A2"), ("E9", "A1")])
    np.testing.assert_array_equal(fig.data[0].z, [[2, 0], [1, 2]])
    assert list(fig.data[1].x) == ["A2"] and list(fig.data[1].y) == ["E2"]
    with pytest.raises(ValueError, match="unknown status"):
        picker_figure(status.replace("missing", "lost"))
