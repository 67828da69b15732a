"""Locus view: stacked signal tracks on one shared genomic axis, with a gene track and a ruler.

Pure builders: arrays and DataFrames in, a plotly figure (plain dict) out. Nothing here reads files.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import gcd

import numpy as np
import pandas as pd

from .genes import gene_traces, pack_rows
from .style import BAND, GRID, IMPUTED_LINE, MUTED, SELECTED, TEXT, assay_color, base_layout

__all__ = [
    "Track",
    "envelope",
    "peaks",
    "pixel_peaks",
    "bucket_bounds",
    "SIGNAL_UNIT",
    "typed_array",
    "ruler_ticks",
    "format_span",
    "format_spans",
    "locus_figure",
    "Y_SCALES",
    "tracks_table",
    "assay_colors",
]


#: The unit of every track's y-axis: the Roadmap signal (-log10 p-value of MACS2),
#: arcsinh-transformed.
SIGNAL_UNIT = "arcsinh(−log₁₀ p)"

#: How track rows share y-ranges: one range per assay, or each row its own.
Y_SCALES = ("assay", "track")

#: Pixels between two track rows.
ROW_GAP = 6
#: About the height of a row's tick label (px): a row lower than two writes its top alone.
MIN_TICK_PX = 15


@dataclass
class Track:
    """One experiment's values over the window, observed and/or imputed (float arrays or None).

    ``metrics`` holds the per-window agreement of imputed versus observed (``{"mse": ..,
    "pearson": ..}``) when both exist; it is computed by the caller at full resolution.
    ``trained`` says whether the imputation's models trained on the observed track (True:
    the agreement is training fit), did not (False: held out) or is not known (None).
    ``low`` / ``high`` bound the imputation's uncertainty band (``calibrated``: a calibrated
    90 % band, else the ensemble members' own range). ``name``: the biosample's name, shown
    beside its id.
    """

    biosample: str
    assay: str
    observed: np.ndarray | None = None
    imputed: np.ndarray | None = None
    metrics: dict = field(default_factory=dict)
    trained: bool | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    calibrated: bool = False
    name: str = ""

    @property
    def biosample_label(self) -> str:
        """``E003 · H1 Cells`` (the id alone without a name)."""
        return f"{self.biosample} · {self.name}" if self.name else self.biosample

    @property
    def label(self) -> str:
        return f"{self.biosample_label} · {self.assay}"

    @property
    def status(self) -> str:
        """What is shown: "held out", "training fit", "observed + imputed" (training use
        not recorded), "imputed only" or "observed only"."""
        if self.observed is not None and self.imputed is not None:
            return {False: "held out", True: "training fit"}.get(self.trained,
                                                                 "observed + imputed")
        return "imputed only" if self.imputed is not None else "observed only"

    @property
    def band_name(self) -> str:
        return "90% band" if self.calibrated else "members' range"


def _buckets(values: np.ndarray, n_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``values`` into at most ``n_px`` equal buckets of consecutive bins.

    Returns
    -------
    first, argmin, argmax: np.ndarray[int]
        Bin index of each bucket's first bin, and of its minimum and maximum.
    """
    n = values.shape[0]
    size = -(-n // n_px)  # bins per bucket
    m = -(-n // size)
    padded = np.concatenate([values, np.full(m * size - n, values[-1], dtype=np.float32)])
    blocks = padded.reshape(m, size)
    first = np.arange(m) * size
    return first, np.minimum(first + blocks.argmin(axis=1), n - 1), \
        np.minimum(first + blocks.argmax(axis=1), n - 1)


def _check_px(n_px: int) -> None:
    if n_px < 1:
        raise ValueError(f"n_px must be >= 1, got {n_px}")


def envelope(values: np.ndarray, n_px: int, tolerance: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """At most two points per pixel: the minimum and the maximum of each pixel's bins.

    Parameters
    ----------
    values: np.ndarray, shape=(n,)
        Values of consecutive bins.
    n_px: int
        The number of pixel buckets (about the plot width). When ``n <= 2 * n_px`` (``n <=
        n_px`` with a ``tolerance``) the values are returned unchanged.
    tolerance: float
        A bucket whose maximum exceeds its minimum by less than this keeps its maximum alone:
        with the value of one vertical pixel, the line drawn differs by less than a pixel
        (a 36 px row needs the second point in a third of the buckets of a smooth imputation).
        Default is 0 (two points wherever the bucket's bins differ).

    Returns
    -------
    index: np.ndarray[int], shape=(m,)
        Bin index of each point (m <= 2 n_px), increasing: per bucket the minimum and the
        maximum, in the order they occur, so a line through them keeps every peak and dip.
    values: np.ndarray[float32], shape=(m,)
    """
    values = np.asarray(values, dtype=np.float32)
    _check_px(n_px)
    if values.shape[0] <= (n_px if tolerance > 0 else 2 * n_px):
        return np.arange(values.shape[0]), values.copy()
    _, lo, hi = _buckets(values, n_px)
    pairs = np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], axis=1)
    # A flat bucket (one bin holds both extremes, or they differ by less than the tolerance)
    # gives one point: its maximum.
    flat = (lo == hi) | (values[hi] - values[lo] < tolerance)
    keep = ~flat[:, None] | (pairs == hi[:, None])
    keep[:, 1] &= pairs[:, 1] != pairs[:, 0]
    index = pairs[keep]
    return index, values[index]


def pixel_peaks(values: np.ndarray, n_px: int) -> np.ndarray:
    """Each pixel bucket's value farthest from zero (the height :func:`peaks` draws there).

    Returns
    -------
    np.ndarray[float32], shape=(m,)
        One value per bucket of :func:`_buckets` (m <= n_px; ``n`` values when ``n <= n_px``).
    """
    values = np.asarray(values, dtype=np.float32)
    _check_px(n_px)
    _, lo, hi = _buckets(values, n_px)
    return np.where(np.abs(values[hi]) >= np.abs(values[lo]), values[hi], values[lo])


def peaks(values: np.ndarray, n_px: int) -> tuple[np.ndarray, np.ndarray]:
    """One point per pixel for an area filled to zero: each pixel's value farthest from zero.

    An area filled from zero to a line through these points covers, in every pixel, exactly
    the span that the full-resolution area covers there (a bucket holding values on both sides
    of zero keeps its minimum and its maximum, in order): half the points of
    :func:`envelope` for the same picture.

    Parameters
    ----------
    values: np.ndarray, shape=(n,)
    n_px: int
        The number of pixel buckets. When ``n <= n_px`` the values are returned unchanged.

    Returns
    -------
    index: np.ndarray[int], shape=(m,)
        Increasing bin indices.
    values: np.ndarray[float32], shape=(m,)
    """
    values = np.asarray(values, dtype=np.float32)
    _check_px(n_px)
    if values.shape[0] <= n_px:
        return np.arange(values.shape[0]), values.copy()
    _, lo, hi = _buckets(values, n_px)
    keep_lo, keep_hi = values[lo] < 0, values[hi] >= 0
    pairs = np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], axis=1)
    keep = np.stack([np.where(lo < hi, keep_lo, keep_hi), np.where(lo < hi, keep_hi, keep_lo)],
                    axis=1)
    keep[:, 1] &= pairs[:, 1] != pairs[:, 0]
    keep[:, 0] |= ~keep[:, 1] & ~keep[:, 0]  # never an empty bucket
    index = pairs[keep]
    return index, values[index]


def bucket_bounds(low: np.ndarray, high: np.ndarray, n_px: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A band at one point per pixel: the lowest ``low`` and highest ``high`` of each bucket.

    Returns
    -------
    index, low, high: np.ndarray
        Bin index of each bucket's first bin and the bucket's bounds (the band drawn is never
        narrower than the band at full resolution).
    """
    low = np.asarray(low, dtype=np.float32)
    high = np.asarray(high, dtype=np.float32)
    n = low.shape[0]
    if n <= n_px:
        return np.arange(n), low.copy(), high.copy()
    starts = np.unique(np.linspace(0, n, n_px + 1).astype(np.int64)[:-1])
    return starts, np.minimum.reduceat(low, starts), np.maximum.reduceat(high, starts)


def typed_array(values: np.ndarray, dtype: str = "f4") -> dict:
    """An array as plotly's typed-array spec (``{"dtype", "bdata"}``: base64 of the raw
    bytes, and ``"shape"`` for a 2-D one): a tenth of the JSON text of a list of numbers,
    serialised and parsed without touching each number (the browser's JSON parse and the
    server's encoding of number lists were most of a redraw's time)."""
    data = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    spec = {"dtype": dtype, "bdata": base64.b64encode(data.tobytes()).decode("ascii")}
    if data.ndim == 2:
        spec["shape"] = f"{data.shape[0]}, {data.shape[1]}"
    return spec


def format_spans(n_bp: np.ndarray | list[int]) -> np.ndarray:
    """Spans in human units to three significant digits: 850 bp, 12.5 kb, 1.2 Mb.

    Parameters
    ----------
    n_bp: array-like of int, shape=(n,)

    Returns
    -------
    np.ndarray[str], shape=(n,)
    """
    n = np.asarray(n_bp, dtype=np.float64)
    # The unit changes where three digits round up to 1000 (999,999 bp is "1 Mb", not
    # "1e+03 kb").
    mb, kb = n >= 999_500, n >= 999.5
    value = np.where(mb, n / 1e6, np.where(kb, n / 1e3, n))
    unit = np.where(mb, " Mb", np.where(kb, " kb", " bp"))
    return np.char.add(np.char.mod("%.3g", value), unit)


def format_span(n_bp: int) -> str:
    """A span in human units: 850 bp, 12.5 kb, 1.2 Mb (:func:`format_spans` of one)."""
    return str(format_spans([n_bp])[0])


def ruler_ticks(start: int, end: int, n: int = 8) -> tuple[np.ndarray, list[str]]:
    """Round tick positions within [start, end) and their labels (1-2-5 steps).

    Returns
    -------
    values: np.ndarray[int]
    labels: list[str]
    """
    span = max(int(end) - int(start), 1)
    raw = span / max(n, 1)
    magnitude = 10 ** np.floor(np.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = np.ceil(start / step) * step
    values = np.arange(first, end, step).astype(np.int64)
    if step >= 1_000_000:
        labels = [f"{v / 1e6:,.0f} Mb" for v in values]
    elif step >= 1_000:
        digits = max(0, int(np.ceil(-np.log10(step / 1e6))))
        labels = [f"{v / 1e6:,.{digits}f} Mb" for v in values]
    else:
        labels = [f"{v:,}" for v in values]
    return values, labels


def _metric_text(track: Track) -> str:
    if track.observed is None or track.imputed is None:
        return track.status
    mse, r = track.metrics.get("mse"), track.metrics.get("pearson")
    parts = {False: ["held out: not seen in training"],
             True: ["training fit"]}.get(track.trained, ["training use not recorded"])
    if mse is not None and np.isfinite(mse):
        parts.append(f"MSE {mse:.3f}")
    if r is not None:
        parts.append(f"r {r:.2f}" if np.isfinite(r) else "r n/a")
    return " · ".join(parts)


def locus_figure(
    chrom: str,
    start: int,
    end: int,
    bin_size: int,
    tracks: list[Track],
    genes: pd.DataFrame | None = None,
    exons: pd.DataFrame | None = None,
    width_px: int = 1000,
    track_height: int | Sequence[int] = 72,
    marks: pd.DataFrame | None = None,
    y_scale: str = "assay",
) -> dict:
    """The stacked-track view of one window.

    Parameters
    ----------
    chrom: str
        Chromosome of the window.
    start, end: int
        Genomic start (bp, 0-based) of the first bin of the window and end of the last one.
    bin_size: int
        Bin size in bp (25 for the track store).
    tracks: list[Track]
        The experiments to draw, top to bottom; every array has the same length (the window's
        number of bins). Values are drawn as given (the locus page clips imputations at 0).
    genes, exons: pd.DataFrame or None
        Genes (chrom, start, end, name, strand) and exons (chrom, start, end, name) overlapping
        the window; a gene row is drawn under the tracks when ``genes`` is given.
    width_px: int
        About the plot width in pixels: the observed area is reduced to one point per pixel
        (:func:`peaks`), the imputed line to at most two (:func:`envelope`; one where the
        second would move the line by less than a pixel of its row) and the band to one per
        two pixels (:func:`bucket_bounds`), so the browser draws as little as the picture
        allows.
    track_height: int or sequence of int
        Height of the track rows in pixels: one for all, or one per track (top first), e.g.
        a track made taller or collapsed to a thin strip. The hover's cells are a common
        divisor of the rows' pitches (height + :data:`ROW_GAP`), so heights whose pitches
        share a large one keep the hover cheap (those of the locus page are multiples of
        21 px: at most 6 cells per row). Default is 72.
    marks: pd.DataFrame or None
        Intervals (start, end in bp) to mark across every row, e.g. the selected positions
        of a saved selection: shaded columns at least two pixels wide, with one legend entry.
    y_scale: str
        ``"assay"``: tracks of the same assay share one y-range, so their heights compare;
        ``"track"``: each row scales to its own values (weak tracks stay readable beside strong
        ones). Default is "assay".

    Returns
    -------
    dict
        A plotly figure as a plain dict (``{"data": [...], "layout": {...}}``; dash draws it
        as is, ``go.Figure(fig)`` makes an object of it), with a ruler on top titled with the
        chromosome. The rows share one x-axis in bp and one y-axis (``"y"``) in pixels up from
        the bottom of the last row: row ``i`` (top first) spans ``meta["rows"][i]`` =
        ``[bottom, top]``, its ``track_height`` high, and a value ``v`` of it is drawn at ``bottom
        + (v - lo) / (hi - lo) * track_height``, ``[lo, hi] = meta["ranges"][i]`` (shared per
        assay or per row: ``y_scale``); the axis's ticks write each row's 0 and top in its own
        values (:data:`SIGNAL_UNIT`), with a grid line at each row's 0. One trace draws every
        row's imputed line, one per assay every row's observed signal (a translucent area
        filled down to the row's 0, over the line, so that the line never hides it), one the
        bands of the imputations (shaded, under both): rows apart by gaps (a plotly axis and
        traces per row cost more than half of a 40-row redraw in the browser). The hover is
        an invisible heatmap per kind of row (observed and imputed, imputed only, observed
        only) on a y-axis (``"y3"``) of equal cells, ``meta["hover_unit"]`` pixels each (a
        row ``k`` units high spans ``k`` cells of its values), its tick texts the cells' rows'
        labels (drawn nowhere): one label, for the row and pixel under the pointer, with the
        row's label, the pixel's position and its peak values (the heights drawn there).
        Dragging pans the x-axis (the y-axes are fixed, so a scroll zooms the x-axis only).
        A row's label and the per-window agreement (held out or training fit) are one
        annotation. The gene row, when drawn, is the second y-axis (``"y2"``). Without tracks
        and genes, one empty row says that no track is chosen.
    """
    if y_scale not in Y_SCALES:
        raise ValueError(f"unknown y scale {y_scale!r}; expected one of {list(Y_SCALES)}")
    n_bins = _window_length(tracks)
    if tracks and n_bins != (end - start) // bin_size:
        raise ValueError(
            f"tracks hold {n_bins} bins but {chrom}:{start}-{end} spans "
            f"{(end - start) // bin_size} bins of {bin_size} bp"
        )
    has_genes = genes is not None
    gene_rows = 0
    if has_genes:
        genes = genes.reset_index(drop=True)
        gene_rows = int(pack_rows(genes["start"].to_numpy(), genes["end"].to_numpy(),
                                  min_gap=(end - start) // 50).max(initial=-1)) + 1
    # Pixels: the rows (at least one, for the "no track" message) above the gene row.
    heights = _row_heights(track_height, len(tracks))
    pitch = heights + ROW_GAP
    rows_px = int(pitch.sum()) - ROW_GAP if tracks else 72  # (or the "no track" message's)
    gene_px = max(1, gene_rows) * 34 + 16 if has_genes else 0
    plot_px = rows_px + (ROW_GAP + gene_px if has_genes else 0)
    bottoms = rows_px + ROW_GAP - np.cumsum(pitch)
    lo, hi = _y_ranges(tracks, y_scale)
    scale = heights / (hi - lo)  # pixels per unit of signal, per row

    # Plain dicts, not graph_objects: validating thousands of properties per call cost most of
    # the callback's time (see benchmarks/bench_locus.py).
    ticks, labels = ruler_ticks(start, end)
    layout = base_layout(
        height=plot_px + 76,
        margin=dict(l=58, r=12, t=70, b=6),
        showlegend=bool(tracks) or marks is not None and len(marks) > 0,
        # Above the ruler's tick labels, not over them.
        legend=dict(orientation="h", x=1.0, xanchor="right", yref="container", y=1.0,
                    yanchor="top", font=dict(size=11), bgcolor="rgba(0,0,0,0)"),
        hovermode="closest",
        # Drag pans, as in genome browsers (the modebar keeps the box zoom).
        dragmode="pan",
        uirevision=f"{chrom}:{start}-{end}",
        meta={"chrom": chrom, "start": int(start), "end": int(end), "n_tracks": len(tracks),
              "rows": [[int(b), int(b + h)] for b, h in zip(bottoms, heights)],
              "ranges": [[float(a), float(b)] for a, b in zip(lo, hi)]},
        annotations=[],
    )
    # Types given: plotly otherwise guesses each axis's type from its first trace's values.
    layout["xaxis"] = dict(type="linear", range=[start, end], showgrid=True, gridcolor=GRID,
                           tickvals=ticks, ticktext=labels, showspikes=True, spikemode="across",
                           spikethickness=1, spikecolor=MUTED, spikedash="dot", anchor="y",
                           domain=[0, 1], side="top", ticks="outside",
                           ticklabeloverflow="allow",
                           title=dict(text=f"<b>{chrom}</b>", font=dict(size=12), standoff=4))
    # ticklabeloverflow "allow": plotly measures no tick label to hide (a forced layout each).
    layout["yaxis"] = dict(type="linear", anchor="x", range=[0, rows_px], fixedrange=True,
                           domain=[1 - rows_px / plot_px, 1], ticklabeloverflow="allow",
                           **_row_ticks(bottoms, lo, hi, scale, heights))
    drawn = [_reduce(t, width_px, (b - a) / h) for t, a, b, h in zip(tracks, lo, hi, heights)]
    # Steps where a bin is wider than a pixel; beyond that a step shape only doubles the
    # vertices plotly draws.
    shape = "hv" if n_bins <= width_px else "linear"
    data = _row_traces(tracks, drawn, start, bin_size, bottoms, lo, scale, shape)
    if tracks:
        unit = gcd(*pitch.tolist())
        units = pitch // unit  # the hover's cells of each row
        data += _hover_carriers(tracks, units, chrom, start, bin_size, width_px)
        layout["meta"]["hover_unit"] = unit
        # Cell j (0 at the bottom) spans pixels [j, j + 1] * unit - ROW_GAP / 2: a row's
        # cells cover it and half the gap on each side. The hover's %{y} is the tick text
        # at the cell's centre: its row's label.
        layout["yaxis3"] = dict(type="linear", overlaying="y", anchor="x", fixedrange=True,
                                range=[(ROW_GAP / 2 - unit / 2) / unit,
                                       (rows_px + ROW_GAP / 2 - unit / 2) / unit],
                                tickmode="array", tickvals=list(range(int(units.sum()))),
                                ticktext=np.repeat([t.label for t in tracks][::-1],
                                                   units[::-1]).tolist(),
                                showticklabels=False, ticks="", showgrid=False,
                                zeroline=False, showline=False)
    colors = assay_colors([t.assay for t in tracks])
    for t, bottom, height in zip(tracks, bottoms, heights):
        # The label and the window's agreement in one annotation: plotly draws each
        # annotation twice per redraw (once to size it).
        metric_color = TEXT if t.trained is False else MUTED
        layout["annotations"].append(dict(
            text=(f"<b>{t.label}</b>  <span style='color:{metric_color};font-size:10px'>"
                  f"{_metric_text(t)}</span>"),
            xref="paper", yref="y", x=0.005, y=float(bottom + height), xanchor="left",
            yanchor="top", showarrow=False,
            font=dict(size=11, color=colors[t.assay]),
            bgcolor="rgba(255,255,255,0.8)", name="track-label"))
    if tracks:  # the unit of every track's y-axis, once, beside the rows
        layout["annotations"].append(dict(
            text=f"signal, {SIGNAL_UNIT}", xref="paper", yref="y", x=0, xshift=-50,
            y=rows_px / 2, textangle=-90, showarrow=False, font=dict(size=10, color=MUTED),
            name="signal-unit"))
    else:
        layout["annotations"].append(dict(
            text="No track chosen: click cells of the track picker to show tracks.",
            xref="paper", yref="y domain", x=0.5, y=0.5, showarrow=False,
            font=dict(color=MUTED), name="no-tracks"))
    if marks is not None and len(marks):
        _add_marks(layout, data, marks, start, end, width_px)

    if has_genes:
        for trace in gene_traces(genes, exons, start, end):
            data.append({**trace, "xaxis": "x", "yaxis": "y2"})
        layout["yaxis2"] = dict(type="linear", anchor="x", domain=[0, gene_px / plot_px],
                                range=[-0.6 - max(gene_rows - 1, 0), 0.9], fixedrange=True,
                                visible=False)
        if len(genes) == 0:
            layout["annotations"].append(dict(
                text="no genes in this window", xref="paper", yref="y2 domain", x=0.5, y=0.5,
                showarrow=False, font=dict(color=MUTED), name="no-genes"))
    return {"data": data, "layout": layout}


def _row_heights(track_height: int | Sequence[int], n_tracks: int) -> np.ndarray:
    """Each row's height (px), checked: ``track_height`` for every row or one per row."""
    heights = np.asarray(track_height)
    if heights.ndim == 0:
        heights = np.full(n_tracks, heights)
    if heights.shape != (n_tracks,) or heights.size and (
            not np.issubdtype(heights.dtype, np.integer) or (heights < 1).any()):
        raise ValueError(f"track_height must be a positive whole number of pixels or one per "
                         f"track ({n_tracks}), got {np.ravel(track_height).tolist()[:50]}")
    return heights.astype(np.int64)


def assay_colors(assays: list[str]) -> dict[str, str]:
    """The colour of each assay's tracks in a figure: the same whatever the tracks' order (the
    palette goes to the assays without a fixed colour in the order of their names), so that a
    reordered figure keeps its colours."""
    names = sorted(set(assays))
    return {a: assay_color(a, i) for i, a in enumerate(names)}


def _y_ranges(tracks: list[Track], y_scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's y-range: its assay's (``y_scale`` "assay") or its own ("track") extremes and
    0, 8 % beyond them; ``[0, 1]`` for a row of zeros.

    The reductions drawn keep every extreme (each pixel's minimum and maximum, the band's
    lowest and highest bound), so these are the extremes of what is drawn.

    Returns
    -------
    lo, hi: np.ndarray[float], shape=(n_tracks,)
    """
    keys = [t.assay if y_scale == "assay" else i for i, t in enumerate(tracks)]
    extremes: dict[str | int, tuple[float, float]] = {}
    for t, key in zip(tracks, keys):
        series = [v for v in (t.observed, t.imputed, t.low, t.high) if v is not None]
        low, high = extremes.get(key, (0.0, 0.0))
        extremes[key] = (min(low, *(float(np.min(v)) for v in series)),
                         max(high, *(float(np.max(v)) for v in series)))
    lo = np.array([extremes[k][0] for k in keys]) * 1.08
    hi = np.array([extremes[k][1] for k in keys]) * 1.08
    return lo, np.where(hi == 0, 1.0, hi)


def _reduce(track: Track, width_px: int, per_px: float) -> dict:
    """A track's series reduced to what its row's pixels show (``per_px``: the value of one
    vertical pixel of the row): ``"obs"`` (:func:`peaks`), ``"imp"`` (:func:`envelope`) and
    ``"band"`` (:func:`bucket_bounds` at one bucket per two pixels), each ``(index, values
    ...)``, where the track has them."""
    row: dict = {}
    if track.observed is not None:
        row["obs"] = peaks(track.observed, width_px)
    if track.imputed is not None:
        row["imp"] = envelope(track.imputed, width_px, tolerance=per_px)
    if track.low is not None and track.high is not None:
        # An interval, not a signal: one bucket per two pixels draws the same grey shape
        # (never narrower) with half the points of the costliest series to fill.
        row["band"] = bucket_bounds(track.low, track.high, max(1, width_px // 2))
    return row


def _row_traces(tracks: list[Track], drawn: list[dict], start: int, bin_size: int,
                bottoms: np.ndarray, lo: np.ndarray, scale: np.ndarray, shape: str
                ) -> list[dict]:
    """The drawn series of all rows, bottom to top of the drawing order: the bands (one trace
    per band kind), the imputed lines (one trace), the observed areas (one trace per assay);
    each row's part in the axis's pixels, apart from the next by a gap (a NaN)."""
    colors = assay_colors([t.assay for t in tracks])
    parts: dict[tuple, list] = {}  # (kind, band name or assay) -> [(x in bp, y in pixels)]
    for i, (t, d) in enumerate(zip(tracks, drawn)):
        def px(v, i=i):
            return bottoms[i] + (v - lo[i]) * scale[i]

        if "band" in d:  # one closed shape: along the upper bound and back along the lower
            idx, low, high = d["band"]
            parts.setdefault(("band", t.band_name), []).append(
                (np.concatenate([idx, idx[::-1]]), px(np.concatenate([high, low[::-1]]))))
        if "imp" in d:
            parts.setdefault(("imp", ""), []).append((d["imp"][0], px(d["imp"][1])))
        if "obs" in d:
            # Closed along the row's 0, back from the last point to the first.
            idx, obs = d["obs"]
            parts.setdefault(("obs", t.assay), []).append(
                (idx[np.r_[0:len(idx), -1, 0]], px(np.r_[obs, 0.0, 0.0])))
    data = []
    first_obs = True  # one legend entry for the observed areas of every assay
    for (kind, key), series in sorted(parts.items(), key=lambda kv: ("band", "imp", "obs")
                                      .index(kv[0][0])):
        x = np.concatenate([np.r_[idx, idx[-1]] for idx, _ in series])[:-1]
        y = np.concatenate([np.r_[v, np.nan] for _, v in series])[:-1]
        trace = dict(type="scatter", x=typed_array(start + x * bin_size, "i4"),
                     y=typed_array(y), mode="lines", hoverinfo="skip")
        if kind == "band":
            trace.update(line=dict(width=0, shape=shape), fill="toself",
                         fillcolor=_alpha(BAND, 0.35), name=key, legendgroup="band",
                         showlegend=True)
        elif kind == "imp":
            trace.update(line=dict(width=1.1, color=IMPUTED_LINE), name="imputed",
                         legendgroup="imputed", showlegend=True)
        else:
            color = colors[key]
            trace.update(line=dict(width=0.8, color=color, shape=shape), fill="toself",
                         fillcolor=_alpha(color, 0.5), name="observed", legendgroup="observed",
                         showlegend=first_obs)
            first_obs = False
        data.append(trace)
    return data


def _hover_carriers(tracks: list[Track], units: np.ndarray, chrom: str, start: int,
                    bin_size: int, width_px: int) -> list[dict]:
    """Invisible heatmaps whose cells answer the hover: ``units[i]`` cells of row ``i`` per
    pixel, each with the pixel's peak observed and imputed values (:func:`pixel_peaks`); one
    heatmap per kind of row (observed and imputed, imputed only, observed only), so that each
    label says what the row has, its cells in the other rows empty (each heatmap spans every
    row in cells of one height: plotly draws a heatmap whose rows are not evenly spaced cell
    by cell, at the plot's full size)."""
    n_bins = _window_length(tracks)
    size = -(-n_bins // width_px)  # bins per pixel bucket, as in _buckets
    rows = tracks[::-1]  # bottom row first, as the hover's axis
    repeat = units[::-1]
    empty = np.full(-(-n_bins // size), np.nan, dtype=np.float32)
    obs = np.stack([empty if t.observed is None else pixel_peaks(t.observed, width_px)
                    for t in rows])
    imp = np.stack([empty if t.imputed is None else pixel_peaks(t.imputed, width_px)
                    for t in rows])
    has = np.array([(t.observed is not None, t.imputed is not None) for t in rows])
    where = f"<b>%{{y}}</b><br>{chrom}:%{{x:,.0f}} (a pixel of {format_span(size * bin_size)})"
    kinds = {(True, True): ("observed + imputed", "observed %{z:.2f} · imputed %{customdata:.2f}"),
             (False, True): ("imputed only", "imputed %{z:.2f}"),
             (True, False): ("observed only", "observed %{z:.2f}")}
    centres = start + (np.arange(len(empty)) + 0.5) * size * bin_size
    data = []
    # a row's values in each of its cells
    obs, imp, has = (np.repeat(a, repeat, axis=0) for a in (obs, imp, has))
    for kind, (name, values) in kinds.items():
        mine = (has == kind).all(axis=1)[:, None]
        if not mine.any():
            continue
        # cells centred on 0, 1, ... (plotly's default y0 and dy)
        trace = dict(type="heatmap", x=typed_array(centres, "f8"),
                     z=typed_array(np.where(mine, obs if kind[0] else imp, np.nan)),
                     colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]], showscale=False,
                     zsmooth="fast", hoverongaps=False,
                     hovertemplate=f"{where}<br>{values}<extra></extra>", name=name,
                     xaxis="x", yaxis="y3")
        if kind == (True, True):
            trace["customdata"] = typed_array(np.where(mine, imp, np.nan))
        data.append(trace)
    return data


def _row_ticks(bottoms: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: np.ndarray,
               heights: np.ndarray) -> dict:
    """The y-axis ticks of every row: each row's 0 and top (and middle, where a row has room
    for three labels; its top alone in a strip too thin for two), labelled in the row's own
    values, with a grid line at each 0."""
    top = hi / 1.08
    middle = (top >= 0.4) & (heights >= 60)
    rounded = np.where(top >= 0.4, np.round(top, 1), np.round(top, 2))
    values = [[0.0, round(t / 2, 1), r] if m else [0.0, r] if h >= 2 * MIN_TICK_PX else [r]
              for t, r, m, h in zip(top, rounded, middle, heights)]
    vals = [b + (v - low) * s for b, low, s, row in zip(bottoms, lo, scale, values)
            for v in row]
    return dict(tickvals=[float(v) for v in vals],
                ticktext=[f"{v:g}" for row in values for v in row],
                tickfont=dict(size=9, color=MUTED), ticks="outside", ticklen=3, tickcolor=GRID,
                showgrid=False, zeroline=False,
                # The rows' zero lines: minor grid lines (one axis draws them all).
                minor=dict(tickvals=[float(z) for z in bottoms - lo * scale], showgrid=True,
                           gridcolor=GRID, ticks=""))


def _add_marks(layout: dict, data: list, marks: pd.DataFrame, start: int, end: int,
               width_px: int) -> None:
    """Shade the marked intervals across all rows (one shape per visible stretch)."""
    lo = np.maximum(marks["start"].to_numpy(np.int64), start)
    hi = np.minimum(marks["end"].to_numpy(np.int64), end)
    keep = hi > lo
    lo, hi = lo[keep], hi[keep]
    # At least two pixels wide (a 25 bp position in a 100 kb window is a quarter of one), and
    # merged where the widened marks touch: one shape per stretch the eye can tell apart.
    centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, (end - start) / width_px)
    lo, hi = centre - half, centre + half
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], np.maximum.accumulate(hi[order])
    new = np.ones(len(lo), dtype=bool)
    new[1:] = lo[1:] > hi[:-1]
    first = np.flatnonzero(new)
    ends = np.maximum.reduceat(hi, first) if len(first) else hi
    layout["shapes"] = [dict(type="rect", xref="x", yref="paper", x0=float(a), x1=float(b),
                             y0=0, y1=1, fillcolor=_alpha(SELECTED, 0.16), line=dict(width=0),
                             layer="below", name="selected")
                        for a, b in zip(lo[first], ends)]
    # A legend entry for the shading (shapes have none).
    data.append(dict(type="scatter", x=[None], y=[None], mode="markers", xaxis="x", yaxis="y",
                     marker=dict(symbol="square", size=12, color=_alpha(SELECTED, 0.4)),
                     name="selected positions", hoverinfo="skip",
                     showlegend=True))


def tracks_table(chrom: str, start: int, bin_size: int, tracks: list[Track]) -> pd.DataFrame:
    """The window's values at full resolution, one row per bin and one column per series.

    Columns: chrom, start, end, then ``"{biosample}.{assay}.observed"`` /
    ``"{biosample}.{assay}.imputed"`` / ``.band_low`` / ``.band_high`` for each series that
    exists.
    """
    n = _window_length(tracks)
    starts = start + np.arange(n, dtype=np.int64) * bin_size
    data = {"chrom": np.full(n, chrom), "start": starts, "end": starts + bin_size}
    for t in tracks:
        if t.observed is not None:
            data[f"{t.biosample}.{t.assay}.observed"] = np.asarray(t.observed, dtype=np.float32)
        if t.imputed is not None:
            data[f"{t.biosample}.{t.assay}.imputed"] = np.asarray(t.imputed, dtype=np.float32)
        if t.low is not None and t.high is not None:
            data[f"{t.biosample}.{t.assay}.band_low"] = np.asarray(t.low, dtype=np.float32)
            data[f"{t.biosample}.{t.assay}.band_high"] = np.asarray(t.high, dtype=np.float32)
    return pd.DataFrame(data)


def _window_length(tracks: list[Track]) -> int:
    lengths = {len(v) for t in tracks for v in (t.observed, t.imputed) if v is not None}
    if len(lengths) > 1:
        raise ValueError(f"tracks cover windows of different lengths: {sorted(lengths)}")
    if any(t.observed is None and t.imputed is None for t in tracks):
        bad = [t.label for t in tracks if t.observed is None and t.imputed is None]
        raise ValueError(f"tracks without any values: {bad}")
    return lengths.pop() if lengths else 0


def _alpha(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
