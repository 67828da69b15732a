"""The track picker: the biosample x assay tensor (or the part a query shows) as a clickable
grid, rows and columns grouped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .style import CATEGORICAL, SELECTED, base_layout, legible
from .tracks import typed_array

__all__ = ["STATUS_CODES", "STATUS_COLORS", "STATUS_LABELS", "group_colors", "cell_size",
           "picker_figure", "grid_lines_style"]

STATUS_CODES = {"missing": 0, "imputed": 1, "held out": 2, "observed": 3}
STATUS_COLORS = ["#f0f4f8", "#fcd9bd", "#3fa796", "#334e68"]
#: What each status means, for the legend and the hover text.
STATUS_LABELS = {"observed": "observed (trained on)", "held out": "held out (not trained on)",
                 "imputed": "imputed only", "missing": "not imputed"}
BAND_SCALE = "Greys"
#: Widest grid (px) the cell size aims for: the locus page's main panel at 1440 px is about
#: 1,070 px, with the row labels beside the grid.
GRID_WIDTH = 800
#: Longest row / column label (characters) before it is cut with "…" (the hover shows it
#: whole).
MAX_LABEL = 28
MAX_COLUMN_LABEL = 22
#: The category of a group's header row / column (never a biosample's label: those start with
#: its id); the tick shows the group's name.
HEADER = "\u2063group\u2063 "


def group_colors(groups: Sequence[str]) -> dict[str, str]:
    """A colour per group (sorted), legible as text on white."""
    return {g: legible(CATEGORICAL[i % len(CATEGORICAL)])
            for i, g in enumerate(sorted(set(map(str, groups))))}


def cell_size(n_cols: int) -> int:
    """Cell size (px) for a grid of ``n_cols`` columns: 18 for a few, down to 9 for 89 (84
    assays and 5 group headers)."""
    return int(np.clip(GRID_WIDTH // max(n_cols, 1), 9, 18))


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _coloured(text: str, color: str | None) -> str:
    return f"<span style='color:{color}'>{text}</span>" if color else text


def grid_lines_style(fig: dict) -> dict:
    """The CSS of a layer laid over a picker figure (in a positioned box, taking no pointer
    events) that draws white lines between its cells: 2 px between large cells, 1 px between
    small ones, at no cost to plotly's drawing."""
    meta = fig["layout"]["meta"]
    cell, grid = meta["grid"]["cell"], meta["grid"]
    gap = 2 if cell >= 14 else 1
    line = f"rgba(255,255,255,1) {gap}px, transparent {gap}px"
    return {"position": "absolute", "pointerEvents": "none", "left": f"{grid['left']}px",
            "top": f"{grid['top']}px", "width": f"{cell * meta['n_cols']}px",
            "height": f"{cell * meta['n_rows']}px", "backgroundSize": f"{cell}px {cell}px",
            "backgroundImage": f"linear-gradient(to right, {line}), "
                               f"linear-gradient(to bottom, {line})"}


def _segments(values: np.ndarray, band_widths: pd.DataFrame | None, status: pd.DataFrame):
    """(status, cells, z, colour style, hover line) of each trace: one per status, or per status
    with and without a band when coloured by band width."""
    ones = np.ones(values.shape)
    if band_widths is not None:
        widths = band_widths.reindex(index=status.index, columns=status.columns).to_numpy(float)
        has = np.isfinite(widths)
        zmax = float(widths[has].max()) if has.any() else 1.0
        scale = dict(colorscale=BAND_SCALE, zmin=0.0, zmax=zmax, colorbar=dict(
            title=dict(text="band", side="right"), thickness=8, len=1.0, outlinewidth=0,
            tickfont=dict(size=9)))
        blank = dict(colorscale=[[0, "#ffffff"], [1, "#ffffff"]], zmin=0, zmax=1)
    for name in sorted(STATUS_CODES, key=lambda s: -STATUS_CODES[s]):
        mask = values == name
        if not mask.any():
            continue
        if band_widths is None:
            color = STATUS_COLORS[STATUS_CODES[name]]
            yield name, mask, ones, dict(colorscale=[[0, color], [1, color]], zmin=0, zmax=1), ""
            continue
        for cells, z, style, what in ((mask & has, widths, scale, "<br>band ±%{z:.2f}"),
                                      (mask & ~has, ones, blank, "<br>no band")):
            if cells.any():
                yield name, cells, z, style, what


def picker_figure(status: pd.DataFrame, selected: Sequence[tuple[str, str]] = (),
                  cell: int | None = None, band_widths: pd.DataFrame | None = None, *,
                  row_labels: pd.Series | None = None, col_labels: pd.Series | None = None,
                  row_groups: pd.Series | None = None,
                  col_groups: pd.Series | None = None) -> dict:
    """A grid with one cell per (biosample, assay), coloured by status, chosen cells marked.

    Parameters
    ----------
    status: pd.DataFrame
        Biosamples x assays of "observed" / "held out" / "imputed" / "missing"
        (``Workspace.status()``), or ``""`` for a cell not to draw (hidden by a query:
        :func:`dashboard.picker_query.query_view`).
    selected: sequence of (biosample, assay)
        Cells to mark as chosen.
    cell: int or None
        Cell size in pixels; by default :func:`cell_size` of the number of columns.
    band_widths: pd.DataFrame or None
        Colour the cells by the imputation's uncertainty instead (mean half-width of its band,
        ``Workspace.band_widths()``; cells without a band white).
    row_labels, col_labels: pd.Series or None
        What the rows and columns say, by id: the rows' labels are their categories (the hover
        and a click's ``y`` give them whole; :func:`dashboard.names.labels_of`), the columns'
        are tick texts (a click's ``x`` is the assay's id). Default: the ids.
    row_groups, col_groups: pd.Series or None
        A group per row / column id, in drawing order (consecutive): before each group, an
        empty header row / column whose tick names the group and its size (as the ENCODE
        portal's matrix does), and the labels in the group's colour (:func:`group_colors`).

    Returns
    -------
    dict
        A plotly figure as a plain dict (as :func:`~dashboard.figures.tracks.locus_figure`:
        validating 33,600 cells' worth of graph objects cost more than drawing them). One
        heatmap per status whose hover names the cell, its status and what a click does
        (click: ``x`` = assay id, ``y`` = row label), a one-cell heatmap per chosen cell
        ("shown · click to hide"), and dots on the chosen cells that take no hover or click,
        so a click always reaches the cell under the pointer. Group headers take no hover or
        click. ``layout.meta`` gives the numbers of rows and columns drawn, headers included.
    """
    bios = [str(b) for b in status.index]
    assays = [str(a) for a in status.columns]
    values = status.to_numpy(dtype=object).astype(str) if status.size \
        else np.zeros(status.shape, str)
    bad = set(np.unique(values)) - set(STATUS_CODES) - {""}
    if bad:
        raise ValueError(f"unknown status values {sorted(bad)}; expected {list(STATUS_CODES)}")
    rlab = _labels(row_labels, bios)
    clab = _labels(col_labels, assays)
    row_of, col_of = {b: i for i, b in enumerate(bios)}, {a: j for j, a in enumerate(assays)}
    sel = [(str(b), str(a)) for b, a in selected
           if str(b) in row_of and str(a) in col_of and values[row_of[str(b)], col_of[str(a)]]]
    chosen = np.zeros(values.shape, dtype=bool)
    if sel:
        chosen[[row_of[b] for b, _ in sel], [col_of[a] for _, a in sel]] = True
    row_group, col_group = _groups(row_groups, bios), _groups(col_groups, assays)
    row_colors = group_colors(row_group) if row_groups is not None else {}
    col_colors = group_colors(col_group) if col_groups is not None else {}
    rcat, rpos, rtick = _axis_slots(rlab, rlab, row_group, row_colors, MAX_LABEL)
    ccat, cpos, ctick = _axis_slots(assays, clab, col_group, col_colors, MAX_COLUMN_LABEL)
    cell = cell or cell_size(len(ccat))

    # Every heatmap is placed by x0 / y0 (slot numbers), never by x / y arrays: plotly places
    # a heatmap given one category on an axis away from it (a click on the cell beside it
    # answered), and one given several as if they were the first of the axis.
    slots = np.full((len(rcat), len(ccat)), np.nan, dtype=np.float32)
    data: list[dict] = []
    for name, mask, z, style, what in _segments(values, band_widths, status):
        hover = (f"<b>%{{y}}</b><br>%{{x}}<br>{STATUS_LABELS[name]}{what}<br>"
                 "{action}<extra></extra>")
        # No xgap / ygap: plotly then paints brick by brick (150 ms more for ENCODE's 33,600
        # cells); the lines between cells are an overlay (grid_lines_style).
        common = dict(type="heatmap", hoverongaps=False, showscale=False, dx=1, dy=1, **style)
        # Hidden, other-status and chosen cells are gaps of a trace (NaN), so exactly one trace
        # answers the pointer at each cell: the status's, or its chosen cells' (the box around
        # them, so a few chosen cells cost a few cells).
        for cells, action, suffix in ((mask & ~chosen, "click to show", ""),
                                      (mask & chosen, "shown · click to hide", " (shown)")):
            if not cells.any():
                continue
            grid = slots.copy()
            grid[np.ix_(rpos, cpos)] = np.where(cells, z, np.nan)
            rows, cols = np.nonzero(np.isfinite(grid))
            r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            data.append(dict(z=typed_array(grid[r0:r1, c0:c1]), x0=int(c0), y0=int(r0),
                             name=name + suffix,
                             hovertemplate=hover.replace("{action}", action), **common))
    bars = [t for t in data if "colorbar" in t]
    if bars:  # one colour bar
        bars[0]["showscale"] = True
    data.append(dict(
        type="scatter", x=[a for _, a in sel], y=[rlab[row_of[b]] for b, _ in sel],
        mode="markers", name="shown", hoverinfo="skip", showlegend=False,
        marker=dict(symbol="circle", size=max(cell // 2.5, 4), color=SELECTED,
                    line=dict(width=1, color="white")),
    ))
    longest = min(max((len(r) for r in rlab), default=4), MAX_LABEL)
    top = min(max((len(a) for a in clab + [g + " · 00" for g in col_colors]), default=4),
              MAX_COLUMN_LABEL) * 6 + 14
    right = 50 if band_widths is not None else 10
    left = longest * 6 + 14
    font = dict(size=10 if cell >= 11 else 9)
    layout = base_layout(
        height=cell * len(rcat) + top + 10,
        width=cell * len(ccat) + left + right,
        margin=dict(l=left, r=right, t=top, b=10, autoexpand=False),
        xaxis=dict(side="top", tickangle=-90, tickfont=font, fixedrange=True, showgrid=False,
                   automargin=False, type="category", categoryorder="array", categoryarray=ccat,
                   tickmode="array", tickvals=ccat, ticktext=ctick,
                   range=[-0.5, len(ccat) - 0.5]),
        yaxis=dict(range=[len(rcat) - 0.5, -0.5], tickfont=font, fixedrange=True,
                   showgrid=False, automargin=False, type="category", categoryorder="array",
                   categoryarray=rcat, tickmode="array", tickvals=rcat, ticktext=rtick),
        hovermode="closest",
        meta={"n_rows": len(rcat), "n_cols": len(ccat),
              "grid": {"left": left, "top": top, "cell": cell}},
    )
    return {"data": data, "layout": layout}


def _axis_slots(categories: list[str], labels: list[str], groups: list, colors: dict,
                limit: int) -> tuple[list[str], np.ndarray, list[str]]:
    """The categories of one axis with a header before each group, where each category landed,
    and the tick texts (labels cut to ``limit`` characters and coloured by group; headers bold
    with the group's size)."""
    ticks = [_cut(t, limit) for t in labels]
    if not colors:
        return list(categories), np.arange(len(categories)), ticks
    counts = pd.Series(groups).value_counts()
    cats, pos, text = [], [], []
    for i, (category, group) in enumerate(zip(categories, groups)):
        if i == 0 or group != groups[i - 1]:
            cats.append(HEADER + group)
            size = f" · {counts[group]:,}"
            text.append(_coloured(f"<b>{_cut(group, limit - len(size))}</b>{size}",
                                  colors[group]))
        pos.append(len(cats))
        cats.append(category)
        text.append(_coloured(ticks[i], colors[group]))
    return cats, np.array(pos), text


def _labels(labels: pd.Series | None, ids: list[str]) -> list[str]:
    if labels is None:
        return list(ids)
    found = labels.reindex(ids)
    return [str(v) if isinstance(v, str) else i for i, v in zip(ids, found.tolist())]


def _groups(groups: pd.Series | None, ids: list[str]) -> list[str | None]:
    if groups is None:
        return [None] * len(ids)
    return [str(g) for g in groups.reindex(ids).tolist()]
