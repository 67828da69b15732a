"""Scatter plots of 2-D projections of the model's factors (cellxgene-like)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .style import CATEGORICAL, CONTINUOUS, MUTED, SELECTED, base_layout

__all__ = ["WEBGL_THRESHOLD", "color_kind", "embedding_figure"]

# Above this many points the scatter is drawn with WebGL (Scattergl).
WEBGL_THRESHOLD = 5_000
MAX_CATEGORIES = 40


def color_kind(values: pd.Series) -> str:
    """"continuous" for numeric columns with many distinct values, else "categorical"."""
    if pd.api.types.is_bool_dtype(values):
        return "categorical"
    if pd.api.types.is_numeric_dtype(values) and values.nunique(dropna=True) > 8:
        return "continuous"
    return "categorical"


def embedding_figure(
    points: pd.DataFrame,
    color: str | None = None,
    *,
    kind: str | None = None,
    id_column: str = "name",
    hover: Sequence[str] = (),
    selected: Sequence | None = None,
    webgl: bool | None = None,
    marker_size: float | None = None,
    colorbar_title: str | None = None,
    title: str | None = None,
    point_labels: bool | str = False,
    label_column: str | None = None,
    axis_titles: tuple[str, str] | None = None,
    click_selects: bool = True,
) -> go.Figure:
    """A 2-D scatter of projected points coloured by one column.

    Parameters
    ----------
    points: pd.DataFrame
        Columns ``x``, ``y``, ``id_column`` and any metadata.
    color: str or None
        The column to colour by; None draws every point in one colour.
    kind: {"categorical", "continuous"} or None
        How to colour; by default inferred from the column (see :func:`color_kind`).
    id_column: str
        The column that names each point; it travels as ``customdata[0]`` so that a selection
        can be mapped back. Default is "name".
    hover: sequence of str
        Extra columns shown on hover.
    selected: sequence or None
        Ids of points to show as selected (e.g. restored from the URL).
    webgl: bool or None
        Use Scattergl; by default when there are more than ``WEBGL_THRESHOLD`` points.
    marker_size: float or None
        Marker size; by default it shrinks with the number of points.
    colorbar_title, title: str or None
        Titles of the colour bar and of the plot.
    point_labels: bool or str
        Write each point's id (True) or the value of this column beside it (for a few points:
        biosamples, assays). Default False.
    label_column: str or None
        A column that names each point for a reader (``J004 · K562``): the hover's first line.
        Default: the id.
    axis_titles: (str, str) or None
        Titles of the x and y axes (a PCA's components and their share of the variance);
        None leaves the axes bare (UMAP's have no meaning).
    click_selects: bool
        Whether a click on a point selects it (as a lasso of one); False leaves clicks to a
        callback of their own (the genome map's opens the locus). Default is True.

    Returns
    -------
    go.Figure
        Categorical colouring: one trace per category named "category (count)", largest first,
        so the legend shows counts and a click hides / a double click isolates a category.
        Continuous colouring: one trace with a colour bar. Lasso selection is the drag mode.
    """
    for col in ("x", "y", id_column, *(c for c in [color] if c)):
        if col not in points.columns:
            raise KeyError(f"column {col!r} not in the points; have {list(points.columns)}")
    n = len(points)
    if webgl is None:
        webgl = n > WEBGL_THRESHOLD
    Scatter = go.Scattergl if webgl else go.Scatter
    if marker_size is None:
        marker_size = float(np.clip(14 - 2.2 * np.log10(max(n, 1)), 2.5, 12))
    hover = [c for c in hover if c in points.columns and c not in (id_column, color,
                                                                     label_column)]
    extra = [c for c in [color] if c] + list(hover)
    named = [label_column] if label_column else []
    custom_cols = [id_column, *named, *extra]
    lines = [f"<b>%{{customdata[{len(named)}]}}</b>"] + [
        f"{c}: %{{customdata[{i + 1 + len(named)}]}}" for i, c in enumerate(extra)
    ]
    hovertemplate = "<br>".join(lines) + "<extra></extra>"
    selected_ids = set(map(str, selected)) if selected else None

    def selectedpoints(frame: pd.DataFrame):
        if selected_ids is None:
            return None
        return np.flatnonzero(frame[id_column].astype(str).isin(selected_ids)).tolist()

    def custom(frame: pd.DataFrame) -> np.ndarray:
        out = frame[custom_cols].copy()
        for c in custom_cols:
            if pd.api.types.is_float_dtype(out[c]):
                out[c] = out[c].round(3)
        return out.astype(object).where(out.notna(), "NA").to_numpy()

    def text(frame: pd.DataFrame):
        if not point_labels:
            return None
        return frame[point_labels if isinstance(point_labels, str) else id_column
                     ].astype(str).tolist()

    common = dict(
        mode="markers+text" if point_labels else "markers",
        textposition="top center",
        textfont=dict(size=11, color=MUTED),
        hovertemplate=hovertemplate,
        selected=dict(marker=dict(color=SELECTED, opacity=1.0)),
        unselected=dict(marker=dict(opacity=0.25)),
    )
    traces = []
    if color is None:
        traces.append(Scatter(
            x=points["x"], y=points["y"], customdata=custom(points), name="points",
            text=text(points),
            marker=dict(size=marker_size, color="#4e79a7", opacity=0.85, line=dict(width=0)),
            selectedpoints=selectedpoints(points), showlegend=False, **common,
        ))
    else:
        kind = kind or color_kind(points[color])
        if kind == "continuous":
            values = pd.to_numeric(points[color], errors="coerce")
            traces.append(Scatter(
                x=points["x"], y=points["y"], customdata=custom(points), name=color,
                text=text(points),
                marker=dict(
                    size=marker_size, color=values, colorscale=CONTINUOUS, opacity=0.9,
                    line=dict(width=0), showscale=True,
                    colorbar=dict(title=dict(text=colorbar_title or color, side="right"),
                                  thickness=12, len=0.75, outlinewidth=0),
                ),
                selectedpoints=selectedpoints(points), showlegend=False, **common,
            ))
        elif kind == "categorical":
            labels = points[color].astype(object).where(points[color].notna(), "NA").astype(str)
            counts = labels.value_counts()
            if len(counts) > MAX_CATEGORIES:
                keep = set(counts.index[: MAX_CATEGORIES - 1])
                labels = labels.where(labels.isin(keep), "other")
                counts = labels.value_counts()
            for i, (cat, count) in enumerate(counts.items()):
                frame = points[(labels == cat).to_numpy()]
                traces.append(Scatter(
                    x=frame["x"], y=frame["y"], customdata=custom(frame), text=text(frame),
                    name=f"{cat} ({count:,})", legendgroup=str(cat),
                    marker=dict(size=marker_size, color=CATEGORICAL[i % len(CATEGORICAL)],
                                opacity=0.9, line=dict(width=0)),
                    selectedpoints=selectedpoints(frame), **common,
                ))
        else:
            raise ValueError(f"kind must be 'categorical' or 'continuous', got {kind!r}")
    fig = go.Figure(traces)
    axis = dict(showgrid=False, zeroline=False, showticklabels=False, title=None,
                showline=False)
    titles = [dict(text=t, font=dict(size=12, color=MUTED)) for t in (axis_titles or ())]
    fig.update_layout(
        **base_layout(
            dragmode="lasso",
            clickmode="event+select" if click_selects else "event",
            hovermode="closest",
            xaxis=dict(axis, title=titles[0] if titles else None, zeroline=bool(titles)),
            yaxis=dict(axis, scaleanchor="x", scaleratio=1, title=titles[1] if titles else None,
                       zeroline=bool(titles)),
            legend=dict(title=dict(text=color or ""), itemsizing="constant",
                        font=dict(size=12), bgcolor="rgba(255,255,255,0.85)",
                        itemclick="toggle", itemdoubleclick="toggleothers"),
            margin=dict(l=40 if titles else 10, r=10, t=36 if title else 10,
                        b=40 if titles else 10),
            title=dict(text=title, font=dict(size=13, color=MUTED), x=0.01) if title else None,
            uirevision=f"{n}:{color}",
        )
    )
    return fig
