"""Design page: which biosamples (for an assay) or genome positions to profile next."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html, no_update

from avocado_core import selection
from avocado_core.errors import short_list, shorten
from avocado_core.workspace import Workspace

from ..components import (
    alert,
    background_job,
    current_workspace,
    error_message,
    field,
    genome_selection,
    guarded,
    job_controls,
    options,
    query_string,
    significant,
    split_list,
    url_sync,
)
from ..figures.selection import gains_figure, picks_figure
from ..names import labels_of, name_column, with_names
from . import design_impute
from .design_upload import (
    coverage_text,
    decode_upload,
    fit_uploaded_bigwig,
    placed_point,
    placement_text,
)

RESOLUTIONS = {"all": "all factors", "25bp": "25 bp", "250bp": "250 bp", "5kbp": "5 kbp"}
MAX_K = 200
#: Biosamples a design picks by default (fewer when fewer can be picked).
DEFAULT_K = 4
#: Statuses of an experiment that count as profiled (the design counts them as chosen).
PROFILED = ("observed", "held out")
#: Genome sample standing for the whole genome, and the pool picks come from (kept small so a
#: selection takes seconds in a web request).
POSITION_GROUND, POSITION_POOL = 10_000, 2_000


# ---------------------------------------------------------------------- pure helpers
def filter_columns(ws: Workspace) -> list[str]:
    """Biosample metadata columns worth filtering on (few distinct values)."""
    meta = ws.biosample_metadata()
    return [c for c in meta.columns if 1 < meta[c].nunique(dropna=True) <= 60]


def candidate_pool(ws: Workspace, column: str | None = None, values: list | None = None,
                   candidates: list[str] | None = None) -> list[str] | None:
    """Biosamples allowed as picks: those given, narrowed by a metadata filter (None = all)."""
    pool = None if not candidates else [c for c in candidates if c in set(ws.biosamples)]
    if column and values:
        meta = ws.biosample_metadata()
        if column not in meta.columns:
            raise KeyError(f"unknown metadata column {shorten(column)}; columns: "
                           f"{short_list(meta.columns)}")
        keep = meta.index[meta[column].astype(str).isin([str(v) for v in values])]
        pool = [b for b in (pool if pool is not None else ws.biosamples) if b in set(keep)]
        if not pool:
            raise ValueError(f"no biosample has {column} in {shorten(values)}")
    return pool


def design_candidates(ws: Workspace, assay: str, *, rerank_profiled: bool = False,
                      column: str | None = None, values: list | None = None,
                      candidates: list[str] | None = None) -> tuple[list[str], list[str]]:
    """The biosamples a design for ``assay`` may pick, and those profiled for it already.

    Profiled biosamples (the assay observed or held out) count as chosen and are no
    candidates, unless ``rerank_profiled``; the other arguments narrow the pool as in
    :func:`candidate_pool`.

    Returns
    -------
    candidates, profiled: list of str
    """
    status = ws.status()
    if assay not in status.columns:
        raise KeyError(f"unknown assay {shorten(assay)}; the model knows "
                       f"{short_list(status.columns)}")
    profiled = [str(b) for b in status.index[status[assay].isin(PROFILED)]]
    pool = candidate_pool(ws, column, values, candidates)
    pool = list(ws.biosamples) if pool is None else pool
    if not rerank_profiled:
        pool = [b for b in pool if b not in set(profiled)]
    return pool, profiled


def candidates_text(assay: str, candidates: list[str]) -> str:
    """How many biosamples a design for ``assay`` can pick, in words (the hint under k)."""
    n = len(candidates)
    if n == 0:
        return f"No biosample can be picked for {assay}."
    names = f" ({short_list(candidates, 5)})" if n <= 5 else ""
    return (f"{n} biosample{'s' if n != 1 else ''}{names} can be picked for {assay}: k is at "
            f"most {n}.")


def biosample_design(ws: Workspace, assay: str, k: int, *, candidates: list[str] | None = None,
                     column: str | None = None, values: list | None = None,
                     rerank_profiled: bool = False) -> pd.DataFrame:
    """Ranked picks of ``k`` biosamples for ``assay`` (facility location on the embedding).

    Biosamples with the assay observed count as already chosen unless ``rerank_profiled``
    (useful for a fully observed compendium: which k of them are the most diverse).

    Returns
    -------
    pd.DataFrame
        rank, biosample, gain, objective, coverage, then the biosample metadata; attrs as
        ``selection.select_biosamples`` (profiled, n_candidates, ...).
    """
    k = _check_k(k)
    if not assay:
        raise ValueError("choose an assay to plan")
    cand, _ = design_candidates(ws, assay, rerank_profiled=rerank_profiled, column=column,
                                values=values, candidates=candidates)
    if k > len(cand):
        rerank = ("" if rerank_profiled else
                  "; or tick 'also rank biosamples that already have the assay'")
        if not cand:
            raise ValueError(f"no biosample can be picked for {assay}: every candidate already "
                             f"has it or was filtered out{rerank}")
        raise ValueError(f"k={k} exceeds the {len(cand)} candidate biosample"
                         f"{'s' if len(cand) != 1 else ''} for {assay} "
                         f"({short_list(cand, 5)}): choose k of at most {len(cand)}{rerank}")
    pool = candidate_pool(ws, column, values, candidates)
    observed = [] if rerank_profiled else ws.store
    picks = selection.select_biosamples(ws.model, observed, assay, k, candidates=pool)
    meta = ws.biosample_metadata()
    out = picks.merge(meta, left_on="biosample", right_index=True, how="left")
    out.attrs.update(picks.attrs)
    return out


def selection_mask(ws: Workspace, sel_id: str) -> np.ndarray:
    """A per-bin mask of the positions of a saved genome selection (each point's bins)."""
    sel = genome_selection(ws, sel_id)
    mask = np.zeros(ws.store.n_bins, dtype=bool)
    bins = np.asarray(sel["ids"], dtype=np.int64)
    spans = np.asarray(sel["n_bins"], dtype=np.int64)
    # every bin of every point: the bin plus 0..span-1
    offsets = np.arange(int(spans.max(initial=1)))
    covered = (bins[:, None] + offsets[None, :])[offsets[None, :] < spans[:, None]]
    mask[covered[covered < mask.size]] = True
    return mask


def position_design(ws: Workspace, k: int, resolution: str = "all",
                    klass: str | None = None, seed: int = 0,
                    positions: str | None = None) -> pd.DataFrame:
    """``k`` diverse genome positions from the genome factors, with coordinates (for BED).

    ``positions``: the id of a saved genome selection the picks must come from.
    """
    k = _check_k(k)
    if resolution not in RESOLUTIONS:
        raise ValueError(f"unknown resolution {shorten(resolution)}; expected one of "
                         f"{list(RESOLUTIONS)}")
    mask = selection_mask(ws, positions) if positions else None
    if klass:
        classes = ws.bin_classes
        if classes is None:
            raise ValueError("this workspace has no annotations to restrict positions by class")
        mask = (classes == klass) & (mask if mask is not None else True)
        if not mask.any():
            raise ValueError(f"no position of class {shorten(klass)}"
                             + (" in the selection" if positions else "")
                             + f"; classes: {sorted(set(classes))}")
    picks = selection.select_positions(ws.model, k, ws.store.regions, resolution=resolution,
                                       candidates=mask, seed=seed, ground_size=POSITION_GROUND,
                                       pool_size=POSITION_POOL)
    if ws.bin_classes is not None:
        picks["class"] = ws.bin_classes[picks["bin"].to_numpy()]
    return picks


def biosample_map(ws: Workspace, projection: pd.DataFrame, picks: list[str] = (),
                  profiled: list[str] = (), candidates: list[str] | None = None,
                  placed: list[dict] | None = None):
    """The design page's biosample map: :func:`picks_figure` with names on hover, and the
    placed upload (``placed``: rows of :func:`placed_point`) when there is one."""
    proj = projection.copy()
    proj["label"] = labels_of(ws.biosample_metadata(), proj["name"]).to_numpy()
    return picks_figure(proj, list(picks), list(profiled), candidates=candidates,
                        label_column="label", placed=pd.DataFrame(placed) if placed else None)


def bed_text(picks: pd.DataFrame) -> str:
    """Picked positions as BED: chrom, start, end, name (rank), score (gain)."""
    out = io.StringIO()
    table = picks[["chrom", "start", "end", "rank", "gain"]].copy()
    table["rank"] = "pick" + table["rank"].astype(str)
    table.to_csv(out, sep="\t", header=False, index=False, float_format="%.6g")
    return out.getvalue()


def _check_k(k) -> int:
    if k is None or (isinstance(k, str) and not k.strip()):
        raise ValueError(f"k is empty: type a whole number between 1 and {MAX_K}")
    try:
        value = float(k)
    except (TypeError, ValueError):
        value = float("nan")
    if not value.is_integer():
        raise ValueError(f"k must be a whole number between 1 and {MAX_K}, got {shorten(k)}")
    if not 1 <= value <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}, got {value:g}")
    return int(value)


def _url_number(text: str) -> int | float | str:
    """A number from the URL as a number (anything else as it is, for :func:`_check_k` to
    name)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


#: Columns of the result tables shown to 3 significant digits.
NUMBER_COLUMNS = ("gain", "objective", "coverage", "distance")


def _table(df: pd.DataFrame, table_id: str, columns: list[str]) -> dash_table.DataTable:
    shown = df[[c for c in columns if c in df.columns]].copy()
    for c in NUMBER_COLUMNS:
        if c in shown:
            shown[c] = significant(shown[c])
    return dash_table.DataTable(
        id=table_id, data=shown.to_dict("records"),
        columns=[{"name": c, "id": c} for c in shown.columns],
        page_size=15, sort_action="native", style_as_list_view=True,
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "inherit", "fontSize": "13px", "padding": "6px 10px",
                    "textAlign": "left", "border": "none"},
        style_header={"fontWeight": "600", "borderBottom": "1px solid #d9e2ec",
                      "backgroundColor": "#f8fafc"},
        style_data_conditional=[{"if": {"row_index": "odd"}, "backgroundColor": "#fbfcfd"}],
    )


#: Columns of a result table that are no metadata to show beside the ids (the Roadmap's
#: long description neither, unless it names the biosamples).
RESULT_COLUMNS = ("rank", "biosample", "name", "gain", "objective", "coverage", "distance",
                  "description")
#: Metadata columns a result table shows.
N_META = 3


def _named_table(df: pd.DataFrame, meta: pd.DataFrame | None, table_id: str,
                 before: list[str], after: list[str]) -> dash_table.DataTable:
    """A table of biosamples: rank, id and the name beside it (where the workspace names its
    biosamples), ``before``, :data:`N_META` metadata columns (less the one the names come from),
    then ``after``."""
    df = with_names(df, meta)
    named = ["biosample", "name"] if "name" in df.columns else ["biosample"]
    source = name_column(meta) if "name" in df.columns else None
    extra = [c for c in df.columns if c not in (*RESULT_COLUMNS, *before, *after, source)]
    return _table(df, table_id, ["rank", *named, *before, *extra[:N_META], *after])


def picks_table(picks: pd.DataFrame, meta: pd.DataFrame | None) -> dash_table.DataTable:
    """The picked biosamples: rank, id, name, metadata, gain, coverage."""
    return _named_table(picks, meta, "design-picks-table", [], ["gain", "coverage"])


def nearest_table(nearest: pd.DataFrame, meta: pd.DataFrame | None) -> dash_table.DataTable:
    """The known biosamples nearest a placed one: id, name, distance, metadata."""
    return _named_table(nearest, meta, "design-fit-table", ["distance"], [])


def design_result(picks: pd.DataFrame, projection: pd.DataFrame, assay: str,
                  candidates: list[str] | None) -> dict:
    """A design (:func:`biosample_design`) and the biosample map (columns name, x, y) as the
    page's ``dcc.Store`` holds them (JSON)."""
    attrs = picks.attrs
    return {
        "picks": picks.to_dict("records"),
        "columns": list(picks.columns),
        "assay": assay,
        "profiled": list(attrs.get("profiled", [])),
        "n_candidates": int(attrs.get("n_candidates", 0)),
        "candidates": candidates,
        "initial": float(attrs.get("initial_objective", 0.0)),
        "max": float(attrs.get("max_objective", 0.0)),
        "projection": projection[["name", "x", "y"]].to_dict("list"),
    }


def _picks(result: dict) -> pd.DataFrame:
    """The picks table of a design result (as a ``dcc.Store`` holds it)."""
    return pd.DataFrame(result["picks"], columns=result["columns"])


# ---------------------------------------------------------------------- layout
def _card(title: str, hint: str, children: list) -> html.Section:
    """One job of the page: a title, a line on what it does, then its controls and results."""
    return html.Section([html.H2(title, className="section-title"),
                         html.P(hint, className="section-hint"), *children], className="card")


def _results(grid: str, table: str, figures, label: str, button: str, download: str) -> list:
    """A design's results, hidden until it runs: its table beside its ``figures``, and a
    ``button`` (``label``) that downloads the picks."""
    return [
        html.Div([html.Div(id=table, className="result-table"), figures],
                 className="result-grid", id=grid, hidden=True),
        html.Button(label, id=button, className="button", disabled=True),
        dcc.Download(id=download),
    ]


def layout(assay: str | None = None, k: str | None = None, candidates: str | None = None,
           positions: str | None = None, **_ignored) -> html.Div:
    """The page; the assay, k and a candidate list (e.g. sent from the embeddings page) come
    from the URL."""
    ws = current_workspace()
    assays = ws.assays
    status = ws.status()
    observed = status.isin(["observed", "held out"])
    missing = (~observed).sum(axis=0)
    default_assay = assay if assay in assays else (missing.idxmax() if len(assays) else None)
    cand = [c for c in split_list(candidates) if c in set(ws.biosamples)]
    n_positions, problem = 0, None
    if positions:
        try:
            n_positions = len(genome_selection(ws, positions)["ids"])
        except (ValueError, KeyError) as exc:
            problem, positions = error_message(exc), None
    cols = filter_columns(ws)
    classes = sorted(set(ws.bin_classes)) if ws.bin_classes is not None else []
    fully_observed = bool(observed.all().all())
    # The default k can run on this workspace: at most DEFAULT_K, at most the candidates.
    pickable = (design_candidates(ws, default_assay, rerank_profiled=fully_observed,
                                  candidates=cand or None)[0] if default_assay else [])
    k_val = _url_number(k) if k else max(1, min(DEFAULT_K, len(pickable)))
    hint = candidates_text(default_assay, pickable) if default_assay else ""
    bio = _card(
        "Biosamples to profile next",
        "Facility-location selection over the biosample embedding: biosamples that "
        "already have the assay count as chosen; the picks cover what they leave "
        "uncovered.",
        [
            html.Div(
                [
                    field("Assay", dcc.Dropdown(id="design-assay", options=options(assays),
                                                value=default_assay, clearable=False)),
                    # No min / max on the box: the browser would send an out-of-range
                    # number as None; the server says what is wrong with it instead.
                    field("k", dcc.Input(id="design-k", type="number", value=k_val,
                                         className="number-input")),
                    field("Filter candidates by", dcc.Dropdown(id="design-filter-col",
                                                               options=options(cols),
                                                               placeholder="metadata column")),
                    field("Values", dcc.Dropdown(id="design-filter-values", multi=True,
                                                 placeholder="any")),
                ],
                className="control-row",
            ),
            html.Div(
                [
                    dcc.Checklist(id="design-rerank", options=[{
                        "label": " also rank biosamples that already have the assay",
                        "value": "rerank"}], value=["rerank"] if fully_observed else [],
                        className="checkbox"),
                    html.Div(hint, id="design-k-hint", className="field-hint"),
                    html.Div(
                        [f"Candidates: {len(cand)} biosamples from your selection ",
                         dcc.Link("(use all)", href="/design")] if cand else "",
                        id="design-candidates-note", className="field-hint"),
                ],
                className="control-row",
            ),
            job_controls("Pick biosamples", "design-run", "design-cancel", "design-progress", 3,
                         status="design-status"),
            html.Div(id="design-alert"),
            html.Div(id="design-summary", className="summary"),
            *_results("design-results", "design-table",
                      html.Div([dcc.Graph(id="design-picks-graph", config={"displaylogo": False}),
                                dcc.Graph(id="design-gains-graph", config={"displaylogo": False})],
                               className="result-figures"),
                      "Download CSV", "design-csv", "design-download"),
        ],
    )
    pos = _card(
        "Genome positions",
        "k diverse positions by facility location on the genome factors (a sample of "
        "the genome stands for the whole), exported as BED.",
        [
            html.Div(
                [
                    field("k", dcc.Input(id="design-pos-k", type="number", value=20,
                                         className="number-input")),
                    field("Genome factors", dcc.Dropdown(id="design-pos-res",
                                                         options=options(RESOLUTIONS, RESOLUTIONS),
                                                         value="all", clearable=False)),
                    field("Only positions of class", dcc.Dropdown(id="design-pos-class",
                                                                  options=options(classes),
                                                                  placeholder="any class")),
                ],
                className="control-row",
            ),
            html.Div(
                [f"Candidates: {n_positions:,} positions from your selection ",
                 dcc.Link("(use all)", href="/design")] if positions else "",
                id="design-pos-candidates-note", className="field-hint"),
            job_controls("Pick positions", "design-pos-run", "design-pos-cancel",
                         "design-pos-progress", 2),
            html.Div(alert(problem) if problem else None, id="design-pos-alert"),
            html.Div(id="design-pos-summary", className="summary"),
            *_results("design-pos-results", "design-pos-table",
                      dcc.Graph(id="design-pos-gains-graph", config={"displaylogo": False}),
                      "Download BED", "design-bed", "design-pos-download"),
        ],
    )
    new = _card(
        "Place a new biosample",
        "Upload one bigWig of a biosample the model has not seen: a copy of the "
        "model learns only its embedding (the network and every other factor stay "
        "frozen) and the closest known biosamples are listed.",
        [
            html.Div(
                [
                    field("bigWig file", dcc.Upload(
                        html.Div(["Drop a bigWig here or ", html.A("choose a file")],
                                 id="design-upload-label"),
                        id="design-upload", multiple=False, className="upload")),
                    field("Name", dcc.Input(id="design-new-name", type="text",
                                            placeholder="e.g. my_sample", className="text-input")),
                    field("Assay of the file", dcc.Dropdown(id="design-new-assay",
                                                            options=options(assays),
                                                            value=assays[0] if assays else None,
                                                            clearable=False)),
                ],
                className="control-row",
            ),
            job_controls("Fit and place", "design-fit", "design-fit-cancel", "design-fit-progress",
                         3, status="design-fit-status"),
            html.Div(id="design-fit-alert"),
            html.Div(id="design-fit-result"),
            design_impute.impute_section(ws),
        ],
    )
    return html.Div(
        [
            html.Div([bio, pos, new], className="design-stack"),
            dcc.Store(id="design-result"),
            dcc.Store(id="design-pos-result"),
            dcc.Store(id="design-placed"),
            dcc.Store(id="design-candidates", data=cand),
            dcc.Store(id="design-positions", data=positions),
            dcc.Store(id="design-url"),
            html.Div(id="design-url-sink", hidden=True),
        ],
        className="page-single",
    )


# ---------------------------------------------------------------------- callbacks
def register_callbacks(app, ws: Workspace) -> None:
    """Callbacks of the page, bound to ``app`` and its workspace."""

    @app.callback(
        Output("design-filter-values", "options"),
        Output("design-filter-values", "value"),
        Input("design-filter-col", "value"),
    )
    def filter_values(column):
        if not column:
            return [], []
        meta = ws.biosample_metadata()
        counts = meta[column].astype(str).value_counts()
        return [{"label": f"{v} ({n})", "value": v} for v, n in counts.items()], []

    @app.callback(
        Output("design-result", "data"),
        Output("design-alert", "children"),
        Input("design-run", "n_clicks"),
        State("design-assay", "value"),
        State("design-k", "value"),
        State("design-filter-col", "value"),
        State("design-filter-values", "value"),
        State("design-rerank", "value"),
        State("design-candidates", "data"),
        **background_job("design-run", "design-cancel", "design-progress",
                         status=("design-status", "working…")),
    )
    def run_biosamples(set_progress, n_clicks, assay, k, column, values, rerank, candidates):
        if not n_clicks:
            return no_update, no_update
        set_progress(("1", "3"))
        try:
            picks = biosample_design(ws, assay, k, candidates=candidates or None, column=column,
                                     values=values, rerank_profiled=bool(rerank))
            set_progress(("2", "3"))
            proj = ws.projection("biosamples", "umap")
        except (ValueError, KeyError) as exc:
            set_progress(("0", "3"))
            return None, alert(error_message(exc))
        set_progress(("3", "3"))
        return design_result(picks, proj, assay, candidates or None), None

    @app.callback(
        Output("design-summary", "children"),
        Output("design-table", "children"),
        Output("design-picks-graph", "figure"),
        Output("design-gains-graph", "figure"),
        Output("design-csv", "disabled"),
        Output("design-results", "hidden"),
        Input("design-result", "data"),
        Input("design-placed", "data"),
        prevent_initial_call=True,
    )
    def show_biosamples(result, placed):
        if not result:
            return "", None, {}, {}, True, True
        picks = _picks(result)
        proj = pd.DataFrame(result["projection"])
        cov0 = result["initial"] / result["max"] if result["max"] else 0.0
        cov1 = float(picks["coverage"].iloc[-1]) if len(picks) else cov0
        summary = [
            html.B(f"{len(picks)} biosample{'s' if len(picks) != 1 else ''} picked for "
                   f"{result['assay']}"),
            f" from {result['n_candidates']} candidates; {len(result['profiled'])} already "
            f"profiled count as chosen. Coverage {cov0:.0%} → {cov1:.0%}.",
        ]
        meta = ws.biosample_metadata()
        return (summary, picks_table(picks, meta),
                biosample_map(ws, proj, picks["biosample"].tolist(), result["profiled"],
                              result.get("candidates"), placed),
                gains_figure(picks["gain"], picks["objective"],
                             labels_of(meta, picks["biosample"])),
                False, False)

    def download(button: str, target: str, store: str, send: Callable) -> None:
        """The ``button`` sends ``send(picks, result)`` of the design in ``store``."""

        @app.callback(Output(target, "data"), Input(button, "n_clicks"), State(store, "data"),
                      prevent_initial_call=True)
        def send_picks(_n, result):
            return send(_picks(result), result) if result else no_update

    def csv_file(picks: pd.DataFrame, result: dict) -> dict:
        picks.insert(1, "assay", result["assay"])
        return dcc.send_data_frame(picks.to_csv, f"avocado_design_{result['assay']}.csv",
                                   index=False, float_format="%.6g")

    download("design-csv", "design-download", "design-result", csv_file)

    @app.callback(
        Output("design-pos-result", "data"),
        Output("design-pos-alert", "children"),
        Input("design-pos-run", "n_clicks"),
        State("design-pos-k", "value"),
        State("design-pos-res", "value"),
        State("design-pos-class", "value"),
        State("design-positions", "data"),
        **background_job("design-pos-run", "design-pos-cancel", "design-pos-progress"),
    )
    def run_positions(set_progress, n_clicks, k, resolution, klass, positions):
        if not n_clicks:
            return no_update, no_update
        set_progress(("1", "2"))
        try:
            picks = position_design(ws, k, resolution or "all", klass or None,
                                    positions=positions or None)
        except (ValueError, KeyError) as exc:
            set_progress(("0", "2"))
            return None, alert(error_message(exc))
        set_progress(("2", "2"))
        return {"picks": picks.to_dict("records"), "columns": list(picks.columns),
                "resolution": resolution, "class": klass,
                "from_selection": bool(positions)}, None

    @app.callback(
        Output("design-pos-summary", "children"),
        Output("design-pos-table", "children"),
        Output("design-pos-gains-graph", "figure"),
        Output("design-bed", "disabled"),
        Output("design-pos-results", "hidden"),
        Input("design-pos-result", "data"),
        prevent_initial_call=True,
    )
    def show_positions(result):
        if not result:
            return "", None, {}, True, True
        picks = _picks(result)
        where = f" of class {result['class']}" if result.get("class") else ""
        if result.get("from_selection"):
            where += " from your selection"
        summary = [html.B(f"{len(picks)} positions picked{where}"),
                   f" from the {RESOLUTIONS.get(result['resolution'], 'all')} genome factors. "
                   f"Coverage of the genome sample: {float(picks['coverage'].iloc[-1]):.0%}."]
        picks = picks.assign(locus=picks["chrom"].astype(str) + ":"
                             + picks["start"].map("{:,}".format))
        table = _table(picks, "design-pos-table-inner",
                       ["rank", "locus", "class", "gain", "coverage"])
        return summary, table, gains_figure(picks["gain"], picks["objective"], picks["locus"],
                                            what="positions"), False, False

    download("design-bed", "design-pos-download", "design-pos-result",
             lambda picks, _: dict(content=bed_text(picks),
                                   filename="avocado_design_positions.bed"))

    @app.callback(Output("design-upload-label", "children"),
                  Input("design-upload", "filename"), prevent_initial_call=True)
    def upload_label(filename):
        if not filename:
            return no_update
        return [html.B(shorten(filename, quote=False)), " (drop another file to replace it)"]

    @app.callback(
        Output("design-k-hint", "children"),
        Input("design-assay", "value"),
        Input("design-rerank", "value"),
        Input("design-filter-col", "value"),
        Input("design-filter-values", "value"),
        State("design-candidates", "data"),
        prevent_initial_call=True,
    )
    @guarded(1)
    def k_hint(assay, rerank, column, values, candidates):
        if not assay:
            return ""
        cand, _ = design_candidates(ws, assay, rerank_profiled=bool(rerank), column=column,
                                    values=values, candidates=candidates or None)
        return candidates_text(assay, cand)

    @app.callback(
        Output("design-fit-result", "children"),
        Output("design-fit-alert", "children"),
        Output("design-placed", "data"),
        Output("design-fitted", "data"),
        Input("design-fit", "n_clicks"),
        State("design-upload", "contents"),
        State("design-upload", "filename"),
        State("design-new-name", "value"),
        State("design-new-assay", "value"),
        **background_job("design-fit", "design-fit-cancel", "design-fit-progress",
                         status=("design-fit-status", "fitting…")),
    )
    def fit_new(set_progress, n_clicks, contents, filename, name, assay):
        if not n_clicks:
            return no_update, no_update, no_update, no_update
        limit = int(app.server.config.get("AVOCADO_MAX_UPLOAD_BYTES", 64 * 1024 * 1024) * 0.7)
        set_progress(("1", "3"))
        try:
            data = decode_upload(contents, filename, limit)
            set_progress(("2", "3"))
            temp_dir = app.server.config.get("AVOCADO_TEMP_DIR")
            token, keep = design_impute.placement_folder(temp_dir)
            nearest = fit_uploaded_bigwig(ws, data, filename, name, assay, temp_dir, keep)
            proj = ws.projection("biosamples", "umap")
        except (ValueError, KeyError) as exc:
            set_progress(("0", "3"))
            return None, alert(error_message(exc)), None, None
        placed = placed_point(ws, nearest, proj).to_dict("records")
        set_progress(("3", "3"))
        attrs = nearest.attrs
        summary = html.Div([
            html.B(f"{shorten(attrs['name'], quote=False)} ({attrs['assay']}, "
                   f"{shorten(filename, quote=False)})"),
            f" — {coverage_text(nearest)} ",
            html.Span(placement_text(nearest), id="design-fit-placement"),
            " Nearest known biosamples in the embedding, and where it falls on the biosample "
            "map:"], className="summary")
        figure = biosample_map(ws, proj, candidates=[], placed=placed)
        return [summary, html.Div([
            html.Div(nearest_table(nearest, ws.biosample_metadata()), className="result-table"),
            dcc.Graph(id="design-fit-map", figure=figure, config={"displaylogo": False})],
            className="result-grid")], None, placed, design_impute.fitted_record(
                ws, nearest, token, filename)

    @app.callback(
        Output("design-url", "data"),
        Input("design-assay", "value"),
        Input("design-k", "value"),
        Input("design-candidates", "data"),
        State("design-positions", "data"),
    )
    def url_state(assay, k, candidates, positions):
        return {"path": "/design",
                "query": query_string({"assay": assay, "k": k, "candidates": candidates,
                                       "positions": positions})}

    url_sync(app, "design-url", "design-url-sink")
    design_impute.register_callbacks(app, ws)
