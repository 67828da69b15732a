"""The locus page's track picker: facets beside a biosample x assay matrix, and a searchable
list of the chosen tracks (the keyboard's way in).

Built for a compendium of ENCODE's size (400 biosamples x 84 assays): search words, a facet of
biosample types and one of assay kinds (each value with its count, as on the ENCODE portal's
matrix and cellxgene's category filters), the cells' status, rows and columns grouped and rows
ordered; a click on a cell toggles exactly that experiment. The same parts serve the 5 x 5
pilot. The pure logic is :mod:`dashboard.picker_query`; the figure
:func:`dashboard.figures.picker.picker_figure`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from avocado_core.workspace import Workspace

from ..components import field
from ..figures.picker import (
    STATUS_CODES,
    STATUS_COLORS,
    STATUS_LABELS,
    grid_lines_style,
    picker_figure,
)
from ..names import SEPARATOR, labels_of, preferred_column, short_assay_labels
from ..picker_query import ROW_ORDERS, STATUSES, PickerQuery, app_status, query_view

__all__ = ["picker_layout", "register_picker_callbacks", "PickerContext",
           "picker_context", "picker_view", "chosen_options", "count_text"]

#: Metadata columns that make the row facet (biosample type) and the column facet (assay kind),
#: the first present with 2 to 40 values.
ROW_FACETS = ("type", "anatomy", "group", "category")
COL_FACETS = ("kind", "type", "family")
#: Experiments the chosen-tracks list offers for what is typed (the first matches).
MAX_OPTIONS = 50
#: The search boxes ask the server at every key (Dash drops the answers a later one
#: supersedes): with a pause (debounce in seconds), Dash 4's input puts the caret back where
#: it was when the pause began, so keys typed meanwhile land out of order ("adralen").
SEARCH_DEBOUNCE = False


class PickerContext:
    """What the picker needs of a workspace, worked out once per request: the status as the app
    shows it, metadata, labels, facets and the embedding order."""

    def __init__(self, ws: Workspace):
        self.status = app_status(ws.status(), ws.has_model)
        self.bio_meta = ws.biosample_metadata()
        self.assay_meta = ws.assay_metadata()
        self.row_facet = preferred_column(self.bio_meta, ROW_FACETS)
        self.col_facet = preferred_column(self.assay_meta, COL_FACETS)
        self.row_labels = labels_of(self.bio_meta, self.status.index)
        self.col_labels = short_assay_labels(self.assay_meta, self.status.columns)
        self._by_label = dict(zip(self.row_labels.to_numpy(), self.row_labels.index))
        self._ws = ws

    @cached_property
    def embedding(self) -> pd.Series | None:
        """Each biosample's first principal component (None before the PCA is computed)."""
        ws = self._ws
        pca = ws.projection("biosamples", "pca", compute=False) if ws.has_model else None
        return (pd.Series(pca["x"].to_numpy(), index=pca["name"].astype(str))
                if pca is not None else None)

    def biosample_of(self, label: str) -> str | None:
        """The id of a row label (a click's ``y``)."""
        return self._by_label.get(label)

    def experiment_label(self, biosample: str, assay: str) -> str:
        """``J123 · K562 nuclear fraction · H3K4me3`` (the long assay name where it is short)."""
        return f"{self.row_labels.get(biosample, biosample)}{SEPARATOR}" \
               f"{self.col_labels.get(assay, assay)}"


def picker_context(ws: Workspace) -> PickerContext:
    return PickerContext(ws)


def _query(bio_text, assay_text, biosamples, row_values, col_values, statuses, grouping,
           order) -> PickerQuery:
    grouping = grouping or []
    return PickerQuery(biosample_text=bio_text or "", assay_text=assay_text or "",
                       biosamples=tuple(biosamples or ()), row_values=tuple(row_values or ()),
                       col_values=tuple(col_values or ()), statuses=tuple(statuses or ()),
                       group_rows="rows" in grouping, group_cols="cols" in grouping,
                       row_order=order if order in ROW_ORDERS else "name")


def picker_view(pc: PickerContext, query: PickerQuery, chosen: list[tuple[str, str]],
                band_widths: pd.DataFrame | None = None):
    """The figure, the summary and the facets' options for a query.

    Returns
    -------
    figure, summary, row options, column options, status options
    """
    view = query_view(pc.status, query, biosample_meta=pc.bio_meta, assay_meta=pc.assay_meta,
                      row_facet=pc.row_facet, col_facet=pc.col_facet,
                      embedding=pc.embedding if query.row_order == "embedding" else None)
    fig = picker_figure(view.status, chosen, band_widths=band_widths,
                        row_labels=pc.row_labels, col_labels=pc.col_labels,
                        row_groups=view.row_groups, col_groups=view.col_groups)
    summary = view.summary()
    if not view.n_cells:
        summary = "No cell matches: " + summary + ". Clear a filter or a search word."
    return (fig, summary, _facet_options(view.row_counts, query.row_values),
            _facet_options(view.col_counts, query.col_values),
            [{"label": f"{STATUS_LABELS[s]} ({view.status_counts.get(s, 0):,})", "value": s}
             for s in STATUSES if s in set(pc.status.to_numpy().ravel())])


def _facet_options(counts: dict, kept) -> list[dict]:
    """Checklist options "value (count)"; a kept value with no count stays (at 0)."""
    values = sorted(set(counts) | set(kept or ()))
    return [{"label": f"{v} ({counts.get(v, 0):,})", "value": v} for v in values]


def chosen_options(pc: PickerContext, chosen: list[tuple[str, str]], search: str | None
                   ) -> list[dict]:
    """The chosen-tracks list's options: the chosen experiments, then up to
    :data:`MAX_OPTIONS` experiments whose label and status hold every word typed."""
    out = {f"{b}|{a}": pc.experiment_label(b, a) for b, a in chosen}
    words = (search or "").lower().split()
    if words:
        status = pc.status.stack()
        labels = (pc.row_labels.reindex(status.index.get_level_values(0)).to_numpy() + SEPARATOR
                  + pc.col_labels.reindex(status.index.get_level_values(1)).to_numpy())
        text = pd.Series(labels + " " + status.index.get_level_values(1).to_numpy() + " "
                         + status.to_numpy()).str.lower()
        keep = np.ones(len(text), dtype=bool)
        for word in words:
            keep &= text.str.contains(word, regex=False).to_numpy()
        for i in np.flatnonzero(keep)[:MAX_OPTIONS]:
            b, a = status.index[i]
            out.setdefault(f"{b}|{a}", f"{labels[i]} ({status.iloc[i]})")
    return [{"label": label, "value": value} for value, label in out.items()]


def count_text(n: int) -> str:
    return f"{n} track{'s' if n != 1 else ''} chosen"


# ---------------------------------------------------------------------- layout
def picker_layout(ws: Workspace, chosen: list[tuple[str, str]], biosamples: list[str]
                  ) -> tuple[list, list, html.Details]:
    """The picker's parts: for the side panel the chosen tracks, and the filters with the
    legend (the page puts its track list between them); for the main panel the matrix,
    folded away on demand (the tracks then take the page)."""
    pc = picker_context(ws)
    widths = ws.band_widths()
    has_band = bool(np.isfinite(widths.to_numpy()).any())
    query = _query("", "", biosamples, [], [], [], ["rows", "cols"], "name")
    fig, summary, rows, cols, statuses = picker_view(pc, query, chosen)
    legend = html.Div(
        [html.Span([html.I(className="swatch", style={"background": STATUS_COLORS[code]}),
                    STATUS_LABELS[name]], className="legend-item")
         for name, code in sorted(STATUS_CODES.items(), key=lambda kv: -kv[1])
         if name in set(pc.status.to_numpy().ravel())],
        className="picker-legend",
    )
    row_name = (pc.row_facet or "group").replace("_", " ")
    col_name = (pc.col_facet or "group").replace("_", " ")
    chosen_part = [
        html.H2("Tracks", className="panel-title"),
        field("Chosen", dcc.Dropdown(
            id="locus-chosen", multi=True, value=[f"{b}|{a}" for b, a in chosen],
            options=chosen_options(pc, chosen, None), clearable=False,
            placeholder="type a biosample, an assay…", className="chosen-dropdown"),
            hint="Type to add an experiment; Backspace removes the last. Or click cells of "
                 "the matrix."),
        html.Div([html.Span(count_text(len(chosen)), id="locus-picked-count",
                            className="field-hint"),
                  html.Button("Clear", id="locus-clear", className="button small")],
                 className="picked-row"),
    ]
    finder = [
        html.Hr(),
        html.H2("Find experiments", className="panel-title"),
        field("Biosamples", dcc.Input(id="picker-bio-text", type="search", debounce=SEARCH_DEBOUNCE,
                                      placeholder="name, type or id  ( / )",
                                      className="search-input", spellCheck=False)),
        field("From the map", dcc.Dropdown(
            id="picker-biosamples", multi=True, value=biosamples,
            options=[{"label": pc.row_labels.get(b, b), "value": b} for b in biosamples],
            placeholder="all biosamples"), hidden=not biosamples, id="picker-biosamples-field"),
        field(f"Biosample {row_name}", dcc.Checklist(id="picker-row-values", options=rows,
                                                     value=[], className="facet"),
              hidden=pc.row_facet is None),
        field("Assays", dcc.Input(id="picker-assay-text", type="search", debounce=SEARCH_DEBOUNCE,
                                  placeholder="name, target or kind", className="search-input",
                                  spellCheck=False)),
        field(f"Assay {col_name}", dcc.Checklist(id="picker-col-values", options=cols, value=[],
                                                 className="facet"),
              hidden=pc.col_facet is None),
        field("Status", dcc.Checklist(id="picker-status", options=statuses, value=[],
                                      className="facet")),
        field("Arrange", html.Div([
            # only the groupings the metadata allow (none for the pilot's 5 x 5)
            dcc.Checklist(id="picker-group", value=["rows", "cols"], className="facet",
                          options=[o for o, facet in (
                              ({"label": f"group biosamples by {row_name}", "value": "rows"},
                               pc.row_facet),
                              ({"label": f"group assays by {col_name}", "value": "cols"},
                               pc.col_facet)) if facet]),
            dcc.Dropdown(id="picker-order", value="name", clearable=False,
                         options=[{"label": f"biosamples by {label}", "value": key,
                                   "disabled": key == "embedding" and not (
                                       ws.has_model and ws.has_projection("biosamples", "pca"))}
                                  for key, label in ROW_ORDERS.items()]),
        ])),
        html.Div(summary, id="picker-count", className="field-hint picker-count"),
        legend,
        html.Div(
            [html.Span("Colour cells by ", className="field-hint"),
             dcc.RadioItems(id="locus-picker-color",
                            options=[{"label": "status", "value": "status"},
                                     {"label": "uncertainty (band width)", "value": "band"}],
                            value="status", inline=True, className="radio-inline")],
            hidden=not has_band,
        ),
    ]
    matrix = html.Details(
        [html.Summary([html.B("Track matrix"), " · ",
                       html.Span(summary, id="picker-summary")]),
         html.Div([dcc.Graph(id="locus-picker", figure=fig, config={"displayModeBar": False}),
                   html.Div(id="picker-grid-lines", style=grid_lines_style(fig))],
                  className="picker-scroll")],
        open=True, className="picker-matrix", id="picker-details",
    )
    return chosen_part, finder, matrix



# ---------------------------------------------------------------------- callbacks
FILTERS = [Input("picker-bio-text", "value"), Input("picker-assay-text", "value"),
           Input("picker-biosamples", "value"), Input("picker-row-values", "value"),
           Input("picker-col-values", "value"), Input("picker-status", "value"),
           Input("picker-group", "value"), Input("picker-order", "value")]


def register_picker_callbacks(app, ws: Workspace) -> None:
    """The picker's callbacks, bound to ``app`` and its workspace."""

    @app.callback(
        Output("locus-tracks", "data"),
        Output("locus-picker", "figure"),
        Output("picker-grid-lines", "style"),
        Output("locus-picked-count", "children"),
        Output("locus-chosen", "value"),
        Output("locus-chosen", "options"),
        Output("picker-summary", "children"),
        Output("picker-count", "children"),
        Output("picker-row-values", "options"),
        Output("picker-col-values", "options"),
        Output("picker-status", "options"),
        Input("locus-picker", "clickData"),
        Input("locus-clear", "n_clicks"),
        Input("locus-chosen", "value"),
        Input("locus-picker-color", "value"),
        *FILTERS,
        State("locus-tracks", "data"),
        prevent_initial_call=True,
    )
    def pick(click, _clear, listed, color_by, *rest):
        *filters, chosen = rest
        pc = picker_context(ws)
        chosen = [tuple(e) for e in (chosen or [])]
        trigger = ctx.triggered_id
        if trigger == "locus-clear":
            chosen = []
        elif trigger == "locus-chosen":
            listed = [tuple(v.split("|", 1)) for v in (listed or []) if "|" in v]
            if listed == chosen:  # the track list moved a track: it set both already
                raise PreventUpdate
            chosen = listed
        elif trigger == "locus-picker" and click and click.get("points"):
            p = click["points"][0]
            biosample = pc.biosample_of(str(p["y"]))
            if biosample is None:
                raise PreventUpdate
            cell = (biosample, str(p["x"]))
            chosen = [e for e in chosen if e != cell] if cell in chosen else chosen + [cell]
        widths = ws.band_widths() if color_by == "band" else None
        fig, summary, rows, cols, statuses = picker_view(pc, _query(*filters), chosen, widths)
        facets = (summary, summary, rows, cols, statuses)
        lines = grid_lines_style(fig)
        if trigger in ("locus-clear", "locus-chosen", "locus-picker"):
            # The list's options hold what it holds (a list drops a value it has no option for).
            return ([list(e) for e in chosen], fig, lines, count_text(len(chosen)),
                    [f"{b}|{a}" for b, a in chosen], chosen_options(pc, chosen, None), *facets)
        return (no_update, fig, lines, no_update, no_update, no_update, *facets)  # tracks stay

    @app.callback(
        Output("locus-chosen", "options", allow_duplicate=True),
        Input("locus-chosen", "search_value"),
        State("locus-chosen", "value"),
        prevent_initial_call=True,
    )
    def list_options(search, listed):
        chosen = [tuple(v.split("|", 1)) for v in (listed or []) if "|" in v]
        return chosen_options(picker_context(ws), chosen, search)
