"""The track picker: the biosample x assay tensor as a clickable grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .style import SELECTED, base_layout

__all__ = ["STATUS_CODES", "STATUS_COLORS", "picker_figure"]

STATUS_CODES = {"missing": 0, "imputed": 1, "observed": 2}
STATUS_COLORS = ["#f0f4f8", "#fcd9bd", "#486581"]


def picker_figure(status: pd.DataFrame, selected: Sequence[tuple[str, str]] = (),
                  cell: int = 18) -> go.Figure:
    """A grid with one cell per (biosample, assay), coloured by status, selected cells marked.

    Parameters
    ----------
    status: pd.DataFrame
        Biosamples x assays of "observed" / "imputed" / "missing" (``Workspace.status()``).
    selected: sequence of (biosample, assay)
        Cells to mark as chosen.
    cell: int
        Cell size in pixels.

    Returns
    -------
    go.Figure
        A heatmap (hover: name and status; click: ``x`` = assay, ``y`` = biosample) plus a
        marker layer for the selected cells.
    """
    bios = [str(b) for b in status.index]
    assays = [str(a) for a in status.columns]
    bad = set(np.unique(status.to_numpy())) - set(STATUS_CODES)
    if bad:
        raise ValueError(f"unknown status values {sorted(bad)}; expected {list(STATUS_CODES)}")
    codes = np.vectorize(STATUS_CODES.get, otypes=[int])(status.to_numpy()) if status.size else \
        np.zeros(status.shape, dtype=int)
    scale = [[0.0, STATUS_COLORS[0]], [0.33, STATUS_COLORS[0]], [0.34, STATUS_COLORS[1]],
             [0.66, STATUS_COLORS[1]], [0.67, STATUS_COLORS[2]], [1.0, STATUS_COLORS[2]]]
    fig = go.Figure(go.Heatmap(
        z=codes, x=assays, y=bios, zmin=0, zmax=2, colorscale=scale, showscale=False,
        xgap=2, ygap=2, customdata=status.to_numpy(),
        hovertemplate="%{y} · %{x}<br>%{customdata}<br>click to show / hide<extra></extra>",
    ))
    sel = [(str(b), str(a)) for b, a in selected if str(b) in bios and str(a) in assays]
    fig.add_trace(go.Scatter(
        x=[a for _, a in sel], y=[b for b, _ in sel], mode="markers", name="shown",
        marker=dict(symbol="circle", size=max(cell // 2.5, 5), color=SELECTED,
                    line=dict(width=1, color="white")),
        hovertemplate="%{y} · %{x}<br>shown (click to hide)<extra></extra>", showlegend=False,
    ))
    n_rows, n_cols = len(bios), len(assays)
    longest = max((len(b) for b in bios), default=4)
    top = min(max((len(a) for a in assays), default=4), 12) * 6 + 12
    fig.update_layout(**base_layout(
        height=cell * n_rows + top + 10,
        width=cell * n_cols + min(longest, 18) * 7 + 30,
        margin=dict(l=min(longest, 18) * 7 + 10, r=10, t=top, b=10, autoexpand=False),
        xaxis=dict(side="top", tickangle=-90, tickfont=dict(size=10), fixedrange=True,
                   showgrid=False, automargin=False),
        yaxis=dict(autorange="reversed", tickfont=dict(size=10), fixedrange=True,
                   showgrid=False, automargin=False),
        hovermode="closest",
    ))
    return fig
