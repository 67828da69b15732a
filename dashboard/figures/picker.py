"""The track picker: the biosample x assay tensor as a clickable grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .style import SELECTED, base_layout

__all__ = ["STATUS_CODES", "STATUS_COLORS", "STATUS_LABELS", "picker_figure"]

STATUS_CODES = {"missing": 0, "imputed": 1, "held out": 2, "observed": 3}
STATUS_COLORS = ["#f0f4f8", "#fcd9bd", "#3fa796", "#334e68"]
#: What each status means, for the legend and the hover text.
STATUS_LABELS = {"observed": "observed (trained on)", "held out": "held out (not trained on)",
                 "imputed": "imputed only", "missing": "not imputed"}
BAND_SCALE = "Greys"


def picker_figure(status: pd.DataFrame, selected: Sequence[tuple[str, str]] = (),
                  cell: int = 18, band_widths: pd.DataFrame | None = None) -> go.Figure:
    """A grid with one cell per (biosample, assay), coloured by status, selected cells marked.

    Parameters
    ----------
    status: pd.DataFrame
        Biosamples x assays of "observed" / "held out" / "imputed" / "missing"
        (``Workspace.status()``).
    selected: sequence of (biosample, assay)
        Cells to mark as chosen.
    cell: int
        Cell size in pixels.
    band_widths: pd.DataFrame or None
        Colour the cells by the imputation's uncertainty instead (mean half-width of its band,
        ``Workspace.band_widths()``; NaN cells blank).

    Returns
    -------
    go.Figure
        A heatmap (hover: name, status, band width and what a click does; click: ``x`` =
        assay, ``y`` = biosample) plus marks on the selected cells that take no hover or
        click, so a click always reaches the cell under the pointer.
    """
    bios = [str(b) for b in status.index]
    assays = [str(a) for a in status.columns]
    bad = set(np.unique(status.to_numpy())) - set(STATUS_CODES)
    if bad:
        raise ValueError(f"unknown status values {sorted(bad)}; expected {list(STATUS_CODES)}")
    sel = [(str(b), str(a)) for b, a in selected if str(b) in bios and str(a) in assays]
    # What a click on each cell does, in the cell's own hover text: the marks of the chosen
    # cells take no hover or click (a mark caught clicks meant for the cell beside it).
    action = np.full(status.shape, "click to show", dtype=object)
    if sel:
        rows = [bios.index(b) for b, _ in sel]
        cols = [assays.index(a) for _, a in sel]
        action[rows, cols] = "shown · click to hide"
    labels = status.replace(STATUS_LABELS).to_numpy().astype(object)
    if band_widths is None:
        codes = (np.vectorize(STATUS_CODES.get, otypes=[int])(status.to_numpy()) if status.size
                 else np.zeros(status.shape, dtype=int))
        n = len(STATUS_COLORS)
        scale = []
        for i, color in enumerate(STATUS_COLORS):
            scale += [[i / n, color], [(i + 1) / n - 1e-6 if i < n - 1 else 1.0, color]]
        heat = dict(z=codes, zmin=-0.5, zmax=n - 0.5, colorscale=scale, showscale=False,
                    customdata=np.stack([labels, action], axis=-1),
                    hovertemplate="%{y} · %{x}<br>%{customdata[0]}<br>%{customdata[1]}"
                                  "<extra></extra>")
    else:
        widths = band_widths.reindex(index=status.index, columns=status.columns)
        text = np.where(np.isfinite(widths.to_numpy()),
                        np.char.mod("band ±%.2f", np.nan_to_num(widths.to_numpy())), "no band")
        heat = dict(z=widths.to_numpy(), colorscale=BAND_SCALE, showscale=True,
                    customdata=np.stack([labels, text, action], axis=-1),
                    colorbar=dict(title=dict(text="band", side="right"), thickness=8,
                                  len=1.0, outlinewidth=0, tickfont=dict(size=9)),
                    hovertemplate="%{y} · %{x}<br>%{customdata[0]}<br>%{customdata[1]}"
                                  "<br>%{customdata[2]}<extra></extra>")
    fig = go.Figure(go.Heatmap(x=assays, y=bios, xgap=2, ygap=2, **heat))
    fig.add_trace(go.Scatter(
        x=[a for _, a in sel], y=[b for b, _ in sel], mode="markers", name="shown",
        marker=dict(symbol="circle", size=max(cell // 2.5, 5), color=SELECTED,
                    line=dict(width=1, color="white")),
        hoverinfo="skip", showlegend=False,
    ))
    n_rows, n_cols = len(bios), len(assays)
    longest = max((len(b) for b in bios), default=4)
    top = min(max((len(a) for a in assays), default=4), 12) * 6 + 12
    right = 50 if band_widths is not None else 10
    fig.update_layout(**base_layout(
        height=cell * n_rows + top + 10,
        width=cell * n_cols + min(longest, 18) * 7 + 20 + right,
        margin=dict(l=min(longest, 18) * 7 + 10, r=right, t=top, b=10, autoexpand=False),
        xaxis=dict(side="top", tickangle=-90, tickfont=dict(size=10), fixedrange=True,
                   showgrid=False, automargin=False),
        yaxis=dict(autorange="reversed", tickfont=dict(size=10), fixedrange=True,
                   showgrid=False, automargin=False),
        hovermode="closest",
    ))
    return fig
