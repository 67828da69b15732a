"""Figures of the experiment-design page: diminishing returns and the picks on the embedding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import GRID, IMPUTED, MUTED, SELECTED, base_layout

#: Colour of a new biosample placed on the map (an upload).
PLACED = "#2f855a"

__all__ = ["gains_figure", "picks_figure"]

#: Maps with at most this many points label every point with its name.
MAX_LABELS = 60


def gains_figure(gains: Sequence[float], objective: Sequence[float] | None = None,
                 labels: Sequence[str] | None = None, what: str = "biosamples") -> go.Figure:
    """The diminishing-returns curve of a greedy selection.

    Parameters
    ----------
    gains: sequence of float, shape=(k,)
        Marginal gain of each pick, in pick order.
    objective: sequence of float or None, shape=(k,)
        The facility-location objective after each pick; by default the running sum of gains
        (plus nothing already chosen).
    labels: sequence of str or None
        Names of the picks (e.g. ``J004 · K562``), shown on hover.
    what: str
        What was picked, for the axis title.

    Returns
    -------
    go.Figure
        Bars: marginal gain per pick; line (right axis): objective after each pick.
    """
    gains = np.asarray(gains, dtype=float)
    k = np.arange(1, len(gains) + 1)
    objective = np.cumsum(gains) if objective is None else np.asarray(objective, dtype=float)
    labels = [str(i) for i in k] if labels is None else [str(s) for s in labels]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=k, y=gains, name="marginal gain", marker_color="#9fb3c8",
                         customdata=labels,
                         hovertemplate="#%{x} %{customdata}<br>gain %{y:.4g}<extra></extra>"),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=k, y=objective, name="objective", mode="lines+markers",
                             line=dict(color=IMPUTED, width=2), marker=dict(size=6),
                             customdata=labels,
                             hovertemplate="after #%{x} %{customdata}<br>objective %{y:.4g}"
                                           "<extra></extra>"),
                  secondary_y=True)
    fig.update_xaxes(title_text=f"number of {what} picked", dtick=max(1, len(k) // 10),
                     showgrid=False)
    fig.update_yaxes(title_text="marginal gain", secondary_y=False, gridcolor=GRID,
                     rangemode="tozero")
    fig.update_yaxes(title_text="facility-location objective", secondary_y=True,
                     showgrid=False)
    fig.update_layout(**base_layout(
        height=280, margin=dict(l=60, r=60, t=10, b=40),
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"), bargap=0.25,
    ))
    return fig


def picks_figure(points: pd.DataFrame, picks: Sequence[str], profiled: Sequence[str] = (),
                 candidates: Sequence[str] | None = None, id_column: str = "name",
                 label_column: str | None = None,
                 placed: pd.DataFrame | None = None) -> go.Figure:
    """The picks on the biosample embedding.

    Parameters
    ----------
    points: pd.DataFrame
        Columns x, y and ``id_column`` (the biosample projection).
    picks: sequence of str
        Picked ids in rank order; labelled with their rank (and, for a map of at most
        :data:`MAX_LABELS` points, every point with its name).
    profiled: sequence of str
        Ids that already have the assay (counted as chosen).
    candidates: sequence of str or None
        Ids that could be picked; the rest are drawn as "other".
    label_column: str or None
        Column of ``points`` shown on hover and beside each pick's rank (e.g. ``J004 · K562``,
        from :func:`dashboard.names.labels_of`); the other points' text stays the id (a crowded
        map). Default is ``id_column``.
    placed: pd.DataFrame or None
        New biosamples placed on the same map (columns name, x, y and ``note``, said on
        hover: how the point was placed), e.g. an uploaded bigWig's. Default is None.

    Returns
    -------
    go.Figure
        Four layers: other, candidates, already profiled, picks (with rank labels); then one
        per placed biosample, a labelled diamond named after it. Empty layers stay out of the
        legend.
    """
    ids = points[id_column].astype(str)
    label_column = label_column or id_column
    picks = [str(p) for p in picks]
    is_pick = ids.isin(picks)
    is_prof = ids.isin([str(p) for p in profiled]) & ~is_pick
    is_cand = (ids.isin([str(c) for c in candidates]) if candidates is not None
               else ~is_prof) & ~is_pick & ~is_prof
    is_other = ~(is_pick | is_prof | is_cand)
    layers = [
        ("other", is_other, dict(color="#d9e2ec", size=6)),
        ("candidate", is_cand, dict(color="#9fb3c8", size=7)),
        ("already profiled", is_prof, dict(color="#334e68", size=8, symbol="square")),
    ]
    labels = len(points) <= MAX_LABELS
    fig = go.Figure()
    for name, mask, marker in layers:
        frame = points[mask.to_numpy()]
        fig.add_trace(go.Scatter(
            x=frame["x"], y=frame["y"], mode="markers+text" if labels else "markers",
            name=f"{name} ({len(frame)})", showlegend=bool(len(frame)),
            text=frame[id_column].astype(str) if labels else None,
            textposition="top center", textfont=dict(size=10, color=MUTED),
            marker=dict(line=dict(width=0), **marker), customdata=frame[label_column],
            hovertemplate="%{customdata}<extra>" + name + "</extra>",
        ))
    rank = {p: i + 1 for i, p in enumerate(picks)}
    frame = points[is_pick.to_numpy()].copy()
    frame["rank"] = frame[id_column].astype(str).map(rank)
    frame = frame.sort_values("rank")
    text = frame["rank"].astype(str)
    if labels:
        text = "#" + text + " " + frame[label_column].astype(str)
    fig.add_trace(go.Scatter(
        x=frame["x"], y=frame["y"], mode="markers+text", name=f"picked ({len(frame)})",
        text=text, textposition="top center",
        textfont=dict(size=11, color=SELECTED),
        marker=dict(color=SELECTED, size=12, symbol="star", line=dict(width=1, color="white")),
        customdata=frame[label_column],
        hovertemplate="%{customdata}<extra>picked</extra>", showlegend=bool(len(frame)),
    ))
    for row in ([] if placed is None else placed.to_dict("records")):
        fig.add_trace(go.Scatter(
            x=[row["x"]], y=[row["y"]], mode="markers+text", name=f"{row['name']} (uploaded)",
            text=[row["name"]], textposition="bottom center",
            textfont=dict(size=12, color=PLACED),
            marker=dict(color=PLACED, size=14, symbol="diamond", line=dict(width=1.5,
                                                                           color="white")),
            customdata=[[row["name"], row.get("note", "")]],
            hovertemplate="%{customdata[0]}<br>%{customdata[1]}<extra>uploaded</extra>",
        ))
    axis = dict(showgrid=False, zeroline=False, showticklabels=False)
    fig.update_layout(**base_layout(
        height=360, xaxis=axis, yaxis=dict(axis, scaleanchor="x", scaleratio=1),
        legend=dict(orientation="h", x=0, y=-0.02, yanchor="top", font=dict(color=MUTED)),
        margin=dict(l=10, r=10, t=10, b=30),
    ))
    return fig
