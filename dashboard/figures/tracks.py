"""Locus view: stacked signal tracks on one shared genomic axis, with a gene track and a ruler.

Pure builders: arrays and DataFrames in, a plotly figure (plain dict) out. Nothing here reads files.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .genes import gene_traces, pack_rows
from .style import GRID, IMPUTED, MUTED, assay_color, base_layout

__all__ = [
    "Track",
    "rebin",
    "ruler_ticks",
    "format_span",
    "locus_figure",
    "tracks_table",
]


@dataclass
class Track:
    """One experiment's values over the window, observed and/or imputed (float arrays or None).

    ``metrics`` holds the per-window agreement of imputed versus observed (``{"mse": ..,
    "pearson": ..}``) when both exist; it is computed by the caller at full resolution.
    """

    biosample: str
    assay: str
    observed: np.ndarray | None = None
    imputed: np.ndarray | None = None
    metrics: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.biosample} · {self.assay}"

    @property
    def status(self) -> str:
        """"observed + imputed", "imputed only" or "observed only"."""
        if self.observed is not None and self.imputed is not None:
            return "observed + imputed"
        return "imputed only" if self.imputed is not None else "observed only"


def typed_array(values: np.ndarray) -> dict:
    """A plotly.js typed array (``{"dtype", "bdata"}``, base64) for a trace's x or y.

    A JSON list of the same numbers is about three times larger and is written one float at
    a time by Python's JSON encoder: for a 10-track window that was two thirds of the
    callback's time. Integers that fit become int32, other numbers float32.
    """
    values = np.asarray(values)
    if values.dtype.kind in "iu" and (values.size == 0 or (values.min() >= -2**31
                                                           and values.max() < 2**31)):
        values, dtype = values.astype("<i4"), "i4"
    else:
        values, dtype = values.astype("<f4"), "f4"
    return {"dtype": dtype, "bdata": base64.b64encode(values.tobytes()).decode("ascii")}


def rebin(values: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over about ``n_out`` equal chunks.

    Parameters
    ----------
    values: np.ndarray, shape=(n,)
        Values of consecutive bins.
    n_out: int
        The number of chunks wanted (about the screen width in pixels). When ``n <= n_out`` the
        values are returned unchanged.

    Returns
    -------
    starts: np.ndarray[int], shape=(m,)
        Index of the first bin of each chunk (m <= n_out).
    means: np.ndarray[float32], shape=(m,)
        The mean of each chunk.
    """
    values = np.asarray(values, dtype=np.float32)
    n = values.shape[0]
    if n_out < 1:
        raise ValueError(f"n_out must be >= 1, got {n_out}")
    if n <= n_out:
        return np.arange(n), values.copy()
    starts = np.unique(np.linspace(0, n, n_out + 1).astype(np.int64)[:-1])
    sums = np.add.reduceat(values.astype(np.float64), starts)
    counts = np.diff(np.append(starts, n))
    return starts, (sums / counts).astype(np.float32)


def format_span(n_bp: int) -> str:
    """A span in human units: 850 bp, 12.5 kb, 1.2 Mb."""
    if n_bp >= 1_000_000:
        return f"{n_bp / 1e6:.3g} Mb"
    if n_bp >= 1_000:
        return f"{n_bp / 1e3:.3g} kb"
    return f"{n_bp} bp"


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
    parts = []
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
        number of bins).
    genes, exons: pd.DataFrame or None
        Genes (chrom, start, end, name, strand) and exons (chrom, start, end, name) overlapping
        the window; a gene row is drawn under the tracks when ``genes`` is given.
    width_px: int
        About the plot width in pixels: values are re-binned (mean) to this many points.
    track_height: int
        Height of one track row in pixels.

    Returns
    -------
    dict
        A plotly figure as a plain dict (``{"data": [...], "layout": {...}}``; dash draws it
        as is, ``go.Figure(fig)`` makes an object of it). One row per track plus a gene row,
        shared x-axis in bp with a ruler on top. Observed
        values are a filled step area, imputed values a line over it; tracks of the same assay
        share one y-range. Row labels and the per-window agreement are annotations.
    """
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
    n_rows = len(tracks) + (1 if has_genes else 0)
    if n_rows == 0:
        raise ValueError("nothing to draw: no tracks and no gene track")
    gene_height = max(1, gene_rows) * 34 + 16
    heights = [track_height] * len(tracks) + ([gene_height] if has_genes else [])
    total = sum(heights) + 40
    domains = _row_domains(heights, gap=min(8 / total, 0.2 / n_rows))

    # One y-range per assay, from the re-binned values that are actually drawn.
    drawn: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []
    ymax: dict[str, float] = {}
    ymin: dict[str, float] = {}
    for t in tracks:
        idx, obs = rebin(t.observed, width_px) if t.observed is not None else (None, None)
        idx2, imp = rebin(t.imputed, width_px) if t.imputed is not None else (None, None)
        x = start + (idx if idx is not None else idx2) * bin_size
        drawn.append((x, obs, imp))
        top = max(float(np.max(v, initial=0.0)) for v in (obs, imp) if v is not None)
        low = min(float(np.min(v, initial=0.0)) for v in (obs, imp) if v is not None)
        ymax[t.assay] = max(ymax.get(t.assay, 0.0), top)
        ymin[t.assay] = min(ymin.get(t.assay, 0.0), low)

    # Plain dicts, not graph_objects: validating thousands of properties per call cost most of
    # the callback's time (see benchmarks/bench_locus.py).
    ticks, labels = ruler_ticks(start, end)
    layout = base_layout(
        height=total,
        margin=dict(l=46, r=12, t=52, b=6),
        showlegend=bool(tracks),
        # Above the ruler's tick labels, not over them.
        legend=dict(orientation="h", x=1.0, xanchor="right", yref="container", y=1.0,
                    yanchor="top", font=dict(size=11), bgcolor="rgba(0,0,0,0)"),
        hovermode="x",
        dragmode="zoom",
        uirevision=f"{chrom}:{start}-{end}",
        meta={"chrom": chrom, "start": int(start), "end": int(end), "n_tracks": len(tracks)},
        annotations=[],
    )
    data: list[dict] = []
    for row in range(1, n_rows + 1):
        xa = dict(range=[start, end], showgrid=True, gridcolor=GRID, tickvals=ticks,
                  ticktext=labels, showspikes=True, spikemode="across", spikethickness=1,
                  spikecolor=MUTED, spikedash="dot", anchor=_axis("y", row), domain=[0, 1],
                  showticklabels=row == 1)
        if row == 1:  # the ruler: tick labels on top of the first row
            xa.update(side="top", ticks="outside")
        else:
            xa["matches"] = "x"
        layout[_axis("xaxis", row)] = xa
        layout[_axis("yaxis", row)] = dict(anchor=_axis("x", row), domain=domains[row - 1],
                                           fixedrange=True)

    assays = list(dict.fromkeys(t.assay for t in tracks))
    shown_legend = set()
    for row, (t, (x, obs, imp)) in enumerate(zip(tracks, drawn), start=1):
        color = assay_color(t.assay, assays.index(t.assay))
        hover = f"{t.label}<br>%{{x:,}}: %{{y:.2f}}<extra>%{{fullData.name}}</extra>"
        axes = dict(xaxis=_axis("x", row), yaxis=_axis("y", row))
        if obs is not None:
            data.append(dict(
                type="scatter", x=typed_array(x), y=typed_array(obs), mode="lines",
                line=dict(width=0.5, color=color, shape="hv"), fill="tozeroy",
                fillcolor=_alpha(color, 0.45), name="observed", legendgroup="observed",
                showlegend="observed" not in shown_legend, hovertemplate=hover, **axes))
            shown_legend.add("observed")
        if imp is not None:
            data.append(dict(
                type="scatter", x=typed_array(x), y=typed_array(imp), mode="lines",
                line=dict(width=1.4, color=IMPUTED, shape="hv"), name="imputed",
                legendgroup="imputed", showlegend="imputed" not in shown_legend,
                hovertemplate=hover, **axes))
            shown_legend.add("imputed")
        layout[_axis("yaxis", row)].update(
            range=[ymin[t.assay] * 1.08, ymax[t.assay] * 1.08 or 1.0],
            tickvals=[0, round(ymax[t.assay], 1)], tickfont=dict(size=9, color=MUTED),
            showgrid=False, zeroline=True, zerolinecolor=GRID)
        yref = f"{_axis('y', row)} domain"
        layout["annotations"] += [
            dict(text=f"<b>{t.label}</b>", xref="paper", yref=yref, x=0.005, y=1.0,
                 xanchor="left", yanchor="top", showarrow=False,
                 font=dict(size=11, color=color), bgcolor="rgba(255,255,255,0.75)",
                 name="track-label"),
            dict(text=_metric_text(t), xref="paper", yref=yref, x=0.995, y=1.0,
                 xanchor="right", yanchor="top", showarrow=False,
                 font=dict(size=10, color=MUTED), bgcolor="rgba(255,255,255,0.75)",
                 name="track-metric"),
        ]

    if has_genes:
        row = n_rows
        for trace in gene_traces(genes, exons, start, end):
            data.append({**trace, "xaxis": _axis("x", row), "yaxis": _axis("y", row)})
        layout[_axis("yaxis", row)].update(range=[-0.6 - max(gene_rows - 1, 0), 0.9],
                                           visible=False)
        if len(genes) == 0:
            layout["annotations"].append(dict(
                text="no genes in this window", xref="paper",
                yref=f"{_axis('y', row)} domain", x=0.5, y=0.5, showarrow=False,
                font=dict(color=MUTED), name="no-genes"))
    return {"data": data, "layout": layout}


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
    ``"{biosample}.{assay}.imputed"`` for each series that exists.
    """
    n = _window_length(tracks)
    starts = start + np.arange(n, dtype=np.int64) * bin_size
    data = {"chrom": np.full(n, chrom), "start": starts, "end": starts + bin_size}
    for t in tracks:
        if t.observed is not None:
            data[f"{t.biosample}.{t.assay}.observed"] = np.asarray(t.observed, dtype=np.float32)
        if t.imputed is not None:
            data[f"{t.biosample}.{t.assay}.imputed"] = np.asarray(t.imputed, dtype=np.float32)
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
