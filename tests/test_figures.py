"""Figure builders of the app, as pure functions (no browser, no workspace)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.io.json import to_json_plotly

from dashboard.figures.embedding import color_kind, embedding_figure
from dashboard.figures.genes import gene_traces, pack_rows
from dashboard.figures.picker import cell_size, grid_lines_style, picker_figure
from dashboard.figures.selection import gains_figure, picks_figure
from dashboard.figures.style import (
    ASSAY_COLORS,
    CATEGORICAL,
    IMPUTED_LINE,
    assay_color,
    contrast_ratio,
)
from dashboard.figures.tracks import (
    Track,
    bucket_bounds,
    envelope,
    format_span,
    format_spans,
    locus_figure,
    peaks,
    pixel_peaks,
    ruler_ticks,
    tracks_table,
)


def values_of(array) -> np.ndarray:
    """A trace's array, decoded when it is plotly's typed-array spec."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


# ---------------------------------------------------------------------- reduction and ruler
def test_envelope_keeps_each_pixels_min_and_max_in_order():
    values = np.array([0, 5, 1, 2,   9, 3, 3, -1,   4, 4, 4, 4], dtype=np.float32)
    index, kept = envelope(values, 3)  # 3 buckets of 4 bins
    np.testing.assert_array_equal(index, [0, 1, 4, 7, 8])  # a flat bucket gives one point
    np.testing.assert_array_equal(kept, [0, 5, 9, -1, 4])


def test_peaks_keep_what_an_area_filled_to_zero_shows():
    values = np.array([0, 3, 1, 2,  -1, -4, -2, -3,  -1, 2, 0, 0,  5, 5, 5, 5,  0, 0, 0, 0],
                      dtype=np.float32)
    index, kept = peaks(values, 5)  # 5 buckets of 4 bins
    np.testing.assert_array_equal(index, [1, 5, 8, 9, 12, 16])
    np.testing.assert_array_equal(kept, [3, -4, -1, 2, 5, 0])
    # an area through the peaks covers each bucket's full-resolution span from zero
    rng = np.random.default_rng(0)
    signal = rng.gamma(0.5, 1.0, 40_000).astype(np.float32)
    index, kept = peaks(signal, 1000)
    assert len(index) == 1000 and np.all(np.diff(index) > 0)
    np.testing.assert_array_equal(kept, signal.reshape(1000, 40).max(axis=1))
    short = signal[:900]
    np.testing.assert_array_equal(peaks(short, 1000)[1], short)
    with pytest.raises(ValueError, match="n_px"):
        peaks(signal, 0)


def test_envelope_keeps_every_peak_of_a_long_window_within_two_points_per_pixel():
    rng = np.random.default_rng(0)
    values = rng.gamma(0.5, 1.0, 13_050).astype(np.float32)  # 326 kb of 25 bp bins
    index, kept = envelope(values, 1000)
    assert len(kept) <= 2000 and np.all(np.diff(index) > 0)
    size = -(-len(values) // 1000)
    for b in range(0, len(values) // size, 97):  # every bucket's extremes are drawn
        chunk = values[b * size:(b + 1) * size]
        in_bucket = kept[(index >= b * size) & (index < (b + 1) * size)]
        assert in_bucket.max() == chunk.max() and in_bucket.min() == chunk.min()
    assert envelope(values[:1500], 1000)[1].shape == (1500,)  # short windows as they are
    with pytest.raises(ValueError, match="n_px"):
        envelope(values, 0)


def test_envelope_with_a_tolerance_keeps_the_second_point_only_where_it_shows():
    values = np.array([0, 5, 1, 2,   3, 3.05, 3, 2.98,   4, 4, 4, 4], dtype=np.float32)
    index, kept = envelope(values, 3, tolerance=0.1)  # 3 buckets of 4 bins
    np.testing.assert_array_equal(index, [0, 1, 5, 8])  # the nearly flat bucket: its maximum
    np.testing.assert_array_equal(kept, values[[0, 1, 5, 8]])
    # a line through the points reaches every bucket's maximum, and its minimum within the
    # tolerance, with fewer points than without it
    rng = np.random.default_rng(0)
    signal = np.cumsum(rng.normal(0, 0.01, 40_000)).astype(np.float32)  # smooth
    index, kept = envelope(signal, 1000, tolerance=0.05)
    assert np.all(np.diff(index) > 0) and len(index) < len(envelope(signal, 1000)[0])
    bucket = index // 40
    for b in range(1000):
        chunk, mine = signal[b * 40:(b + 1) * 40], kept[bucket == b]
        assert mine.max() == chunk.max() and mine.min() - chunk.min() < 0.05
    assert envelope(signal[:900], 1000, tolerance=0.05)[1].shape == (900,)


def test_pixel_peaks_are_the_heights_drawn():
    values = np.array([0, 3, 1, 2,  -1, -4, -2, -3,  -1, 2, 0, 0], dtype=np.float32)
    np.testing.assert_array_equal(pixel_peaks(values, 3), [3, -4, 2])
    np.testing.assert_array_equal(pixel_peaks(values[:2], 3), values[:2])  # bins as pixels


def test_bucket_bounds_never_narrow_the_band():
    rng = np.random.default_rng(1)
    low = rng.normal(size=5000).astype(np.float32)
    high = low + rng.uniform(0, 1, 5000).astype(np.float32)
    index, lo, hi = bucket_bounds(low, high, 700)
    assert len(index) == 700
    ends = np.append(index[1:], 5000)
    for i in range(0, 700, 50):
        assert lo[i] == low[index[i]:ends[i]].min() and hi[i] == high[index[i]:ends[i]].max()


def test_every_assay_colour_reads_on_white_and_against_the_imputed_line():
    for i, assay in enumerate([*ASSAY_COLORS, *(f"assay{j}" for j in range(len(CATEGORICAL)))]):
        color = assay_color(assay, i)
        assert contrast_ratio(color) >= 4.5, (assay, color)
        assert contrast_ratio(IMPUTED_LINE, color) >= 2.0, (assay, color)
    assert contrast_ratio("#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#000000") == pytest.approx(21.0)


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
    # vectorised; the unit changes where three digits round up to 1000
    assert format_spans([0, 999, 1_000, 2_345, 999_499, 999_999]).tolist() == [
        "0 bp", "999 bp", "1 kb", "2.35 kb", "999 kb", "1 Mb"]


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


def rows_of(fig: dict, trace: dict) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A row-stacked trace's parts (split at its gaps), by the row each lies in: {row: (x,
    values)}, the values converted back from the rows' pixels (``meta["rows"]`` and
    ``meta["ranges"]``). Asserts that each part lies within one row."""
    meta = fig["layout"]["meta"]
    x, y = values_of(trace["x"]), values_of(trace["y"])
    gaps = np.flatnonzero(np.isnan(y))
    out = {}
    for part in np.split(np.arange(len(y)), gaps):
        part = part[~np.isnan(y[part])]
        rows = [i for i, (b, t) in enumerate(meta["rows"])
                if b - 1e-3 <= y[part].min() and y[part].max() <= t + 1e-3]
        assert len(rows) == 1, (trace["name"], y[part].min(), y[part].max())
        (b, t), (lo, hi) = meta["rows"][rows[0]], meta["ranges"][rows[0]]
        out[rows[0]] = x[part], lo + (y[part] - b) / (t - b) * (hi - lo)
    return out


def label_and_metric(annotation: dict) -> tuple[str, str]:
    """A track-label annotation's two parts: the track's label and the window's agreement."""
    match = re.fullmatch(r"<b>(.+)</b>  <span style='color:#[0-9a-f]{6};font-size:10px'>(.+)"
                         "</span>", annotation["text"])
    return match[1], match[2]


def test_locus_figure_rows_labels_and_shared_assay_scale():
    genes, exons = _genes()
    tracks = _tracks()
    fig = locus_figure("chr1", 0, 100_000, 25, tracks, genes, exons, width_px=1000)
    go.Figure(fig)  # a valid plotly figure
    layout = fig["layout"]
    labels = [label_and_metric(a) for a in layout["annotations"] if a["name"] == "track-label"]
    assert labels == [("E003 · H3K4me3", "training use not recorded · MSE 0.120 · r 0.81"),
                      ("E017 · H3K4me3", "imputed only"), ("E017 · H3K27me3", "observed only")]
    # three rows of 72 px top to bottom, 6 px apart, in one y-axis in pixels, above the genes
    meta = layout["meta"]
    assert meta["rows"] == [[156, 228], [78, 150], [0, 72]]
    assert layout["yaxis"]["range"] == [0, 228] and layout["yaxis"]["fixedrange"]
    assert [a["y"] for a in layout["annotations"] if a["name"] == "track-label"] == [228, 150, 72]
    # one y-range for the two H3K4me3 rows (of the larger, E017's imputation), its own for
    # H3K27me3
    top = float(tracks[0].observed.max())
    assert meta["ranges"][0] == meta["ranges"][1] == pytest.approx([0, 2 * top * 1.08])
    assert meta["ranges"][2] == pytest.approx([0, 0.5 * top * 1.08])
    # every row's values, where they belong: one trace per series kind (per assay for the
    # observed areas), its rows apart by gaps
    imputed = [t for t in fig["data"] if t["name"] == "imputed"]
    observed = [t for t in fig["data"] if t["name"] == "observed"]
    assert len(imputed) == 1 and len(observed) == 2  # H3K4me3, H3K27me3
    lines = rows_of(fig, imputed[0])
    assert sorted(lines) == [0, 1]
    for row, (x, v) in lines.items():
        index, expected = envelope(tracks[row].imputed, 1000, tolerance=(
            meta["ranges"][row][1] / 72))
        np.testing.assert_array_equal(x, index * 25)
        np.testing.assert_allclose(v, expected, rtol=1e-5, atol=1e-5)
        assert 1000 <= len(x) < 2000  # one or two points per pixel
    areas = {row: part for trace in observed for row, part in rows_of(fig, trace).items()}
    assert sorted(areas) == [0, 2]
    for row, (x, v) in areas.items():
        index, expected = peaks(tracks[row].observed, 1000)
        # the area closes along the row's zero, back to its first point
        np.testing.assert_array_equal(x, np.r_[index, index[-1], index[0]] * 25)
        np.testing.assert_allclose(v, np.r_[expected, 0, 0], rtol=1e-5, atol=1e-5)
    assert {t["fill"] for t in observed} == {"toself"}
    assert {t["line"]["color"] for t in observed} == {assay_color("H3K4me3", 0),
                                                     assay_color("H3K27me3", 1)}
    # each row's ticks: its 0 and top in its own values; a grid line at each 0
    y = layout["yaxis"]
    assert y["ticktext"][:3] == ["0", f"{round(2 * top / 2, 1):g}", f"{round(2 * top, 1):g}"]
    assert y["tickvals"][:3] == pytest.approx([156, 156 + 72 / 2.16, 156 + 72 / 1.08], abs=0.5)
    assert y["minor"]["tickvals"] == [156, 78, 0] and y["minor"]["showgrid"]
    # one x-axis shared by every row, the gene row included; genes on the second y-axis
    assert layout["xaxis"]["range"] == [0, 100_000]
    assert {t.get("xaxis") for t in fig["data"] if t["type"] == "heatmap"} == {"x"}
    assert "xaxis2" not in layout
    assert {t["yaxis"] for t in fig["data"] if t["name"] in ("gene names", "exons")} == {"y2"}
    assert meta["n_tracks"] == 3
    # legend: observed and imputed once each
    assert sorted(t["name"] for t in fig["data"] if t.get("showlegend")) == ["imputed",
                                                                           "observed"]
    # the chromosome on the ruler, the unit beside the rows
    assert layout["xaxis"]["title"]["text"] == "<b>chr1</b>"
    unit = [a["text"] for a in layout["annotations"] if a["name"] == "signal-unit"]
    assert unit == ["signal, arcsinh(−log₁₀ p)"]
    # compact rows (36 px) have room for two labels, not three
    compact = locus_figure("chr1", 0, 100_000, 25, tracks, genes, exons, track_height=36)
    assert compact["layout"]["yaxis"]["ticktext"][:2] == ["0", f"{round(2 * top, 1):g}"]
    assert compact["layout"]["meta"]["rows"][0] == [84, 120]


def hover_at(fig: dict, pixel: float) -> tuple[str, dict[str, np.ndarray]]:
    """What the hover says at a height of the rows' axis (``pixel``, as ``meta["rows"]``):
    the label (the hover axis's tick text at the cell there, as plotly writes ``%{y}``) and,
    by carrier, the cell's row of z values (NaN where that carrier has no value)."""
    axis = fig["layout"]["yaxis3"]
    r0, r1 = axis["range"]
    rows_px = fig["layout"]["yaxis"]["range"][1]
    cell = int(np.floor(r0 + pixel / rows_px * (r1 - r0) + 0.5))
    assert axis["tickvals"][cell] == cell
    z = {}
    for t in fig["data"]:
        if t["type"] == "heatmap":
            values = values_of(t["z"]).reshape(len(axis["tickvals"]), -1)
            assert t.get("y0", 0) == 0 and t.get("dy", 1) == 1 and "y" not in t
            z[t["name"]] = values[cell]
    return axis["ticktext"][cell], z


def test_locus_figure_hover_names_the_row_and_its_values_under_the_pointer():
    tracks = _tracks()
    fig = locus_figure("chr1", 0, 100_000, 25, tracks, width_px=1000)
    carriers = {t["name"]: t for t in fig["data"] if t["type"] == "heatmap"}
    # the drawn series answer no hover; invisible heatmaps do, one per kind of row
    assert {t["hoverinfo"] for t in fig["data"] if t["type"] == "scatter"} == {"skip"}
    assert fig["layout"]["hovermode"] == "closest"
    axis = fig["layout"]["yaxis3"]
    # equal rows: one cell per row (78 px: the row and half the gaps beside it), the axis
    # drawing nothing (a hidden axis would not write its tick text into the hover)
    assert fig["layout"]["meta"]["hover_unit"] == 78
    assert axis["ticktext"] == ["E017 · H3K27me3", "E017 · H3K4me3", "E003 · H3K4me3"]
    assert not axis["showticklabels"] and not axis["showgrid"] and axis["ticks"] == ""
    assert sorted(carriers) == ["imputed only", "observed + imputed", "observed only"]
    for t in carriers.values():
        assert values_of(t["z"]).shape == (3 * 1000,) and t["zsmooth"] == "fast"
        assert "rgba(0,0,0,0)" in t["colorscale"][0][1] and not t["showscale"]
    templates = {name: t["hovertemplate"].split("<br>")[-1] for name, t in carriers.items()}
    assert templates == {
        "observed + imputed": "observed %{z:.2f} · imputed %{customdata:.2f}<extra></extra>",
        "imputed only": "imputed %{z:.2f}<extra></extra>",
        "observed only": "observed %{z:.2f}<extra></extra>"}
    # anywhere in a row (and in the gaps' halves beside it): its label, its pixel's values in
    # its carrier alone, the others' cells there empty
    kind = {0: "observed + imputed", 1: "imputed only", 2: "observed only"}
    for i, (bottom, top) in enumerate(fig["layout"]["meta"]["rows"]):
        for pixel in (bottom - 2.9, bottom, (bottom + top) / 2, top, top + 2.9):
            label, z = hover_at(fig, pixel)
            assert label == tracks[i].label
            assert [name for name, v in z.items() if not np.isnan(v).all()] == [kind[i]]
    _, z = hover_at(fig, 200)
    np.testing.assert_array_equal(z["observed + imputed"],
                                  tracks[0].observed.reshape(1000, 4).max(axis=1))
    both = carriers["observed + imputed"]
    np.testing.assert_array_equal(values_of(both["customdata"]).reshape(3, -1)[2],
                                  tracks[0].imputed.reshape(1000, 4).max(axis=1))
    np.testing.assert_array_equal(hover_at(fig, 120)[1]["imputed only"],
                                  tracks[1].imputed.reshape(1000, 4).max(axis=1))
    # each cell is a pixel of 4 bins, centred on it; the hover says so
    x = values_of(both["x"])
    assert x[0] == 50 and np.all(np.diff(x) == 100)
    assert both["hovertemplate"].startswith("<b>%{y}</b><br>chr1:%{x:,.0f} (a pixel of "
                                            "100 bp)<br>")


def test_locus_figure_draws_and_hovers_rows_of_their_own_heights():
    """Rows of different heights (a track made tall, one collapsed to a strip): each row's
    series within its own band, its values where they belong, its hover cells on it alone."""
    rng = np.random.default_rng(7)
    n = 4000
    tracks = [Track(f"E{i:03d}", assay, rng.gamma(1.0, 1.0 + i, n).astype(np.float32),
                    rng.gamma(1.0, 1.0, n).astype(np.float32) if i % 2 else None)
              for i, assay in enumerate(["H3K4me3", "H3K27me3", "H3K4me3", "H3K36me3", "CTCF"])]
    heights = [36, 120, 15, 78, 36]
    fig = locus_figure("chr1", 0, 100_000, 25, tracks, width_px=1000, track_height=heights,
                       y_scale="track")
    go.Figure(fig)
    meta = fig["layout"]["meta"]
    # top to bottom, each its own height, 6 px apart
    assert meta["rows"] == [[273, 309], [147, 267], [126, 141], [42, 120], [0, 36]]
    assert fig["layout"]["yaxis"]["range"] == [0, 309]
    assert [a["y"] for a in fig["layout"]["annotations"] if a["name"] == "track-label"] == [
        309, 267, 141, 120, 36]
    # every row's drawn values in its own band, at its own scale
    observed = [t for t in fig["data"] if t["name"] == "observed"]
    areas = {row: part for trace in observed for row, part in rows_of(fig, trace).items()}
    assert sorted(areas) == [0, 1, 2, 3, 4]
    for row, (x, v) in areas.items():
        index, expected = peaks(tracks[row].observed, 1000)
        np.testing.assert_array_equal(x, np.r_[index, index[-1], index[0]] * 25)
        np.testing.assert_allclose(v, np.r_[expected, 0, 0], rtol=1e-5, atol=1e-4)
    lines = rows_of(fig, next(t for t in fig["data"] if t["name"] == "imputed"))
    assert sorted(lines) == [1, 3]
    for row, (x, v) in lines.items():
        # the line keeps a pixel's second point where it is a pixel of its own row apart
        index, expected = envelope(tracks[row].imputed, 1000, tolerance=(
            meta["ranges"][row][1] - meta["ranges"][row][0]) / heights[row])
        np.testing.assert_array_equal(x, index * 25)
        np.testing.assert_allclose(v, expected, rtol=1e-5, atol=1e-4)
    # the hover: cells of 21 px (the pitches' common divisor), 2, 6, 1, 4 and 2 per row
    # (top first)
    assert meta["hover_unit"] == 21
    axis = fig["layout"]["yaxis3"]
    assert len(axis["ticktext"]) == 2 + 4 + 1 + 6 + 2
    for i, (bottom, top) in enumerate(meta["rows"]):
        kind = "observed + imputed" if i % 2 else "observed only"
        for pixel in np.linspace(bottom - 2.9, top + 2.9, 9):
            label, z = hover_at(fig, pixel)
            assert label == tracks[i].label
            np.testing.assert_array_equal(z[kind], pixel_peaks(tracks[i].observed, 1000))
            assert all(np.isnan(v).all() for name, v in z.items() if name != kind)
    # a collapsed strip writes its top alone; a compact row its 0 and top; a tall one three
    labels_per_row = [2, 3, 1, 3, 2]
    assert len(fig["layout"]["yaxis"]["ticktext"]) == sum(labels_per_row)
    # one height for all is the same figure as that height given per row
    same = locus_figure("chr1", 0, 100_000, 25, tracks, width_px=1000, track_height=36)
    assert to_json_plotly(same) == to_json_plotly(locus_figure(
        "chr1", 0, 100_000, 25, tracks, width_px=1000, track_height=[36] * 5))
    assert same["layout"]["meta"]["hover_unit"] == 42


@pytest.mark.parametrize("heights, message", [
    ([36, 36], r"one per track \(3\), got \[36, 36\]"),
    ([36, 0, 36], r"positive whole number of pixels .* got \[36, 0, 36\]"),
    ([36, 40.5, 36], r"got \[36.0, 40.5, 36.0\]"),
])
def test_locus_figure_names_bad_row_heights(heights, message):
    with pytest.raises(ValueError, match=message):
        locus_figure("chr1", 0, 100_000, 25, _tracks(), track_height=heights)


def test_locus_figure_held_out_band_and_drawing_order():
    obs = np.linspace(0, 3, 4000).astype(np.float32)
    held = Track("E003", "H3K4me3", obs, obs * 0.9, {"mse": 0.2, "pearson": 0.7},
                 trained=False, low=obs * 0.5, high=obs * 1.5, calibrated=True)
    fit = Track("E017", "H3K4me3", obs, obs, {"mse": 0.01, "pearson": 0.99}, trained=True)
    fig = locus_figure("chr1", 0, 100_000, 25, [held, fit], width_px=500)
    metrics = [label_and_metric(a)[1] for a in fig["layout"]["annotations"]
               if a["name"] == "track-label"]
    assert metrics == ["held out: not seen in training · MSE 0.200 · r 0.70",
                       "training fit · MSE 0.010 · r 0.99"]
    # the band (closed shapes), then the imputed lines, then the observed areas on top
    scatter = [t for t in fig["data"] if t["type"] == "scatter"]
    assert [t["name"] for t in scatter] == ["90% band", "imputed", "observed"]
    band = rows_of(fig, scatter[0])
    assert sorted(band) == [0]  # the held-out track's band alone
    band_x, band_v = band[0]
    assert scatter[0]["fill"] == "toself" and len(band_x) == 2 * 250  # a bucket per 2 px
    np.testing.assert_array_equal(band_x[:250], band_x[250:][::-1])  # out and back
    assert band_v.max() == pytest.approx(4.5, rel=1e-3) and band_v[-1] == pytest.approx(0)
    assert scatter[2]["fill"] == "toself" and "0.5)" in scatter[2]["fillcolor"]  # translucent
    # arrays travel as typed arrays: exact values, a fraction of the JSON
    x = values_of(scatter[2]["x"])
    assert x.dtype == np.int32 and x[0] == 175  # bucket 0's peak
    areas = rows_of(fig, scatter[2])
    np.testing.assert_allclose(areas[0][1][:-2], peaks(obs, 500)[1], rtol=1e-5, atol=1e-5)
    # one point per pixel for the observed area; the straight imputed line, one where the
    # second would move it by less than a pixel
    assert len(areas[1][0]) == 500 + 2 and len(rows_of(fig, scatter[1])[1][0]) == 500
    assert fig["layout"]["meta"]["ranges"][0][1] == pytest.approx(4.5 * 1.08, rel=1e-3)


def test_locus_figure_rejects_windows_of_the_wrong_length():
    with pytest.raises(ValueError, match="4000 bins"):
        locus_figure("chr1", 0, 50_000, 25, _tracks())


def test_locus_figure_drags_to_pan_with_fixed_y_axes():
    genes, exons = _genes()
    fig = locus_figure("chr1", 0, 10_000, 25, _tracks(400), genes, exons)
    layout = fig["layout"]
    assert layout["dragmode"] == "pan"
    # the rows', the genes' and the hover's y-axes are fixed, so pan and scroll move x only
    y_axes = [k for k in layout if k.startswith("yaxis")]
    assert sorted(y_axes) == ["yaxis", "yaxis2", "yaxis3"]
    assert all(layout[k]["fixedrange"] for k in y_axes)
    assert not layout["xaxis"].get("fixedrange", False)
    # fewer bins than pixels: drawn as steps
    assert {t["line"]["shape"] for t in fig["data"] if t["name"] == "observed"} == {"hv"}


def test_locus_figure_scales_per_assay_or_per_track():
    # two tracks of one assay, a hundredfold apart (fewer bins than pixels: drawn as given)
    weak = Track("E003", "H3K4me3", np.array([0.0, 0.5, 1.0, 0.2], dtype=np.float32))
    strong = Track("E017", "H3K4me3", None, np.array([0.0, 100.0, 50.0, 0.0], dtype=np.float32))

    def ranges(**kw):
        fig = locus_figure("chr1", 0, 100, 25, [weak, strong], **kw)
        parts = {**rows_of(fig, fig["data"][0]), **rows_of(fig, fig["data"][1])}
        np.testing.assert_allclose(parts[0][1][:4], weak.observed, atol=1e-4)
        np.testing.assert_allclose(parts[1][1], strong.imputed, atol=1e-3)
        return [pytest.approx(r) for r in fig["layout"]["meta"]["ranges"]]

    assert ranges() == [[0, 108.0], [0, 108.0]]  # default: shared per assay
    assert ranges(y_scale="assay") == [[0, 108.0], [0, 108.0]]
    assert ranges(y_scale="track") == [[0, 1.08], [0, 108.0]]
    with pytest.raises(ValueError, match="unknown y scale 'log'.*'assay', 'track'"):
        locus_figure("chr1", 0, 100, 25, [weak, strong], y_scale="log")


def test_locus_figure_without_tracks_says_so():
    genes, exons = _genes()
    fig = locus_figure("chr1", 0, 10_000, 25, [], genes, exons)
    names = [a["name"] for a in fig["layout"]["annotations"]]
    assert names == ["no-tracks"]
    assert not [t for t in fig["data"] if t["type"] == "heatmap"]
    assert {t["yaxis"] for t in fig["data"]} == {"y2"}  # the genes alone


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


def test_embedding_figure_names_points_and_titles_pca_axes():
    """The hover's first line is a point's name (its id stays customdata[0], what a lasso
    selects); the points carry a short label; a PCA's axes say their share of the variance."""
    pts = _points(5).assign(label=lambda d: d["name"] + " · liver", short=list("abcde"))
    fig = embedding_figure(pts, "anatomy", label_column="label", point_labels="short",
                           axis_titles=("PC1 · 31.0 % of variance", "PC2 · 9.0 % of variance"))
    trace = fig.data[0]
    assert trace.hovertemplate.startswith("<b>%{customdata[1]}</b><br>anatomy: %{customdata[2]}")
    assert trace.customdata[0][1] == trace.customdata[0][0] + " · liver"
    assert sorted(t for tr in fig.data for t in tr.text) == list("abcde")
    assert fig.layout.xaxis.title.text == "PC1 · 31.0 % of variance"
    assert fig.layout.yaxis.title.text == "PC2 · 9.0 % of variance"
    bare = embedding_figure(pts, "anatomy")
    assert bare.layout.xaxis.title.text is None
    assert bare.data[0].hovertemplate.startswith("<b>%{customdata[0]}</b>")
    # a click selects a point (a lasso of one) unless the page handles clicks itself
    assert bare.layout.clickmode == "event+select"
    assert embedding_figure(pts, "anatomy", click_selects=False).layout.clickmode == "event"


def test_track_labels_name_the_biosample_beside_its_id():
    track = Track("E003", "H3K4me3", np.zeros(4, np.float32), name="H1 Cells")
    assert track.label == "E003 · H1 Cells · H3K4me3"
    assert Track("E003", "H3K4me3", np.zeros(4, np.float32)).label == "E003 · H3K4me3"


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
    assert list(by_name["picked"].text) == ["#1 S3", "#2 S1"]  # few points: names too
    assert list(by_name["candidate"].text) == ["S7"]
    many = picks_figure(_points(100), ["S3"])
    assert list(many.data[-1].text) == ["1"] and many.data[0].text is None
    assert list(by_name["picked"].customdata) == ["S3", "S1"]
    assert len(by_name["already profiled"].x) == 2
    assert len(by_name["candidate"].x) == 1
    assert len(by_name["other"].x) == 15
    placed = pd.DataFrame({"name": ["new"], "x": [0.5], "y": [1.5],
                           "note": ["placed by its nearest biosamples"]})
    fig = picks_figure(pts, [], candidates=[], placed=placed)
    assert fig.data[-1].name == "new (uploaded)" and list(fig.data[-1].x) == [0.5]
    assert [t.showlegend for t in fig.data] == [True, False, False, False, None]


def picker_cells(fig: dict) -> dict:
    """{(row category, column category): (trace name, hover)} for every drawn cell of a
    picker figure, placed as plotly places them (slot x0 + j, y0 + i of the axes' category
    arrays); a cell answered by two traces fails."""
    rows = fig["layout"]["yaxis"]["categoryarray"]
    cols = fig["layout"]["xaxis"]["categoryarray"]
    out = {}
    for trace in fig["data"]:
        if trace["type"] != "heatmap":
            continue
        assert "x" not in trace and "y" not in trace and trace["dx"] == trace["dy"] == 1
        z = trace["z"]
        shape = tuple(int(n) for n in z["shape"].split(","))
        z = values_of(z).reshape(shape)
        for i, j in zip(*np.nonzero(np.isfinite(z))):
            key = (rows[trace["y0"] + i], cols[trace["x0"] + j])
            assert key not in out, f"{key} is answered by two traces"
            out[key] = (trace["name"], trace["hovertemplate"])
    return out


def test_picker_figure_one_trace_answers_each_cell_and_says_what_a_click_does():
    status = pd.DataFrame([["observed", "missing"], ["imputed", "held out"]],
                          index=["E1", "E2"], columns=["A1", "A2"])
    fig = picker_figure(status, [("E2", "A2"), ("E9", "A1")])
    cells = picker_cells(fig)
    assert {k: v[0] for k, v in cells.items()} == {
        ("E1", "A1"): "observed", ("E1", "A2"): "missing", ("E2", "A1"): "imputed",
        ("E2", "A2"): "held out (shown)"}
    # each cell's hover names it, says what it is and what a click on it does
    assert cells[("E2", "A2")][1] == ("<b>%{y}</b><br>%{x}<br>held out (not trained on)<br>"
                                      "shown · click to hide<extra></extra>")
    assert cells[("E1", "A1")][1].endswith("observed (trained on)<br>click to show<extra></extra>")
    # the marks of the chosen cells take no hover or click: a click reaches the cell under it
    marks = fig["data"][-1]
    assert marks["x"] == ["A2"] and marks["y"] == ["E2"] and marks["hoverinfo"] == "skip"
    assert all(t.get("hoverongaps") is False for t in fig["data"] if t["type"] == "heatmap")
    with pytest.raises(ValueError, match="unknown status"):
        picker_figure(status.replace("missing", "lost"))


def test_picker_figure_by_band_width_keeps_cells_without_a_band_clickable():
    status = pd.DataFrame([["observed", "missing"], ["imputed", "held out"]],
                          index=["E1", "E2"], columns=["A1", "A2"])
    widths = pd.DataFrame([[0.5, np.nan], [0.7, 0.9]], index=["E1", "E2"], columns=["A1", "A2"])
    fig = picker_figure(status, band_widths=widths)
    cells = picker_cells(fig)
    assert len(cells) == 4  # the cell without a band still answers a click
    assert "no band" in cells[("E1", "A2")][1] and "band ±%{z:.2f}" in cells[("E2", "A1")][1]
    banded = [t for t in fig["data"] if t["type"] == "heatmap" and t["colorscale"] == "Greys"]
    assert sum(t["showscale"] for t in fig["data"] if t["type"] == "heatmap") == 1
    assert banded[0]["showscale"] and all(t["zmax"] == 0.9 for t in banded)


def test_picker_figure_groups_hidden_cells_labels_and_size():
    """Group headers (empty rows and columns named with their size) before each group; cells
    a query hides ("") are drawn by no trace; rows are named by their labels; 84 columns get
    9 px cells so that the grid fits the page."""
    status = pd.DataFrame([["observed", ""], ["imputed", "observed"], ["observed", "imputed"]],
                          index=["J1", "J2", "J3"], columns=["A1", "A2"])
    labels = pd.Series({"J1": "J1 · K562", "J2": "J2 · liver", "J3": "J3 · lung"})
    fig = picker_figure(status, [("J2", "A2")], row_labels=labels,
                        col_labels=pd.Series({"A1": "H3K4me3", "A2": "CTCF"}),
                        row_groups=pd.Series({"J1": "cell line", "J2": "tissue", "J3": "tissue"}),
                        col_groups=pd.Series({"A1": "active mark", "A2": "factor"}))
    cells = picker_cells(fig)
    assert set(cells) == {("J1 · K562", "A1"), ("J2 · liver", "A1"), ("J2 · liver", "A2"),
                          ("J3 · lung", "A1"), ("J3 · lung", "A2")}
    y, x = fig["layout"]["yaxis"], fig["layout"]["xaxis"]
    assert len(y["categoryarray"]) == 3 + 2 and len(x["categoryarray"]) == 2 + 2
    assert [re.sub("<[^>]+>", "", t) for t in y["ticktext"]] == [
        "cell line · 1", "J1 · K562", "tissue · 2", "J2 · liver", "J3 · lung"]
    assert [re.sub("<[^>]+>", "", t) for t in x["ticktext"]] == [
        "active mark · 1", "H3K4me3", "factor · 1", "CTCF"]
    assert x["tickvals"][1] == "A1"  # a click's x is the assay's id
    meta = fig["layout"]["meta"]
    assert (meta["n_rows"], meta["n_cols"]) == (5, 4)
    assert cell_size(84 + 5) == 9 and cell_size(5) == 18
    # the lines between cells: an overlay exactly over the cells, not plotly's gaps (slow)
    assert all("xgap" not in t for t in fig["data"])
    lines = grid_lines_style(fig)
    cell = meta["grid"]["cell"]
    assert lines["left"] == f"{fig['layout']['margin']['l']}px"
    assert lines["top"] == f"{fig['layout']['margin']['t']}px"
    assert (lines["width"], lines["height"]) == (f"{4 * cell}px", f"{5 * cell}px")
    assert lines["backgroundSize"] == f"{cell}px {cell}px" and lines["pointerEvents"] == "none"
    assert fig["layout"]["width"] == fig["layout"]["margin"]["l"] + 4 * cell + \
        fig["layout"]["margin"]["r"]
