"""Embeddings page: the model's latent space of biosamples, assays or genome positions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from avocado_core.errors import shorten
from avocado_core.projection import MIN_UMAP_POINTS
from avocado_core.regions import GENOME_RESOLUTIONS, format_locus
from avocado_core.saved_selections import (
    load_selection,
    save_selection,
    selection_bed,
    selection_intervals,
)
from avocado_core.workspace import Workspace

from ..components import (
    alert,
    current_workspace,
    error_message,
    field,
    genome_selection,
    guarded,
    options,
    query_string,
    split_list,
    url_sync,
)
from ..figures.embedding import MAX_CATEGORIES, embedding_figure
from ..figures.tracks import format_spans
from ..names import labels_of, short_assay_labels

AXES = {"biosamples": "Biosamples", "assays": "Assays", "genome": "Genome positions"}
METHODS = {"umap": "UMAP", "pca": "PCA"}
RESOLUTIONS = {"all": "all factors", "25bp": "25 bp", "250bp": "250 bp", "5kbp": "5 kbp"}
SIGNAL = "signal"
#: Columns drawn with a colour bar whatever their number of distinct values.
CONTINUOUS_COLUMNS = {"n_observed"}
#: Points labelled with their name (biosamples and assays; more would overlap: 84 assays
#: with short labels still read).
MAX_LABELS = 100
#: Selections larger than this (and every genome selection) go to the URL as a saved id.
URL_IDS = 50
#: Width (bp) of the locus window that a click on a genome point opens, centred on the point.
LOCUS_WINDOW_BP = 20_000


# ---------------------------------------------------------------------- pure helpers
def color_choices(ws: Workspace, axis: str) -> list[dict]:
    """What the points can be coloured by on an axis."""
    if axis == "genome":
        choices = []
        if ws.annotations is not None:
            choices.append({"label": "annotation class", "value": "class"})
        choices += [{"label": "chromosome", "value": "chrom"},
                    {"label": "signal of an experiment", "value": SIGNAL}]
        return choices
    meta = ws.biosample_metadata() if axis == "biosamples" else ws.assay_metadata()
    # A column of names (a value per point) colours nothing past a legend's worth of points
    # (the ENCODE layout's 400 summaries): the hover shows it.
    cols = [c for c in meta.columns
            if c == "n_observed" or 1 < meta[c].nunique(dropna=True) < len(meta)
            or 1 < meta[c].nunique(dropna=True) and (len(meta) <= MAX_CATEGORIES
                                                   or pd.api.types.is_numeric_dtype(meta[c]))]
    return [{"label": c.replace("_", " "), "value": c} for c in cols]


def default_color(ws: Workspace, axis: str) -> str | None:
    values = [c["value"] for c in color_choices(ws, axis)]
    for preferred in ("class", "anatomy", "group", "type", "category"):
        if preferred in values:
            return preferred
    return values[0] if values else None


def umap_available(ws: Workspace, axis: str) -> bool:
    """Whether UMAP can run on an axis: below ``MIN_UMAP_POINTS`` points the projection
    falls back to PCA (and the app offers PCA only)."""
    if axis == "genome":
        return True
    return len(ws.biosamples if axis == "biosamples" else ws.assays) >= MIN_UMAP_POINTS


def method_options(ws: Workspace, axis: str) -> list[dict]:
    """The projection choices of an axis, UMAP disabled where it cannot run."""
    ok = umap_available(ws, axis)
    return [{"label": METHODS["umap"] if ok else f"{METHODS['umap']} (needs ≥ "
             f"{MIN_UMAP_POINTS} {axis})", "value": "umap", "disabled": not ok},
            {"label": METHODS["pca"], "value": "pca"}]


def embedding_view(ws: Workspace, axis: str, method: str, resolution: str, color: str | None,
                   experiment: tuple[str, str, str] | None = None,
                   selected: list | None = None) -> tuple[object, str, int]:
    """The figure of one projection, a caption, and the number of points.

    Parameters
    ----------
    experiment: (biosample, assay, kind) or None
        For ``color="signal"`` on the genome axis.

    Returns
    -------
    figure, caption, n_points
        ``figure`` is None when the projection is not cached yet (the caption says so).
    """
    if axis not in AXES:
        raise ValueError(f"unknown axis {shorten(axis)}; expected one of {list(AXES)}")
    if method not in METHODS:
        raise ValueError(f"unknown projection {shorten(method)}; expected one of "
                         f"{list(METHODS)}")
    if not umap_available(ws, axis):
        method = "pca"  # what the "umap" projection of so few points is
    df = ws.projection(axis, method, resolution if axis == "genome" else "all", compute=False)
    if df is None:
        what = f"{METHODS[method]} of {AXES[axis].lower()}"
        if axis == "genome":
            what += f" ({RESOLUTIONS.get(resolution, resolution)})"
        return None, f"The {what} has not been computed for this model yet.", 0
    n = len(df)
    kind, colorbar = None, None
    if axis == "genome":
        id_col, hover = "bin", ["locus", "nearest gene", "class"]
        df = df.assign(locus=df["chrom"].astype(str) + ":" + df["start"].map("{:,}".format))
        if "nearest_gene" in df:
            df["nearest gene"] = nearest_gene_labels(df["nearest_gene"], df["gene_distance"])
        if color == SIGNAL:
            if not experiment or not all(experiment[:2]):
                raise ValueError("choose a biosample and an assay to colour positions by signal")
            b, a, k = experiment
            df = df.assign(signal=ws.signal_at(b, a, df["bin"].to_numpy(), kind=k or "auto"))
            kind, colorbar = "continuous", f"{b} {a}<br>({k or 'auto'}, arcsinh)"
            color = "signal"
        total = int(df.attrs.get("n_total", n))
        per = GENOME_RESOLUTIONS.get(resolution, 1)
        unit = "positions" if per == 1 else f"{RESOLUTIONS[resolution]} blocks"
        strat = " stratified by annotation class" if "class" in df else ""
        caption = f"Sample of {n:,} of {total:,} {unit}{strat} · {METHODS[method]} · WebGL"
    else:
        id_col = "name"
        meta = ws.biosample_metadata() if axis == "biosamples" else ws.assay_metadata()
        df = df.assign(label=labels_of(meta, df["name"]).to_numpy(),
                       short=(short_assay_labels(meta, df["name"]).to_numpy()
                              if axis == "assays" else df["name"].to_numpy()))
        hover = [c for c in df.columns if c not in ("name", "x", "y", "label", "short")][:6]
        if color in CONTINUOUS_COLUMNS:
            kind, colorbar = "continuous", color.replace("_", " ")
        caption = f"{n:,} {axis} · {METHODS[method]} of the {axis[:-1]} embedding"
        if not umap_available(ws, axis):
            caption += (f" (UMAP needs at least {MIN_UMAP_POINTS} {axis}; with {n} the map is "
                        "PCA)")
    fig = embedding_figure(df, color=color, kind=kind, id_column=id_col, hover=hover,
                           selected=selected, webgl=True if axis == "genome" else None,
                           colorbar_title=colorbar,
                           point_labels="short" if axis != "genome" and n <= MAX_LABELS
                           else False,
                           label_column=None if axis == "genome" else "label",
                           axis_titles=pca_titles(df) if method == "pca" else None,
                           click_selects=axis != "genome")
    return fig, caption, n


def nearest_gene_labels(genes, distances) -> np.ndarray:
    """Hover text of each point's nearest gene: "in MYC" inside it, "MYC (2.3 kb)" away
    from it, "none on this chromosome" (distance -1).

    Parameters
    ----------
    genes: array-like of str, shape=(n,)
    distances: array-like of int, shape=(n,)
        As :meth:`~avocado_core.annotations.Annotations.nearest_genes`.

    Returns
    -------
    np.ndarray[str], shape=(n,)
    """
    names = pd.Series(genes, dtype=object).fillna("").to_numpy().astype(str)
    d = np.asarray(distances, dtype=np.int64)
    away = np.char.add(np.char.add(names, " ("), np.char.add(format_spans(np.maximum(d, 0)), ")"))
    return np.where(d < 0, "none on this chromosome",
                    np.where(d == 0, np.char.add("in ", names), away))


def pca_titles(projection: pd.DataFrame) -> tuple[str, str]:
    """``("PC1 · 31.2 % of variance", "PC2 · 12.0 % of variance")`` from a PCA projection's
    ``explained_variance`` (the components alone for one cached without it)."""
    shares = projection.attrs.get("explained_variance")
    if not shares or len(shares) < 2:
        return "PC1", "PC2"
    return tuple(f"PC{i + 1} · {100 * float(v):.1f} % of variance"
                 for i, v in enumerate(shares[:2]))


def selection_ids(selected_data: dict | None) -> list:
    """Ids (customdata[0]) of the points in a plotly selection event."""
    if not selected_data or not selected_data.get("points"):
        return []
    out = []
    for p in selected_data["points"]:
        cd = p.get("customdata")
        out.append(cd[0] if isinstance(cd, (list, tuple)) else cd)
    return list(dict.fromkeys(out))


def locus_href(ws: Workspace, axis: str, click: dict | None, resolution: str = "all"
               ) -> str | None:
    """The locus page's address for a click on a genome point: a ``LOCUS_WINDOW_BP`` window
    centred on the point's bin (or block of bins, at a coarser ``resolution``); None for a
    click on the biosample / assay maps (a click selects there) or on no point."""
    ids = selection_ids(click) if axis == "genome" else []
    if not ids:
        return None
    try:
        b = int(ids[0])
    except (TypeError, ValueError):
        raise ValueError(f"a clicked genome point names no bin: {shorten(str(ids[0]))}") from None
    regions = ws.store.regions
    chrom, start = regions.bin_coordinates([b])
    centre = int(start[0]) + GENOME_RESOLUTIONS.get(resolution, 1) * regions.bin_size // 2
    lo = max(centre - LOCUS_WINDOW_BP // 2, 0)
    return "/locus" + query_string({"locus": format_locus(str(chrom[0]), lo,
                                                           lo + LOCUS_WINDOW_BP)})


def selection_links(ws: Workspace, axis: str, ids: list, sel_id: str | None = None) -> list:
    """Where a selection can be sent: the locus page and the design page (biosamples: their
    tracks and a design among them; genome positions: every selected region, navigable, and
    the positions as design candidates), and a BED file of the selected positions."""
    if not ids:
        return []
    if axis == "biosamples":
        names = [str(i) for i in ids]
        return [
            dcc.Link("Show their tracks in the locus browser →",
                     href="/locus" + query_string({"biosamples": names}), className="button",
                     id="emb-to-locus"),
            dcc.Link("Plan an assay among them →",
                     href="/design" + query_string({"candidates": names}), className="button",
                     id="emb-to-design"),
        ]
    if axis == "genome" and sel_id:
        n = len(ids)
        return [
            dcc.Link(f"Open the {n:,} selected position{'s' if n != 1 else ''} in the locus "
                     "browser →", href="/locus" + query_string({"selection": sel_id}),
                     className="button", id="emb-to-locus"),
            dcc.Link("Pick positions among them →",
                     href="/design" + query_string({"positions": sel_id}), className="button",
                     id="emb-to-design"),
            html.Button("Download BED", id="emb-bed", className="button"),
        ]
    return []


def saved_selection_id(ws: Workspace, axis: str, ids: list, resolution: str) -> str | None:
    """The saved id of a selection that is too large for the URL (and of every genome one)."""
    if not ids or (axis != "genome" and len(ids) <= URL_IDS):
        return None
    spans = ([GENOME_RESOLUTIONS.get(resolution, 1)] * len(ids) if axis == "genome"
             else None)
    return save_selection(ws.path, axis, ids, spans)


def selection_bed_text(ws: Workspace, sel_id: str) -> str:
    """The saved genome selection as BED (overlapping points merged)."""
    sel = genome_selection(ws, sel_id)
    return selection_bed(selection_intervals(ws.store.regions, sel["ids"], sel["n_bins"]))


# ---------------------------------------------------------------------- layout
def layout(axis: str = "biosamples", method: str = "umap", res: str = "all",
           color: str | None = None, exp: str | None = None, sel: str | None = None,
           selid: str | None = None, **_ignored) -> html.Div:
    """The page; its state comes from the URL's query string."""
    ws = current_workspace()
    axis = axis if axis in AXES else "biosamples"
    method = method if method in METHODS else "umap"
    res = res if res in RESOLUTIONS else "all"
    colors = color_choices(ws, axis)
    if color not in [c["value"] for c in colors]:
        color = default_color(ws, axis)
    b, a, k = (split_list(exp, "|") + [None, None, None])[:3] if exp else (None, None, None)
    biosamples, assays = ws.biosamples, ws.assays
    if not umap_available(ws, axis):
        method = "pca"
    selected, problem = split_list(sel), None
    if selid:
        try:
            selected = load_selection(ws.path, selid, axis=axis,
                                      n_positions=ws.store.n_bins)["ids"]
        except (ValueError, KeyError) as exc:
            problem, selected, selid = error_message(exc), [], None
    if axis == "genome":
        selected = [int(s) for s in selected if str(s).isdigit()]
        selid = selid or saved_selection_id(ws, axis, selected, res)
    controls = html.Aside(
        [
            html.H2("Latent space", className="panel-title"),
            field("Axis", dcc.RadioItems(id="emb-axis", options=options(AXES, AXES), value=axis,
                                         className="radio-stack")),
            field("Projection", dcc.RadioItems(id="emb-method",
                                               options=method_options(ws, axis), value=method,
                                               inline=True, className="radio-inline")),
            field("Genome factors", dcc.Dropdown(id="emb-res",
                                                 options=options(RESOLUTIONS, RESOLUTIONS),
                                                 value=res, clearable=False),
                  id="emb-res-field", hidden=axis != "genome"),
            field("Colour by", dcc.Dropdown(id="emb-color", options=colors, value=color,
                                            clearable=True, placeholder="nothing")),
            html.Div(
                [
                    field("Biosample", dcc.Dropdown(
                        id="emb-exp-biosample",
                        options=options(biosamples,
                                        labels_of(ws.biosample_metadata(), biosamples).to_dict()),
                        value=b or (biosamples[0] if biosamples else None), clearable=False,
                    )),
                    field("Assay", dcc.Dropdown(id="emb-exp-assay", options=options(assays),
                                                value=a or (assays[0] if assays else None),
                                                clearable=False)),
                    field("Signal", dcc.RadioItems(id="emb-exp-kind",
                                                   options=options(["auto", "observed", "imputed"]),
                                                   value=k or "auto", inline=True,
                                                   className="radio-inline"),
                          hint="auto: observed where measured, else imputed"),
                ],
                id="emb-exp-fields", hidden=not (axis == "genome" and color == SIGNAL),
            ),
            html.Hr(),
            html.Div(id="emb-selection-count", className="selection-count"),
            html.Div(id="emb-selection-actions", className="selection-actions"),
            html.Div("Drag to lasso-select; click a genome position to open it in the locus "
                     "browser; click a legend entry to hide it, double-click to isolate it.",
                     className="field-hint"),
        ],
        className="side-panel",
    )
    main = html.Section(
        [
            # What was wrong with the address (e.g. a damaged saved selection): apart from
            # the alerts of the callbacks, which a successful draw clears.
            html.Div(alert(problem) if problem else None, id="emb-url-alert"),
            html.Div(id="emb-alert"),
            html.Div(id="emb-caption", className="caption"),
            html.Div(
                [
                    html.Div("", id="emb-missing", className="missing-projection"),
                    html.Button("Compute it now", id="emb-compute", className="button primary",
                                hidden=True),
                    html.Button("Cancel", id="emb-cancel", className="button", hidden=True),
                    html.Progress(id="emb-progress", hidden=True),
                ],
                className="compute-row",
            ),
            dcc.Loading(dcc.Graph(id="emb-graph", className="embedding-graph",
                                  config={"displaylogo": False, "scrollZoom": True,
                                          "modeBarButtonsToRemove": ["autoScale2d"],
                                          "toImageButtonOptions": {"filename": "avocado-embedding",
                                                                   "scale": 2}}),
                        type="circle", delay_show=300),
        ],
        className="main-panel",
    )
    return html.Div(
        [
            controls, main,
            dcc.Store(id="emb-selection", data=selected),
            dcc.Store(id="emb-selection-id", data=selid),
            dcc.Download(id="emb-bed-download"),
            dcc.Store(id="emb-version", data=0),
            dcc.Store(id="emb-total", data=0),
            dcc.Store(id="emb-url"),
            # A click on a genome point goes to the locus page (through dash's router).
            dcc.Location(id="emb-nav", refresh="callback-nav"),
            html.Div(id="emb-url-sink", hidden=True),
        ],
        className="page-grid",
    )


# ---------------------------------------------------------------------- callbacks
def register_callbacks(app, ws: Workspace) -> None:
    """Callbacks of the page, bound to ``app`` and its workspace."""

    @app.callback(
        Output("emb-color", "options"),
        Output("emb-color", "value"),
        Output("emb-res-field", "hidden"),
        Output("emb-method", "options"),
        Output("emb-method", "value"),
        Input("emb-axis", "value"),
        State("emb-color", "value"),
        State("emb-method", "value"),
        prevent_initial_call=True,
    )
    def axis_changed(axis, color, method):
        choices = color_choices(ws, axis)
        values = [c["value"] for c in choices]
        method = method if umap_available(ws, axis) else "pca"
        return (choices, color if color in values else default_color(ws, axis), axis != "genome",
                method_options(ws, axis), method)

    @app.callback(
        Output("emb-exp-fields", "hidden"),
        Input("emb-axis", "value"),
        Input("emb-color", "value"),
    )
    def signal_fields(axis, color):
        return not (axis == "genome" and color == SIGNAL)

    @app.callback(
        Output("emb-graph", "figure"),
        Output("emb-caption", "children"),
        Output("emb-missing", "children"),
        Output("emb-compute", "hidden"),
        Output("emb-total", "data"),
        Output("emb-alert", "children"),
        Input("emb-axis", "value"),
        Input("emb-method", "value"),
        Input("emb-res", "value"),
        Input("emb-color", "value"),
        Input("emb-exp-biosample", "value"),
        Input("emb-exp-assay", "value"),
        Input("emb-exp-kind", "value"),
        Input("emb-version", "data"),
        State("emb-selection", "data"),
    )
    @guarded(6)
    def draw(axis, method, res, color, b, a, kind, _version, selected):
        if ctx.triggered_id in ("emb-exp-biosample", "emb-exp-assay", "emb-exp-kind") \
                and color != SIGNAL:
            return (no_update,) * 6
        fig, caption, n = embedding_view(ws, axis, method, res, color, (b, a, kind), selected)
        if fig is None:
            return _empty_figure(), "", caption, False, 0, None
        return fig, caption, "", True, n, None

    @app.callback(
        Output("emb-selection", "data"),
        Output("emb-selection-id", "data"),
        Input("emb-graph", "selectedData"),
        Input("emb-axis", "value"),
        State("emb-res", "value"),
        prevent_initial_call=True,
    )
    def select(selected_data, axis, res):
        if ctx.triggered_id == "emb-axis":
            return [], None
        ids = selection_ids(selected_data)
        return ids, saved_selection_id(ws, axis, ids, res)

    @app.callback(
        Output("emb-nav", "href"),
        Output("emb-alert", "children", allow_duplicate=True),
        Input("emb-graph", "clickData"),
        State("emb-axis", "value"),
        State("emb-res", "value"),
        prevent_initial_call=True,
    )
    @guarded(2)
    def open_locus(click, axis, res):
        href = locus_href(ws, axis, click, res)
        if href is None:
            raise PreventUpdate
        return href, None

    @app.callback(
        Output("emb-selection-count", "children"),
        Output("emb-selection-actions", "children"),
        Input("emb-selection", "data"),
        Input("emb-total", "data"),
        Input("emb-selection-id", "data"),
        State("emb-axis", "value"),
    )
    def selection_summary(ids, total, sel_id, axis):
        n = len(ids or [])
        if not total:
            return "", []
        text = f"{n:,} of {total:,} selected" if n else f"{total:,} points · none selected"
        return text, selection_links(ws, axis, ids or [], sel_id)

    @app.callback(
        Output("emb-bed-download", "data"),
        Output("emb-alert", "children", allow_duplicate=True),
        Input("emb-bed", "n_clicks"),
        State("emb-selection-id", "data"),
        prevent_initial_call=True,
    )
    @guarded(2)
    def download_bed(n_clicks, sel_id):
        if not n_clicks or not sel_id:
            raise PreventUpdate
        return dict(content=selection_bed_text(ws, sel_id),
                    filename=f"avocado_selection_{sel_id}.bed"), None

    @app.callback(
        Output("emb-url", "data"),
        Input("emb-axis", "value"),
        Input("emb-method", "value"),
        Input("emb-res", "value"),
        Input("emb-color", "value"),
        Input("emb-exp-biosample", "value"),
        Input("emb-exp-assay", "value"),
        Input("emb-exp-kind", "value"),
        Input("emb-selection", "data"),
        Input("emb-selection-id", "data"),
    )
    def url_state(axis, method, res, color, b, a, kind, selected, sel_id):
        params = {"axis": axis, "method": method, "color": color}
        if axis == "genome":
            params["res"] = res
            if color == SIGNAL:
                params["exp"] = f"{b}|{a}|{kind}"
        if sel_id:
            params["selid"] = sel_id
        elif selected:
            params["sel"] = [str(s) for s in selected]
        return {"path": "/", "query": query_string(params)}

    url_sync(app, "emb-url", "emb-url-sink")

    @app.callback(
        Output("emb-version", "data"),
        Output("emb-alert", "children", allow_duplicate=True),
        Input("emb-compute", "n_clicks"),
        State("emb-axis", "value"),
        State("emb-method", "value"),
        State("emb-res", "value"),
        State("emb-version", "data"),
        background=True,
        running=[
            (Output("emb-compute", "disabled"), True, False),
            (Output("emb-cancel", "hidden"), False, True),
            (Output("emb-progress", "hidden"), False, True),
        ],
        cancel=[Input("emb-cancel", "n_clicks")],
        progress=[Output("emb-missing", "children", allow_duplicate=True)],
        prevent_initial_call=True,
    )
    def compute(set_progress, n_clicks, axis, method, res, version):
        if not n_clicks:
            return no_update, no_update
        set_progress(f"Computing the {METHODS.get(method, method)} of {axis}… this runs once "
                     "per model and is cached in the workspace.")
        try:
            ws.projection(axis, method, res if axis == "genome" else "all", compute=True)
        except (ValueError, KeyError) as exc:
            return no_update, alert(error_message(exc))
        return (version or 0) + 1, None


    @app.callback(
        Output("emb-missing", "children", allow_duplicate=True),
        Input("emb-cancel", "n_clicks"),
        prevent_initial_call=True,
    )
    def cancelled(n_clicks):
        # the job's progress text ("Computing ...") would otherwise stay after a cancel
        return "Cancelled: the projection was not computed." if n_clicks else no_update


def _empty_figure() -> dict:
    return {"data": [], "layout": {"xaxis": {"visible": False}, "yaxis": {"visible": False},
                                   "plot_bgcolor": "white", "paper_bgcolor": "white"}}
