"""Locus view: stacked signal tracks on one shared genomic axis, with a gene track and a ruler.

Pure builders: arrays and DataFrames in, a plotly figure (plain dict) out. Nothing here reads files.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .genes import gene_traces, pack_rows
from .style import BAND, GRID, IMPUTED_LINE, MUTED, SELECTED, TEXT, assay_color, base_layout

__all__ = [
    "Track",
    "envelope",
    "peaks",
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
#: The legend's entries in this order, whichever track shows them first.
LEGEND_RANKS = {"band": 1, "imputed": 2, "observed": 3}


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


def envelope(values: np.ndarray, n_px: int) -> tuple[np.ndarray, np.ndarray]:
    """At most two points per pixel: the minimum and the maximum of each pixel's bins.

    Parameters
    ----------
    values: np.ndarray, shape=(n,)
        Values of consecutive bins.
    n_px: int
        The number of pixel buckets (about the plot width). When ``n <= 2 * n_px`` the values
        are returned unchanged.

    Returns
    -------
    index: np.ndarray[int], shape=(m,)
        Bin index of each point (m <= 2 n_px), increasing: per bucket the minimum and the
        maximum, in the order they occur, so a line through them keeps every peak and dip.
    values: np.ndarray[float32], shape=(m,)
    """
    values = np.asarray(values, dtype=np.float32)
    _check_px(n_px)
    if values.shape[0] <= 2 * n_px:
        return np.arange(values.shape[0]), values.copy()
    _, lo, hi = _buckets(values, n_px)
    index = np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], axis=1).ravel()
    keep = np.ones(index.size, dtype=bool)
    keep[1::2] = index[1::2] != index[0::2]  # a flat bucket gives one point
    index = index[keep]
    return index, values[index]


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
    track_height: int = 72,
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
        About the plot width in pixels: the imputed line is reduced to at most two points per
        pixel (:func:`envelope`), the observed area to one (:func:`peaks`) and the band to one
        per two pixels (:func:`bucket_bounds`), so the browser draws as little as the picture
        allows.
    track_height: int
        Height of one track row in pixels.
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
        as is, ``go.Figure(fig)`` makes an object of it). One row per track plus a gene row,
        shared x-axis in bp with a ruler on top titled with the chromosome. Per row, bottom to
        top: the imputation's band (shaded), the imputed line, the observed signal as a
        translucent filled step area (so the line never hides it); y-ranges per assay or per
        row (``y_scale``), with ticks in :data:`SIGNAL_UNIT`. Dragging pans the x-axis (the
        y-axes are fixed, so a scroll zooms the x-axis only). Row labels and the per-window
        agreement (held out or training fit) are annotations. Without tracks and genes, one
        empty row says that no track is chosen.
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
    n_rows = max(len(tracks) + (1 if has_genes else 0), 1)
    gene_height = max(1, gene_rows) * 34 + 16
    heights = ([track_height] * len(tracks) + ([gene_height] if has_genes else [])
               or [track_height])
    total = sum(heights) + 64
    domains = _row_domains(heights, gap=min(8 / total, 0.2 / n_rows))

    # One y-range per assay (or per row), from the reduced values that are actually drawn.
    drawn: list[dict] = []
    scale_keys = [t.assay if y_scale == "assay" else i for i, t in enumerate(tracks)]
    ymax: dict[str | int, float] = {}
    ymin: dict[str | int, float] = {}
    for t, key in zip(tracks, scale_keys):
        row: dict = {}
        if t.observed is not None:
            row["obs"] = peaks(t.observed, width_px)
        if t.imputed is not None:
            row["imp"] = envelope(t.imputed, width_px)
        if t.low is not None and t.high is not None:
            # An interval, not a signal: one bucket per two pixels draws the same grey shape
            # (never narrower) with half the points of the costliest series to fill.
            row["band"] = bucket_bounds(t.low, t.high, max(1, width_px // 2))
        values = [v[-1] for v in (row.get("obs"), row.get("imp")) if v is not None]
        if "band" in row:
            values += [row["band"][1], row["band"][2]]
        ymax[key] = max(ymax.get(key, 0.0), *(float(np.max(v, initial=0.0)) for v in values))
        ymin[key] = min(ymin.get(key, 0.0), *(float(np.min(v, initial=0.0)) for v in values))
        drawn.append(row)

    # Plain dicts, not graph_objects: validating thousands of properties per call cost most of
    # the callback's time (see benchmarks/bench_locus.py).
    ticks, labels = ruler_ticks(start, end)
    layout = base_layout(
        height=total,
        margin=dict(l=58, r=12, t=70, b=6),
        showlegend=bool(tracks) or marks is not None and len(marks) > 0,
        # Above the ruler's tick labels, not over them.
        legend=dict(orientation="h", x=1.0, xanchor="right", yref="container", y=1.0,
                    yanchor="top", font=dict(size=11), bgcolor="rgba(0,0,0,0)"),
        hovermode="x",
        # Drag pans, as in genome browsers (the modebar keeps the box zoom).
        dragmode="pan",
        uirevision=f"{chrom}:{start}-{end}",
        meta={"chrom": chrom, "start": int(start), "end": int(end), "n_tracks": len(tracks)},
        annotations=[],
    )
    data: list[dict] = []
    # One x-axis for every row (the ruler on top of the first): one axis to lay out and draw
    # instead of one per row, and a zoom on any row moves them all.
    layout["xaxis"] = dict(range=[start, end], showgrid=True, gridcolor=GRID, tickvals=ticks,
                           ticktext=labels, showspikes=True, spikemode="across",
                           spikethickness=1, spikecolor=MUTED, spikedash="dot", anchor="y",
                           domain=[0, 1], side="top", ticks="outside",
                           ticklabeloverflow="allow",
                           title=dict(text=f"<b>{chrom}</b>", font=dict(size=12), standoff=4))
    for row in range(1, n_rows + 1):
        # ticklabeloverflow "allow": plotly measures no tick label to hide (a forced layout each).
        layout[_axis("yaxis", row)] = dict(anchor="x", domain=domains[row - 1], fixedrange=True,
                                           ticklabeloverflow="allow")

    colors = assay_colors([t.assay for t in tracks])
    shown_legend = set()
    # Steps where a bin is wider than a pixel; beyond that a step shape only doubles the
    # vertices plotly draws.
    shape = "hv" if n_bins <= width_px else "linear"

    def legend_once(name: str) -> bool:
        first = name not in shown_legend
        shown_legend.add(name)
        return first

    for row, (t, d, key) in enumerate(zip(tracks, drawn, scale_keys), start=1):
        color = colors[t.assay]
        hover = f"{t.label}<br>{chrom}:%{{x:,}}: %{{y:.2f}}<extra>%{{fullData.name}}</extra>"
        axes = dict(xaxis="x", yaxis=_axis("y", row))
        if "band" in d:  # one closed shape: along the upper bound and back along the lower
            idx, low, high = d["band"]
            x = start + idx * bin_size
            data.append(dict(type="scatter", x=typed_array(np.concatenate([x, x[::-1]]), "i4"),
                             y=typed_array(np.concatenate([high, low[::-1]])), mode="lines",
                             hoverinfo="skip", line=dict(width=0, shape=shape), fill="toself",
                             fillcolor=_alpha(BAND, 0.35), name=t.band_name,
                             legendgroup="band", legendrank=LEGEND_RANKS["band"],
                             showlegend=legend_once(t.band_name), **axes))
        if "imp" in d:
            idx, imp = d["imp"]
            data.append(dict(
                type="scatter", x=typed_array(start + idx * bin_size, "i4"),
                y=typed_array(imp), mode="lines",
                line=dict(width=1.1, color=IMPUTED_LINE), name="imputed", legendgroup="imputed",
                legendrank=LEGEND_RANKS["imputed"], showlegend=legend_once("imputed"),
                hovertemplate=hover, **axes))
        if "obs" in d:
            idx, obs = d["obs"]
            data.append(dict(
                type="scatter", x=typed_array(start + idx * bin_size, "i4"),
                y=typed_array(obs), mode="lines",
                line=dict(width=0.8, color=color, shape=shape), fill="tozeroy",
                fillcolor=_alpha(color, 0.5), name="observed", legendgroup="observed",
                legendrank=LEGEND_RANKS["observed"], showlegend=legend_once("observed"),
                hovertemplate=hover, **axes))
        top = ymax[key]
        layout[_axis("yaxis", row)].update(
            range=[ymin[key] * 1.08, top * 1.08 or 1.0],
            # a middle tick only where a row has room for three labels
            tickvals=([0, round(top / 2, 1), round(top, 1)] if top >= 0.4 and track_height >= 60
                      else [0, round(top, 1 if top >= 0.4 else 2)]),
            tickfont=dict(size=9, color=MUTED), ticks="outside", ticklen=3,
            tickcolor=GRID, showgrid=False, zeroline=True, zerolinecolor=GRID)
        yref = f"{_axis('y', row)} domain"
        layout["annotations"] += [
            dict(text=f"<b>{t.label}</b>", xref="paper", yref=yref, x=0.005, y=1.0,
                 xanchor="left", yanchor="top", showarrow=False,
                 font=dict(size=11, color=color), bgcolor="rgba(255,255,255,0.8)",
                 name="track-label"),
            dict(text=_metric_text(t), xref="paper", yref=yref, x=0.995, y=1.0,
                 xanchor="right", yanchor="top", showarrow=False,
                 font=dict(size=10, color=TEXT if t.trained is False else MUTED),
                 bgcolor="rgba(255,255,255,0.8)", name="track-metric"),
        ]
    if tracks:  # the unit of every track's y-axis, once, beside the rows
        layout["annotations"].append(dict(
            text=f"signal, {SIGNAL_UNIT}", xref="paper", yref="paper", x=0, xshift=-50,
            y=(domains[0][1] + domains[len(tracks) - 1][0]) / 2, textangle=-90,
            showarrow=False, font=dict(size=10, color=MUTED), name="signal-unit"))

    if not tracks:
        layout["annotations"].append(dict(
            text="No track chosen: click cells of the track picker to show tracks.",
            xref="paper", yref="y domain", x=0.5, y=1.0 if has_genes else 0.5,
            yanchor="top" if has_genes else "middle", showarrow=False,
            font=dict(color=MUTED), name="no-tracks"))
    if marks is not None and len(marks):
        _add_marks(layout, data, marks, start, end, width_px)

    if has_genes:
        row = n_rows
        for trace in gene_traces(genes, exons, start, end):
            data.append({**trace, "xaxis": "x", "yaxis": _axis("y", row)})
        layout[_axis("yaxis", row)].update(range=[-0.6 - max(gene_rows - 1, 0), 0.9],
                                           visible=False)
        if len(genes) == 0:
            layout["annotations"].append(dict(
                text="no genes in this window", xref="paper",
                yref=f"{_axis('y', row)} domain", x=0.5, y=0.5, showarrow=False,
                font=dict(color=MUTED), name="no-genes"))
    return {"data": data, "layout": layout}


def assay_colors(assays: list[str]) -> dict[str, str]:
    """The colour of each assay's tracks in a figure: the same whatever the tracks' order (the
    palette goes to the assays without a fixed colour in the order of their names), so that a
    reordered figure keeps its colours."""
    names = sorted(set(assays))
    return {a: assay_color(a, i) for i, a in enumerate(names)}


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


def _axis(prefix: str, row: int) -> str:
    """Plotly's axis names: x, x2, ... (or xaxis, xaxis2, ... for layout keys)."""
    return prefix if row == 1 else f"{prefix}{row}"


def _row_domains(heights: list[int], gap: float) -> list[list[float]]:
    """Vertical domains [bottom, top] of stacked rows, top row first."""
    h = np.asarray(heights, dtype=float)
    usable = 1.0 - gap * (len(h) - 1)
    sizes = h / h.sum() * usable
    tops = 1.0 - np.concatenate([[0.0], np.cumsum(sizes[:-1] + gap)])
    return [[float(max(t - sz, 0.0)), float(t)] for t, sz in zip(tops, sizes)]


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
