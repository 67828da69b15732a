"""Imputing a placed upload on the design page: the new biosample's assays predicted from its
fitted embedding row by the workspace's model (``Avocado.predict_embedding``), drawn at a locus
beside the uploaded track, and written over the workspace's positions as one bigWig or bedGraph
per assay (a zip), in the locus page's export units."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from dash import Input, Output, State, callback_context, dcc, html, no_update
from flask import abort, send_from_directory

from avocado_core.bigwig import resolve_chrom_sizes, write_bigwigs
from avocado_core.errors import short_list, shorten
from avocado_core.regions import format_locus
from avocado_core.workspace import Workspace

from ..components import alert, background_job, error_message, field, guarded, job_controls, options
from ..figures.tracks import Track, locus_figure
from .design_upload import UPLOAD_FILE
from .locus import SCREEN_POINTS, default_locus, resolve_locus, snap_window, window_agreement
from .locus_export import (
    EXPORT_UNITS,
    UNIT_LABELS,
    bedgraph_header,
    bedgraph_series,
    check_units,
    file_name,
    in_units,
)

#: The downloads' formats.
FORMATS = {"bigwig": "bigWig", "bedgraph": "bedGraph"}
#: Assays predicted together (they share the genome term): memory holds their values over
#: :data:`CHUNK_BINS` bins at a time, whatever the size of the workspace.
BATCH = 8
CHUNK_BINS = 400_000
#: Imputed tracks the view draws at first, besides the uploaded assay.
VIEW_TRACKS = 4
#: How the files and the view name what they hold.
KIND, SOURCE = "imputed", "fitted upload"
_TOKEN = re.compile(r"[0-9a-f]{32}")
#: Where the server sends the zips (``/<token>/<file>`` under it).
DOWNLOAD_ROUTE = "/_avocado/imputed"


# ---------------------------------------------------------------------- pure helpers
def placement_folder(temp_dir: str | None, token: str | None = None) -> tuple[str, Path]:
    """The folder of a placed upload's files in the app's temporary folder: a new one (no
    ``token``), or the one of ``token``, which must exist (the page sends it back)."""
    base = Path(temp_dir or tempfile.gettempdir())
    if token is None:
        token = uuid.uuid4().hex
        return token, base / f"placed-{token}"
    folder = base / f"placed-{token}"
    if not _TOKEN.fullmatch(str(token)) or not folder.is_dir():
        raise ValueError("the placed biosample's files are gone (the server was restarted); "
                         "fit and place it again")
    return token, folder


def fitted_record(ws: Workspace, nearest: pd.DataFrame, token: str, filename: str | None
                  ) -> dict:
    """What the page keeps of a placement (:func:`~.design_upload.fit_new_biosample`): the new
    biosample's name, its upload and fitted row, and the prediction settings of its nearest
    known biosample (chosen per biosample on validation tracks, where the model has them)."""
    attrs = nearest.attrs
    closest = str(nearest["biosample"].iloc[0])
    return {"token": token, "name": attrs["name"], "assay": attrs["assay"],
            "filename": filename, "embedding": list(attrs["embedding"]), "nearest": closest,
            "settings": ws.model.biosample_settings.get(closest, {})}


def assay_options(ws: Workspace) -> list[dict]:
    """The assays to impute, the most observed first, each with its count."""
    counts = ws.status().isin(["observed", "held out"]).sum(axis=0)
    counts = counts.reindex(ws.assays).fillna(0).astype(int)
    order = sorted(ws.assays, key=lambda a: (-counts[a], ws.assays.index(a)))
    return [{"label": f"{a} ({counts[a]} observed)", "value": a} for a in order]


def chosen_assays(ws: Workspace, chosen: list[str] | None) -> list[str]:
    """The assays asked for (none: every assay), in the model's order."""
    if not chosen:
        return list(ws.assays)
    unknown = [a for a in chosen if a not in set(ws.assays)]
    if unknown:
        raise KeyError(f"unknown assay {shorten(unknown[0])}; the model knows "
                       f"{short_list(ws.assays)}")
    return [a for a in ws.assays if a in set(chosen)]


def predict(ws: Workspace, fitted: dict, assays: list[str], lo: int, hi: int) -> np.ndarray:
    """The new biosample's imputations of ``assays`` over bins [lo, hi), clipped at 0 as every
    imputation the app shows or exports is (the signal is never negative)."""
    values = ws.model.predict_embedding(fitted["embedding"], assays, lo, hi,
                                        settings=fitted["settings"])
    return np.maximum(values, 0.0)


def provenance(ws: Workspace, fitted: dict) -> str:
    """Where the imputations come from, in words (for the page and the files' notes)."""
    settings = fitted["settings"]
    how = (f"the prediction settings of its nearest biosample, {fitted['nearest']} ("
           + ", ".join(f"{k} {v}" for k, v in settings.items()) + ")" if settings
           else "the model's prediction settings")
    members = len(ws.member_paths)
    model = ("the workspace's model" if members < 2 else
             f"the first of the workspace's {members} ensemble models (the one the fit used; "
             "the locus page shows their mean)")
    return (f"Imputed for the new biosample {fitted['name']}, placed from the upload "
            f"{fitted['filename'] or ''} ({fitted['assay']}): its embedding row was fitted with "
            f"the model frozen, and {model} predicts from that row, with {how}. Not observed "
            "signal.")


def write_imputed(ws: Workspace, fitted: dict, assays: list[str], folder: Path, fmt: str,
                  units: str, progress: Callable[[int], None] = lambda done: None) -> Path:
    """Write the new biosample's imputations over the workspace's positions: one file per
    assay (``{name}.{assay}.imputed.{bw|bedGraph}``) and a README, zipped.

    The values are predicted :data:`CHUNK_BINS` bins of :data:`BATCH` assays at a time and
    written as they come; ``progress(n)`` is told after each batch how many assays are done.

    Returns
    -------
    pathlib.Path
        The zip, in ``folder``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {shorten(fmt)}; expected one of {list(FORMATS)}")
    check_units(units)  # before anything is predicted
    regions = ws.store.regions
    stem = file_name(f"{fitted['name']}.{KIND}.{FORMATS[fmt]}.{units}")
    parts = folder / f"{stem}.parts"
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    sizes = resolve_chrom_sizes(ws.store) if fmt == "bigwig" else None
    paths = []
    for i in range(0, len(assays), BATCH):
        batch = assays[i:i + BATCH]
        names = [parts / (file_name(f"{fitted['name']}.{a}.{KIND}")
                          + (".bw" if fmt == "bigwig" else ".bedGraph")) for a in batch]
        values = partial(_values_in_units, ws, fitted, batch, units)
        if fmt == "bigwig":
            write_bigwigs(names, regions, sizes, values, chunk_bins=CHUNK_BINS,
                          transform="arcsinh" if units == "arcsinh" else None)
        else:
            _write_bedgraphs(regions, fitted["name"], batch, names, values, units)
        paths += names
        progress(i + len(batch))
    target = folder / f"{stem}.zip"
    unfinished = folder / f".{stem}.zip.part"
    # bigWigs are compressed already; bedGraphs are text, deflated fast (level 1)
    method = zipfile.ZIP_STORED if fmt == "bigwig" else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(unfinished, "w", method, compresslevel=1) as z:
        z.writestr("README.txt", f"{provenance(ws, fitted)}\nUnits: {EXPORT_UNITS[units]}. "
                   f"Positions: the workspace's {regions.n_bins:,} bins of {regions.bin_size} "
                   f"bp ({ws.genome}).\n")
        for path in paths:
            z.write(path, path.name)
    os.replace(unfinished, target)
    shutil.rmtree(parts, ignore_errors=True)
    return target


def _values_in_units(ws: Workspace, fitted: dict, assays: list[str], units: str, lo: int,
                     hi: int) -> np.ndarray:
    return in_units(predict(ws, fitted, assays, lo, hi), units)


def _write_bedgraphs(regions, name: str, assays: list[str], paths: list[Path],
                     values: Callable[[int, int], np.ndarray], units: str) -> None:
    """One bedGraph per assay over every bin, :data:`CHUNK_BINS` bins at a time."""
    columns = [f"{name}.{a}.{KIND}" for a in assays]
    handles = [open(p, "w") for p in paths]
    try:
        for fh, column in zip(handles, columns):
            fh.write(bedgraph_header(column, units, f" ({SOURCE})"))
        for lo in range(0, regions.n_bins, CHUNK_BINS):
            hi = min(regions.n_bins, lo + CHUNK_BINS)
            chrom, starts = regions.bin_coordinates(np.arange(lo, hi))
            table = pd.DataFrame({"chrom": chrom, "start": starts,
                                  "end": starts + regions.bin_size,
                                  **dict(zip(columns, values(lo, hi)))})
            for fh, column in zip(handles, columns):
                fh.write(bedgraph_series(table, column, units, header=False))
    finally:
        for fh in handles:
            fh.close()


def view_locus(ws: Workspace, upload: np.ndarray) -> str:
    """The view's first window: the locus page's default where the upload has data there, else
    100 kb around the upload's strongest bin."""
    locus = default_locus(ws)
    _, _, _, b0, b1 = snap_window(ws, *resolve_locus(ws, locus))
    if np.isfinite(upload[b0:b1]).any():
        return locus
    chrom, start = ws.store.regions.bin_coordinates([int(np.nanargmax(upload))])
    return format_locus(str(chrom[0]), max(int(start[0]) - 50_000, 0), int(start[0]) + 50_000)


def imputed_view(ws: Workspace, fitted: dict, upload: np.ndarray, assays: list[str],
                 locus: str, width_px: int = SCREEN_POINTS) -> tuple[dict, str]:
    """The uploaded track beside its imputation (training fit: the fit learnt from it), then
    the imputations of ``assays``, at ``locus`` (:func:`locus_figure`).

    Returns
    -------
    figure, the window drawn (a locus string)
    """
    chrom, start, end, b0, b1 = snap_window(ws, *resolve_locus(ws, locus))
    others = [a for a in assays if a != fitted["assay"]]
    values = predict(ws, fitted, [fitted["assay"], *others], b0, b1)
    own = upload[b0:b1]
    measured = np.isfinite(own)
    observed = np.where(measured, own, 0.0).astype(np.float32) if measured.any() else None
    scores = window_agreement(observed, values[0]) if measured.all() else {}
    name, label = fitted["name"], SOURCE
    tracks = [Track(name, fitted["assay"], observed, values[0], scores, True, name=label)]
    tracks += [Track(name, a, imputed=v, name=label) for a, v in zip(others, values[1:])]
    genes = exons = None
    if ws.annotations is not None:
        genes = ws.annotations.genes_in(chrom, start, end)
        exons = ws.annotations.exons_in(chrom, start, end)
    figure = locus_figure(chrom, start, end, ws.store.regions.bin_size, tracks, genes, exons,
                          width_px=width_px, track_height=60)
    return figure, format_locus(chrom, start, end)


# ---------------------------------------------------------------------- layout
def impute_section(ws: Workspace) -> html.Div:
    """The controls and results of imputing a placed upload (hidden until one is placed)."""
    n = len(ws.assays)
    return html.Div([
        html.H3("Impute the new biosample", className="section-title"),
        html.P(id="design-impute-hint", className="section-hint"),
        html.Div([
            field("Assays", dcc.Dropdown(id="design-impute-assays", options=assay_options(ws),
                                         multi=True, placeholder=f"all {n} assays"),
                  hint="the most observed first; none chosen: all of them"),
            field("Files", dcc.RadioItems(id="design-impute-format",
                                          options=options(FORMATS, FORMATS), value="bigwig",
                                          inline=True, className="radio-inline")),
            field("Units", dcc.RadioItems(id="design-impute-units",
                                          options=options(EXPORT_UNITS, UNIT_LABELS),
                                          value="arcsinh", inline=True,
                                          className="radio-inline")),
        ], className="control-row"),
        job_controls("Impute", "design-impute-run", "design-impute-cancel",
                     "design-impute-progress", 1, status="design-impute-status"),
        html.Div(id="design-impute-alert"),
        html.Div([
            html.Div(id="design-impute-summary", className="summary"),
            html.A("Download", id="design-impute-download", className="button"),
            html.Div([
                field("Locus", dcc.Input(id="design-impute-locus", type="text", debounce=True,
                                         className="text-input", style={"width": "16rem"})),
                field("Imputed tracks shown", dcc.Dropdown(id="design-impute-show",
                                                           multi=True)),
            ], className="control-row"),
            html.Div(id="design-impute-view-alert"),
            dcc.Graph(id="design-impute-graph", config={"displaylogo": False}),
        ], id="design-impute-results", hidden=True),
        dcc.Store(id="design-fitted"),
        dcc.Store(id="design-imputed"),
    ], id="design-impute", hidden=True)


# ---------------------------------------------------------------------- callbacks
def register_callbacks(app, ws: Workspace) -> None:
    """The impute section's callbacks, bound to ``app`` and its workspace."""

    def temp_dir() -> str | None:
        return app.server.config.get("AVOCADO_TEMP_DIR")

    @app.callback(Output("design-impute", "hidden"), Output("design-impute-hint", "children"),
                  Input("design-fitted", "data"), prevent_initial_call=True)
    def offer(fitted):
        if not fitted:
            return True, ""
        return False, (f"Predict {fitted['name']}'s assays from its fitted row: to look at "
                       "here and to download over the workspace's positions.")

    @app.callback(
        Output("design-imputed", "data"),
        Output("design-impute-alert", "children"),
        Input("design-impute-run", "n_clicks"),
        State("design-fitted", "data"),
        State("design-impute-assays", "value"),
        State("design-impute-format", "value"),
        State("design-impute-units", "value"),
        **background_job("design-impute-run", "design-impute-cancel", "design-impute-progress",
                         status=("design-impute-status", "imputing…")),
    )
    def run(set_progress, n_clicks, fitted, chosen, fmt, units):
        if not n_clicks or not fitted:
            return no_update, no_update
        began = time.perf_counter()
        try:
            assays = chosen_assays(ws, chosen)
            set_progress(("0", str(len(assays))))
            _, folder = placement_folder(temp_dir(), fitted["token"])
            path = write_imputed(ws, fitted, assays, folder, fmt, units,
                                 lambda done: set_progress((str(done), str(len(assays)))))
        except (ValueError, KeyError) as exc:
            return None, alert(error_message(exc))
        return {"token": fitted["token"], "assays": assays, "format": fmt, "units": units,
                "file": path.name, "bytes": path.stat().st_size,
                "seconds": round(time.perf_counter() - began, 1)}, None

    @app.callback(
        Output("design-impute-results", "hidden"),
        Output("design-impute-summary", "children"),
        Output("design-impute-show", "options"),
        Output("design-impute-show", "value"),
        Output("design-impute-locus", "value"),
        Output("design-impute-graph", "figure"),
        Output("design-impute-view-alert", "children"),
        Output("design-impute-download", "href"),
        Output("design-impute-download", "children"),
        Input("design-imputed", "data"),
        Input("design-impute-show", "value"),
        Input("design-impute-locus", "value"),
        State("design-fitted", "data"),
        prevent_initial_call=True,
    )
    @guarded(9, alert_index=6)
    def show(result, shown, locus, fitted):
        if not result or not fitted or result["token"] != fitted["token"]:
            return True, "", [], [], "", {}, None, None, "Download"
        _, folder = placement_folder(temp_dir(), result["token"])
        upload = np.load(folder / UPLOAD_FILE, mmap_mode="r")
        fresh = callback_context.triggered_id == "design-imputed"
        if fresh:
            shown = [a for a in result["assays"] if a != fitted["assay"]][:VIEW_TRACKS]
            locus = view_locus(ws, upload)
        figure, drawn = imputed_view(ws, fitted, upload, shown or [], locus)
        n = len(result["assays"])
        summary = [html.B(f"{fitted['name']}: {n} assay{'s' if n != 1 else ''} imputed"),
                   f" in {result['seconds']:g} s, as {FORMATS[result['format']]} in "
                   f"{EXPORT_UNITS[result['units']]} over the workspace's "
                   f"{ws.store.n_bins:,} bins ({result['bytes'] / 1e6:.1f} MB zipped). "
                   f"{provenance(ws, fitted)}"]
        href = app.get_relative_path(f"{DOWNLOAD_ROUTE}/{result['token']}/{result['file']}")
        return (False, summary, options(result["assays"]), shown, drawn, figure, None, href,
                f"Download {result['file']} ({result['bytes'] / 1e6:.1f} MB)")

    def download(token: str, name: str):
        """The zip a job wrote, streamed from the app's temporary folder (too large for a
        callback's JSON: tens of MB at ENCODE's size)."""
        try:
            _, folder = placement_folder(temp_dir(), token)
        except ValueError:
            abort(404)
        if not name.endswith(".zip"):  # the zips only, not the kept upload
            abort(404)
        return send_from_directory(folder, name, as_attachment=True)

    app.server.add_url_rule(f"{DOWNLOAD_ROUTE}/<token>/<name>", "design_impute_download",
                            download)
