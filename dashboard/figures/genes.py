"""Gene track traces: introns thin with strand arrows, exons thick, names; clickable genes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .style import GENE

__all__ = ["pack_rows", "gene_traces"]

EXON_HALF_HEIGHT = 0.22


def pack_rows(starts: np.ndarray, ends: np.ndarray, min_gap: int = 0) -> np.ndarray:
    """Assign intervals to rows so that intervals in one row do not overlap (greedy, by start).

    Parameters
    ----------
    starts, ends: np.ndarray[int], shape=(n,)
        Interval bounds.
    min_gap: int
        Space to keep between two intervals of the same row (room for a label). Default is 0.

    Returns
    -------
    np.ndarray[int], shape=(n,)
        The row of each interval (0 = top), in the input order.
    """
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    rows = np.zeros(len(starts), dtype=np.int64)
    row_ends: list[int] = []
    # A loop over genes (tens per window), not over positions.
    for i in np.argsort(starts, kind="stable"):
        for r, last in enumerate(row_ends):
            if starts[i] >= last + min_gap:
                row_ends[r] = ends[i]
                rows[i] = r
                break
        else:
            rows[i] = len(row_ends)
            row_ends.append(ends[i])
    return rows


def _segments(x0: np.ndarray, x1: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Line segments (x0, y)-(x1, y) as one polyline broken by NaN."""
    n = len(x0)
    xs = np.column_stack([x0, x1, np.full(n, np.nan)]).ravel()
    ys = np.column_stack([y, y, np.full(n, np.nan)]).ravel()
    return xs, ys


def _rectangles(x0, x1, y, half) -> tuple[np.ndarray, np.ndarray]:
    """Closed rectangles as one polygon list broken by NaN (for fill="toself")."""
    n = len(x0)
    nan = np.full(n, np.nan)
    xs = np.column_stack([x0, x1, x1, x0, x0, nan]).ravel()
    ys = np.column_stack([y - half, y - half, y + half, y + half, y - half, nan]).ravel()
    return xs, ys


def gene_traces(
    genes: pd.DataFrame, exons: pd.DataFrame | None, start: int, end: int
) -> list[dict]:
    """Traces of the gene track for the window [start, end).

    Parameters
    ----------
    genes: pd.DataFrame
        Columns start, end, name, strand ("+" / "-"); one row per gene.
    exons: pd.DataFrame or None
        Columns start, end, name (the gene's name); exons of genes not in ``genes`` are ignored.
    start, end: int
        The window, to clip genes and space the strand arrows.

    Returns
    -------
    list[dict]
        Plotly scatter traces as plain dicts: introns (thin lines), exons (filled rectangles),
        strand arrows and names. The arrow and name points carry the gene name as
        ``customdata`` so that a click can go to the gene.
    """
    if len(genes) == 0:
        return [dict(type="scatter", x=[start, end], y=[0, 0], mode="lines", line=dict(width=0),
                           hoverinfo="skip", showlegend=False, name="genes")]
    genes = genes.reset_index(drop=True)
    g0 = np.maximum(genes["start"].to_numpy(np.int64), start)
    g1 = np.minimum(genes["end"].to_numpy(np.int64), end)
    row = pack_rows(g0, g1, min_gap=(end - start) // 50)
    y = -row.astype(float)
    names = genes["name"].astype(str).to_numpy()
    if "strand" in genes:
        strand = genes["strand"].astype(str).to_numpy()
    else:
        strand = np.full(len(genes), ".")
    traces: list[dict] = []

    xs, ys = _segments(g0, g1, y)
    traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", line=dict(color=GENE, width=1),
                             hoverinfo="skip", showlegend=False, name="introns"))

    if exons is not None and len(exons):
        row_of = dict(zip(names, y))
        ex = exons[exons["name"].astype(str).isin(row_of)]
        e0 = np.maximum(ex["start"].to_numpy(np.int64), start)
        e1 = np.minimum(ex["end"].to_numpy(np.int64), end)
        keep = e1 > e0
        ey = ex["name"].astype(str).map(row_of).to_numpy(float)[keep]
        xs, ys = _rectangles(e0[keep], e1[keep], ey, EXON_HALF_HEIGHT)
        traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", fill="toself", fillcolor=GENE,
                                 line=dict(color=GENE, width=0.5), hoverinfo="skip",
                                 showlegend=False, name="exons"))

    # Strand arrows every ~1/30 of the window along each gene (at least one per gene).
    step = max((end - start) // 30, 1)
    counts = np.maximum((g1 - g0) // step, 1)
    gene_idx = np.repeat(np.arange(len(genes)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ax = g0[gene_idx] + (within + 0.5) * (g1 - g0)[gene_idx] / counts[gene_idx]
    symbols = np.where(strand[gene_idx] == "-", "triangle-left", "triangle-right")
    traces.append(dict(type="scatter",
        x=ax, y=y[gene_idx], mode="markers",
        marker=dict(symbol=symbols, size=7, color="white", line=dict(color=GENE, width=1)),
        customdata=names[gene_idx], name="strand",
        hovertemplate="<b>%{customdata}</b> (click to go to the gene)<extra></extra>",
        showlegend=False,
    ))

    traces.append(dict(type="scatter",
        x=(g0 + g1) / 2, y=y + 0.42, mode="text+markers", text=names,
        textfont=dict(size=11, color=GENE), textposition="middle center",
        marker=dict(size=14, opacity=0), customdata=names, name="gene names",
        hovertext=[f"{n} ({s}) {a:,}-{b:,}" for n, s, a, b in zip(
            names, strand, genes["start"], genes["end"])],
        hovertemplate="<b>%{hovertext}</b><br>click to go to the gene<extra></extra>",
        showlegend=False,
    ))
    return traces

