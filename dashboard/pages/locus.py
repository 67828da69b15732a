"""Locus page: observed and imputed tracks of chosen experiments at a locus, with genes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from avocado_core import metrics
from avocado_core.errors import shorten
from avocado_core.regions import format_locus, parse_locus
from avocado_core.saved_selections import selection_intervals
from avocado_core.workspace import Workspace

from ..components import (
    alert,
    current_workspace,
    error_message,
    genome_selection,
    guarded,
    options,
    query_string,
    split_list,
    url_sync,
)
from ..figures.tracks import Y_SCALES, Track, format_span, locus_figure
from ..names import names_of
from ..track_heights import PAGE_HEIGHTS, format_heights, parse_heights, row_heights
from ..track_order import TRACK_ORDERS, arrange
from .locus_export import EXPORT_UNITS, UNIT_LABELS, bedgraph_text, bedgraph_zip, csv_text
from .locus_order import order_panel, register_order_callbacks
from .locus_picker import picker_layout, register_picker_callbacks

#: Widest window drawn (bp); wider requests (a typed locus, a scroll out) get an alert.
MAX_WINDOW_BP = 2_000_000
#: About the plot's width in pixels at the usual window size (1,004 px at 1440 px wide): each
#: series is drawn with at most two points per pixel, the band with one.
SCREEN_POINTS = 1000
#: Most tracks drawn at once.
MAX_TRACKS = 40
#: The tracks' y scales (:data:`~dashboard.figures.tracks.Y_SCALES`) as the page names them.
SCALE_LABELS = {"assay": "shared per assay", "track": "per track"}
#: Assays a map's lasso opens for its biosamples (fewer when there are many biosamples).
MAX_LASSO_ASSAYS = 3
ZOOM_FACTOR = 3.0
GENE_PAD = 0.15
#: Context (bp) on each side of a selected position in the selection's windows.
SELECTION_PAD = 20_000
#: Widest window that gathers nearby selected positions (bp); one longer selected interval
#: gets a window of its own, up to ``MAX_WINDOW_BP``.
SELECTION_WINDOW_BP = 200_000
#: Windows of a selection listed in the navigator (more: an evenly spaced sample of them).
MAX_SELECTION_WINDOWS = 2_000


# ---------------------------------------------------------------------- pure helpers
def resolve_locus(ws: Workspace, text: str) -> tuple[str, int, int]:
    """A locus string (``chr1:151,200,000-151,300,000``, ``chr1:151.2M-151.3M``) or a gene name.

    A gene gives its span padded by 15 % on each side.
    """
    text = (text or "").strip()
    if not text:
        raise ValueError("type a locus such as chr1:151,200,000-151,300,000 or a gene name")
    if ":" in text:
        return parse_locus(text)
    if not re.fullmatch(r"[A-Za-z0-9._\-]+", text):
        raise ValueError(f"{shorten(text)} is neither a locus (chrom:start-end) nor a gene name")
    if ws.annotations is None:
        raise ValueError(f"no gene annotations in this workspace, so {shorten(text)} cannot be "
                         "looked up; type a locus such as chr1:10,000-20,000")
    gene = ws.annotations.gene(text)
    pad = int((int(gene["end"]) - int(gene["start"])) * GENE_PAD) + 500
    return str(gene["chrom"]), max(int(gene["start"]) - pad, 0), int(gene["end"]) + pad


def snap_window(ws: Workspace, chrom: str, start: int, end: int) -> tuple[str, int, int, int, int]:
    """The window as drawn: clipped to the region it overlaps, aligned to bins, size-checked.

    Returns
    -------
    chrom, start, end, start_bin, end_bin
    """
    if end - start > MAX_WINDOW_BP:
        raise ValueError(
            f"the window {format_locus(chrom, start, end)} spans {format_span(end - start)}, too "
            f"large to draw; the limit is {format_span(MAX_WINDOW_BP)}. Zoom in or type a "
            "smaller locus.")
    regions = ws.store.regions
    b0, b1 = regions.locus_bins((chrom, start, end), clip=True)
    c, starts = regions.bin_coordinates([b0, b1 - 1])
    return str(c[0]), int(starts[0]), int(starts[1]) + regions.bin_size, b0, b1


def zoom(chrom: str, start: int, end: int, factor: float) -> tuple[str, int, int]:
    """Zoom about the centre: factor > 1 zooms in (at least 250 bp stays visible)."""
    centre, half = (start + end) / 2, max((end - start) / 2 / factor, 125)
    return chrom, max(int(centre - half), 0), int(centre + half)


def pan(chrom: str, start: int, end: int, fraction: float) -> tuple[str, int, int]:
    """Shift by a fraction of the span (negative: left), keeping the span."""
    shift = int((end - start) * fraction)
    if start + shift < 0:
        shift = -start
    return chrom, start + shift, end + shift


def keep_in_region(ws: Workspace, chrom: str, start: int, end: int, previous: dict | None
                   ) -> tuple[str, int, int]:
    """Slide a panned / zoomed window back inside the region of the previous window."""
    if not previous:
        return chrom, start, end
    regions = ws.store.regions
    b = regions.locus_bins((previous["chrom"], previous["start"], previous["end"]), clip=True)[0]
    row = regions.region_of_bin(b)
    lo = int(row["first_bin_start"])
    hi = lo + int(row["n_bins"]) * regions.bin_size
    span = min(end - start, hi - lo)
    start = min(max(start, lo), hi - span)
    return chrom, start, start + span


@dataclass
class SelectionWindows:
    """The navigator of a saved genome selection.

    ``windows``: locus strings in genome order, each a region of the selection (nearby
    selected positions together, ``SELECTION_PAD`` bp of context either side, none
    overlapping the next); at most ``MAX_SELECTION_WINDOWS``, an evenly spaced sample when
    the selection has more (``n_windows``). ``n_points``: the selected positions.
    """

    windows: list[str]
    n_windows: int
    n_points: int

    @property
    def sampled(self) -> bool:
        return len(self.windows) < self.n_windows

    def summary(self) -> str:
        """What the navigator lists, in words."""
        regions = f"{self.n_windows:,} region{'s' if self.n_windows != 1 else ''}"
        text = (f"{self.n_points:,} selected position{'s' if self.n_points != 1 else ''} in "
                f"{regions} (±{SELECTION_PAD // 1000} kb of context)")
        if self.sampled:
            text += (f"; the list shows {len(self.windows):,} of the {self.n_windows:,} regions, "
                     "evenly spaced along the genome")
        return text


def selection_windows(ws: Workspace, sel_id: str) -> SelectionWindows:
    """The regions of a saved genome selection that the navigator steps through.

    Selected intervals (overlapping points merged) closer than twice ``SELECTION_PAD`` share a
    window, up to ``SELECTION_WINDOW_BP`` wide; each window adds ``SELECTION_PAD`` bp either
    side, is clipped to its region of the store and does not overlap the next, so "next"
    always moves to positions not yet in view.
    """
    sel = genome_selection(ws, sel_id)
    regions = ws.store.regions
    iv = selection_intervals(regions, sel["ids"], sel["n_bins"])
    n_points = len(set(sel["ids"]))
    if iv.empty:
        return SelectionWindows([], 0, n_points)
    table = regions.intervals
    region = np.searchsorted(table["offset"].to_numpy(), iv["first_bin"].to_numpy(),
                             side="right") - 1
    lo = table["first_bin_start"].to_numpy(np.int64)[region]
    hi = lo + table["n_bins"].to_numpy(np.int64)[region] * regions.bin_size
    starts, ends = iv["start"].to_numpy(np.int64), iv["end"].to_numpy(np.int64)
    # A new window where the region changes or the gap leaves the context windows apart ...
    new = np.ones(len(iv), dtype=bool)
    new[1:] = (region[1:] != region[:-1]) | (starts[1:] - ends[:-1] > 2 * SELECTION_PAD)
    first = np.maximum.accumulate(np.where(new, np.arange(len(iv)), 0))
    # ... or where a run of close positions passes the widest window.
    piece = (starts - starts[first]) // (SELECTION_WINDOW_BP - 2 * SELECTION_PAD)
    new[1:] |= piece[1:] != piece[:-1]
    heads = np.flatnonzero(new)
    first_start, last_end = starts[heads], np.maximum.reduceat(ends, heads)
    w_start = np.maximum(first_start - SELECTION_PAD, lo[heads])
    w_end = np.minimum(last_end + SELECTION_PAD, hi[heads])
    # Windows of one run of close positions meet halfway between their positions.
    same = np.flatnonzero(region[heads][1:] == region[heads][:-1]) + 1
    middle = (last_end[same - 1] + first_start[same]) // 2
    w_end[same - 1] = np.minimum(w_end[same - 1], middle)
    w_start[same] = np.maximum(w_start[same], middle)
    w_end = np.minimum(w_end, w_start + MAX_WINDOW_BP)
    n_windows = len(heads)
    shown = np.arange(n_windows)
    if n_windows > MAX_SELECTION_WINDOWS:
        shown = np.unique(np.linspace(0, n_windows - 1, MAX_SELECTION_WINDOWS).round()
                          .astype(np.int64))
    chroms = iv["chrom"].to_numpy()[heads]
    windows = [format_locus(str(chroms[i]), int(w_start[i]), int(w_end[i])) for i in shown]
    return SelectionWindows(windows, n_windows, n_points)


def selection_marks(ws: Workspace, sel_id: str | None, chrom: str, start: int, end: int
                    ) -> pd.DataFrame | None:
    """The intervals of a saved genome selection within a window (None without one)."""
    if not sel_id:
        return None
    sel = genome_selection(ws, sel_id)
    iv = selection_intervals(ws.store.regions, sel["ids"], sel["n_bins"])
    inside = (iv["chrom"].astype(str) == chrom) & (iv["end"] > start) & (iv["start"] < end)
    return iv.loc[inside, ["start", "end"]].reset_index(drop=True)


def parse_tracks(text: str | None, ws: Workspace) -> list[tuple[str, str]]:
    """``"E003|H3K4me3,E017|H3K4me3"`` -> experiments known to the workspace (unknown dropped)."""
    bios, assays = set(ws.biosamples), set(ws.assays)
    out = []
    for item in split_list(text):
        parts = item.split("|")
        if len(parts) == 2 and parts[0] in bios and parts[1] in assays:
            out.append((parts[0], parts[1]))
    return list(dict.fromkeys(out))


def default_tracks(ws: Workspace) -> list[tuple[str, str]]:
    """Up to ten experiments: the observed assays (up to five) of the two best-covered
    biosamples, with their imputations."""
    status = ws.status()
    observed = status == "observed"
    best = observed.sum(axis=1).sort_values(ascending=False, kind="stable").index[:2]
    out = []
    for b in best:
        assays = [a for a in status.columns if observed.loc[b, a]][:5] or list(status.columns[:5])
        out += [(str(b), str(a)) for a in assays]
    return out


def biosample_tracks(ws: Workspace, biosamples: list[str]) -> list[tuple[str, str]]:
    """Tracks of a group of biosamples (a lasso on the map), grouped by assay: the assays most
    of them measured (one, or up to :data:`MAX_LASSO_ASSAYS` while they fit in
    :data:`MAX_TRACKS`), for every biosample (imputed where it was not measured)."""
    status = ws.status()
    bios = [b for b in dict.fromkeys(map(str, biosamples)) if b in status.index]
    if not bios:
        return []
    measured = status.loc[bios].isin(["observed", "held out"]).sum(axis=0)
    n_assays = int(np.clip(MAX_TRACKS // len(bios), 1, MAX_LASSO_ASSAYS))
    top = measured.sort_values(ascending=False, kind="stable").index[:n_assays]
    return [(b, str(a)) for a in top for b in bios][:MAX_TRACKS]


def default_locus(ws: Workspace) -> str:
    """A 100 kb window: chr1:151.2-151.3 Mb when the store covers it, else a region's start."""
    regions = ws.store.regions
    try:
        return format_locus(*snap_window(ws, "chr1", 151_200_000, 151_300_000)[:3])
    except (ValueError, KeyError):
        row = regions.intervals.iloc[0]
        start = int(row["first_bin_start"])
        end = start + min(int(row["n_bins"]) * regions.bin_size, 100_000)
        return format_locus(str(row["chrom"]), start, end)


def window_agreement(observed: np.ndarray | None, imputed: np.ndarray | None) -> dict:
    """MSE and Pearson r of imputed versus observed over the window ({} when one is absent)."""
    if observed is None or imputed is None:
        return {}
    return {"mse": metrics.mse(observed, imputed), "pearson": metrics.pearson(observed, imputed)}


def locus_tracks(ws: Workspace, b0: int, b1: int, experiments: list[tuple[str, str]]
                 ) -> list[Track]:
    """Observed / imputed values, band and agreement of each experiment over bins [b0, b1).

    Imputed values (and the band) below 0 are clipped to 0 everywhere in the app, in the
    plot, the exports and the per-window scores alike: the signal (arcsinh of a -log10
    p-value) is never negative.
    """
    if not experiments:
        raise ValueError("no experiment selected: click cells of the track picker to show tracks")
    if len(experiments) > MAX_TRACKS:
        raise ValueError(f"{len(experiments)} tracks selected; at most {MAX_TRACKS} can be drawn "
                         "at once")
    values = ws.windows(experiments, b0, b1)  # one store read per kind, one model call
    names = names_of(ws.store.biosamples, [b for b, _ in experiments])
    tracks = []
    for (b, a), (obs, imp) in zip(experiments, values):
        imp = None if imp is None else np.maximum(imp, 0.0)
        band = ws.band(b, a, b0, b1) if imp is not None else None
        low, high, calibrated = ((np.maximum(band[0], 0.0), np.maximum(band[1], 0.0), band[2])
                                 if band is not None else (None, None, False))
        tracks.append(Track(b, a, obs, imp, window_agreement(obs, imp), ws.trained_on(b, a),
                            low, high, calibrated, name=names.iloc[len(tracks)]))
    return tracks


def locus_view(ws: Workspace, locus: str, experiments: list[tuple[str, str]],
               width_px: int = SCREEN_POINTS, selection: str | None = None,
               height: str = "normal", order: str = "chosen", scale: str = "assay",
               heights: dict[str, str] | None = None):
    """Everything the page draws for a locus: figure, tracks, snapped window.

    No experiment draws the genes alone (the figure says that no track is chosen), so that
    the plot always shows what the picker and the address say. ``selection``: a saved
    genome selection whose positions are marked. ``height``: a key of
    :data:`~dashboard.track_heights.TRACK_HEIGHTS`, and ``heights`` the tracks' own
    (``{"B|A": height}``); ``order``: of :data:`TRACK_ORDERS` (:func:`arrange`); ``scale``:
    the y-ranges, shared per assay or per track (``y_scale`` of the figure).

    Returns
    -------
    figure, tracks, (chrom, start, end)
    """
    chrom, start, end, b0, b1 = snap_window(ws, *resolve_locus(ws, locus))
    experiments = arrange(experiments, order)
    pixels = row_heights([f"{b}|{a}" for b, a in experiments], height, heights)
    tracks = locus_tracks(ws, b0, b1, experiments) if experiments else []
    genes = exons = None
    if ws.annotations is not None:
        genes = ws.annotations.genes_in(chrom, start, end)
        exons = ws.annotations.exons_in(chrom, start, end)
    fig = locus_figure(chrom, start, end, ws.store.regions.bin_size, tracks, genes, exons,
                       width_px=width_px, track_height=pixels,
                       marks=selection_marks(ws, selection, chrom, start, end), y_scale=scale)
    return fig, tracks, (chrom, start, end)


def page_url(current: dict | None, chosen: list | None, selection: str | None,
             height: str = "normal", order: str = "chosen", scale: str = "assay",
             heights: dict[str, str] | None = None) -> dict:
    """The locus page's address for a drawn window, chosen tracks, saved selection and the
    tracks' height (and the chosen tracks' own), order and y scale (where they are not the
    defaults)."""
    keys = [f"{b}|{a}" for b, a in (chosen or [])]
    params = {"tracks": keys, "selection": selection,
              "height": None if height == "normal" else height,
              "heights": format_heights(heights, keys),
              "order": None if order == "chosen" else order,
              "scale": None if scale == "assay" else scale}
    if current:
        params = {"locus": format_locus(current["chrom"], current["start"], current["end"]),
                  **params}
    # "tracks=" with none chosen: without it, the address would mean the default tracks.
    return {"path": "/locus", "query": query_string(params, keep_empty=("tracks",))}


#: The metrics table's columns.
METRICS_COLUMNS = ("Biosample", "Assay", "Shown", "MSE (window)", "Pearson r (window)")


def metrics_table(tracks: list[Track]) -> str:
    """The metrics table as HTML: per track, the experiment, what is shown (held out or
    training fit), MSE and Pearson r over the window.

    One HTML text for one ``dcc.Markdown`` rather than a Dash component per cell: with 40
    tracks, the 240 components cost the browser about as much as drawing the tracks' plot.
    """
    rows = []
    for t in tracks:
        mse, r = t.metrics.get("mse"), t.metrics.get("pearson")
        status = "status-" + t.status.replace(" ", "-").replace("+", "and")
        rows.append(
            f"<tr><td>{escape(t.biosample_label)}</td><td>{escape(t.assay)}</td>"
            f'<td class="{status}">{t.status}</td>'
            f'<td class="num">{"—" if mse is None else f"{mse:.3f}"}</td>'
            f'<td class="num">{"—" if r is None or not np.isfinite(r) else f"{r:.2f}"}</td></tr>')
    head = "".join(f"<th>{c}</th>" for c in METRICS_COLUMNS)
    return (f'<table class="data-table metrics-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


#: The plot's controls: a scroll zooms (the x-axis only: the figure fixes the y-axes), a drag
#: pans (the figure's dragmode) and the modebar keeps the box zoom.
GRAPH_CONFIG = {"displaylogo": False, "scrollZoom": True,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
                "toImageButtonOptions": {"format": "png", "filename": "avocado-locus",
                                         "scale": 2}}


METRICS_NOTE = ("held out: the models never trained on this track, so MSE and r are real "
                "imputation quality. training fit: they trained on it, so the numbers only say "
                "how well they fit it. Imputed values below 0 are shown, exported and scored "
                "as 0.")


def drag_range(relayout: dict | None) -> tuple[int, int] | None:
    """The x-range a user panned, scrolled or box-zoomed to on any row, or None for other
    relayouts (a resize, a legend click).

    Plotly reports the new range as ``xaxis.range[0]`` / ``xaxis.range[1]`` (a drag, a scroll)
    or as ``xaxis.range: [x0, x1]``; ``xaxis2`` ... on other rows. A range that starts left of
    the chromosome keeps its span, moved to start at 0.
    """
    ends: dict[int, object] = {}
    for k, v in (relayout or {}).items():
        match = re.fullmatch(r"xaxis\d*\.range(?:\[([01])\])?", k)
        if match and match[1]:
            ends[int(match[1])] = v
        elif match and isinstance(v, (list, tuple)) and len(v) == 2:
            ends = dict(enumerate(v))
    if set(ends) != {0, 1}:
        return None
    x0, x1 = sorted((float(ends[0]), float(ends[1])))
    shift = max(-x0, 0.0)
    return int(x0 + shift), max(int(x1 + shift), int(x0 + shift) + 1)


def gene_from_click(click: dict | None) -> str | None:
    """The gene name in a click on the gene track (None for clicks elsewhere)."""
    if not click or not click.get("points"):
        return None
    point = click["points"][0]
    name = point.get("customdata")
    if isinstance(name, str) and name:
        return name
    return None


# ---------------------------------------------------------------------- layout
def layout(locus: str | None = None, tracks: str | None = None, selection: str | None = None,
           biosamples: str | None = None, height: str | None = None, order: str | None = None,
           scale: str | None = None, heights: str | None = None, **_ignored) -> html.Div:
    """The page; its locus, tracks, a saved genome selection, biosamples to pick among (sent
    by a lasso on the biosample map: their tracks by default) and the tracks' height (and
    their own), order and y scale come from the URL."""
    ws = current_workspace()
    group = [b for b in dict.fromkeys(split_list(biosamples)) if b in set(ws.biosamples)]
    chosen = (parse_tracks(tracks, ws) if tracks is not None
              else biosample_tracks(ws, group) if group else default_tracks(ws))
    nav, problem = SelectionWindows([], 0, 0), None
    if selection:
        try:
            nav = selection_windows(ws, selection)
        except (ValueError, KeyError) as exc:
            problem, selection = error_message(exc), None
    windows = nav.windows
    locus = locus or (windows[0] if windows else default_locus(ws))
    navigator = html.Div(
        [
            html.Button("◀", id="locus-sel-prev", className="button icon",
                        title="previous selected region"),
            dcc.Dropdown(id="locus-sel-region", options=windows,
                         value=locus if locus in windows else None, clearable=False,
                         placeholder="selected regions", className="selection-dropdown"),
            html.Button("▶", id="locus-sel-next", className="button icon",
                        title="next selected region"),
            html.Span(nav.summary(), className="field-hint", id="locus-sel-count"),
        ],
        className="selection-nav", hidden=not windows, id="locus-sel-nav",
    )
    toolbar = html.Div(
        [
            dcc.Input(id="locus-input", type="text", value=locus, debounce=False,
                      placeholder="chr1:151,200,000-151,300,000 or a gene name",
                      className="locus-input", spellCheck=False),
            html.Button("Go", id="locus-go", className="button primary"),
            html.Div(
                [
                    html.Button("◀", id="locus-left", className="button icon", title="pan left"),
                    html.Button("−", id="locus-out", className="button icon", title="zoom out"),
                    html.Button("+", id="locus-in", className="button icon", title="zoom in"),
                    html.Button("▶", id="locus-right", className="button icon", title="pan right"),
                ],
                className="button-group",
            ),
            html.Div(id="locus-span", className="span-text"),
            html.Div(
                [
                    html.Button("PNG", id="locus-png", className="button",
                                title="download the view as PNG"),
                    html.Div(dcc.RadioItems(id="locus-units",
                                            options=options(EXPORT_UNITS, UNIT_LABELS),
                                            value="arcsinh", inline=True,
                                            className="radio-inline"),
                             title="units of the bedGraph and CSV downloads: the stored "
                                   "arcsinh(-log10 p) or the -log10 p-value signal"),
                    html.Button("bedGraph", id="locus-bedgraph", className="button",
                                title="download the values of the window as one multi-track "
                                      "bedGraph"),
                    html.Button("bedGraph per track", id="locus-bedgraph-zip",
                                className="button",
                                title="download a zip of one bedGraph per series of the window"),
                    html.Button("CSV", id="locus-csv", className="button",
                                title="download the values of the window as CSV"),
                ],
                className="button-group export",
            ),
        ],
        className="toolbar",
    )
    order = order if order in TRACK_ORDERS else "chosen"
    height = height if height in PAGE_HEIGHTS else "normal"
    own = parse_heights(split_list(heights), [f"{b}|{a}" for b, a in chosen])
    listed, finder, matrix = picker_layout(ws, chosen, group)
    picker = html.Aside([*listed, order_panel(ws, chosen, order, own, height), *finder],
                        className="side-panel picker-panel")
    view = html.Div(
        [html.Span("Track height", className="field-hint"),
         dcc.RadioItems(id="locus-height", options=options(PAGE_HEIGHTS), value=height,
                        inline=True, className="radio-inline"),
         html.Span("Order", className="field-hint"),
         dcc.RadioItems(id="locus-order", options=options(TRACK_ORDERS, TRACK_ORDERS),
                        value=order, inline=True,
                        className="radio-inline"),
         html.Span("Y scale", className="field-hint",
                   title="one y-range for the tracks of an assay, so their heights compare, "
                         "or each track's own, so weak tracks stay readable"),
         dcc.RadioItems(id="locus-scale", options=options(Y_SCALES, SCALE_LABELS),
                        value=scale if scale in Y_SCALES else "assay", inline=True,
                        className="radio-inline")],
        className="view-row",
    )
    main = html.Section(
        [
            toolbar,
            navigator,
            # What was wrong with the address (e.g. a damaged saved selection): apart from
            # the alerts of the callbacks, which a successful draw clears.
            html.Div(alert(problem) if problem else None, id="locus-url-alert"),
            html.Div(id="locus-alert"),
            matrix,
            view,
            dcc.Loading(dcc.Graph(id="locus-graph", className="locus-graph",
                                  config=GRAPH_CONFIG), type="dot", delay_show=400),
            dcc.Markdown(metrics_table([]), id="locus-metrics", dangerously_allow_html=True),
            html.Div(METRICS_NOTE, className="field-hint metrics-note"),
            dcc.Download(id="locus-download"),
        ],
        className="main-panel",
    )
    return html.Div(
        [
            picker, main,
            dcc.Store(id="locus-tracks", data=[list(e) for e in chosen]),
            dcc.Store(id="locus-selection", data=selection),
            dcc.Store(id="locus-current"),
            dcc.Store(id="locus-gene-click"),
            dcc.Store(id="locus-drag"),
            dcc.Store(id="locus-url"),
            html.Div(id="locus-url-sink", hidden=True),
            html.Div(id="locus-png-sink", hidden=True),
        ],
        className="page-grid",
    )


# ---------------------------------------------------------------------- callbacks
def register_callbacks(app, ws: Workspace) -> None:
    """Callbacks of the page, bound to ``app`` and its workspace."""

    register_picker_callbacks(app, ws)
    register_order_callbacks(app, ws)

    @app.callback(
        Output("locus-graph", "figure"),
        Output("locus-current", "data"),
        Output("locus-input", "value"),
        Output("locus-span", "children"),
        Output("locus-metrics", "children"),
        Output("locus-url", "data"),
        Output("locus-alert", "children"),
        Input("locus-go", "n_clicks"),
        Input("locus-input", "n_submit"),
        Input("locus-in", "n_clicks"),
        Input("locus-out", "n_clicks"),
        Input("locus-left", "n_clicks"),
        Input("locus-right", "n_clicks"),
        Input("locus-gene-click", "data"),
        Input("locus-drag", "data"),
        Input("locus-tracks", "data"),
        Input("locus-sel-region", "value"),
        Input("locus-height", "value"),
        Input("locus-order", "value"),
        Input("locus-scale", "value"),
        Input("locus-heights", "data"),
        State("locus-input", "value"),
        State("locus-current", "data"),
        State("locus-selection", "data"),
    )
    @guarded(7)
    def draw(_go, _submit, _in, _out, _left, _right, gene, dragged, chosen, region, height,
             order, scale, own, text, current, selection):
        trigger = ctx.triggered_id
        locus = text
        if trigger in ("locus-in", "locus-out", "locus-left", "locus-right") and current:
            c, s, e = current["chrom"], current["start"], current["end"]
            moved = {"locus-in": lambda: zoom(c, s, e, ZOOM_FACTOR),
                     "locus-out": lambda: zoom(c, s, e, 1 / ZOOM_FACTOR),
                     "locus-left": lambda: pan(c, s, e, -0.5),
                     "locus-right": lambda: pan(c, s, e, 0.5)}[trigger]()
            locus = format_locus(*keep_in_region(ws, *moved, current))
        elif trigger == "locus-gene-click" and gene:
            locus = gene
        elif trigger == "locus-drag" and dragged and current:
            # A pan past the region's edge slides back inside, keeping its span; a scroll out
            # past the widest window gets the page's alert (snap_window), not a cut window.
            moved = (current["chrom"], *dragged)
            if dragged[1] - dragged[0] <= MAX_WINDOW_BP:
                moved = keep_in_region(ws, *moved, current)
            locus = format_locus(*moved)
        elif trigger == "locus-sel-region" and region:
            locus = region
        experiments = [tuple(e) for e in (chosen or [])]
        height, order, scale = height or "normal", order or "chosen", scale or "assay"
        fig, tracks, window = locus_view(ws, locus, experiments, selection=selection,
                                         height=height, order=order, scale=scale, heights=own)
        chrom, start, end = window
        shown = format_locus(chrom, start, end)
        span = [html.B(format_span(end - start)), f" · {shown} · {len(tracks)} tracks · "
                f"{(end - start) // ws.store.regions.bin_size:,} bins of "
                f"{ws.store.regions.bin_size} bp"]
        drawn = {"chrom": chrom, "start": start, "end": end}
        # The address bar follows in the same response (not a second request after the draw).
        return (fig, drawn, shown, span, metrics_table(tracks),
                page_url(drawn, experiments, selection, height, order, scale, own), None)

    # Graph events go through stores so that a resize (relayoutData {"autosize": true}) or a
    # click on a track never re-runs (and so cancels) a draw that is in flight.
    @app.callback(Output("locus-gene-click", "data"), Input("locus-graph", "clickData"),
                  prevent_initial_call=True)
    def gene_clicked(click):
        gene = gene_from_click(click)
        if gene is None:
            raise PreventUpdate
        return gene

    @app.callback(Output("locus-drag", "data"), Input("locus-graph", "relayoutData"),
                  prevent_initial_call=True)
    def dragged(relayout):
        x = drag_range(relayout)
        if x is None:
            raise PreventUpdate
        return list(x)

    # Tracks chosen while no window can be drawn (e.g. none) still reach the address bar.
    @app.callback(
        Output("locus-url", "data", allow_duplicate=True),
        Input("locus-tracks", "data"),
        State("locus-current", "data"),
        State("locus-selection", "data"),
        State("locus-height", "value"),
        State("locus-order", "value"),
        State("locus-scale", "value"),
        State("locus-heights", "data"),
        prevent_initial_call=True,
    )
    def url_state(chosen, current, selection, height, order, scale, own):
        return page_url(current, chosen, selection, height or "normal", order or "chosen",
                        scale or "assay", own)

    @app.callback(
        Output("locus-sel-region", "value"),
        Input("locus-sel-prev", "n_clicks"),
        Input("locus-sel-next", "n_clicks"),
        State("locus-sel-region", "value"),
        State("locus-sel-region", "options"),
        prevent_initial_call=True,
    )
    def step_selection(_prev, _next, value, windows):
        if not windows:
            raise PreventUpdate
        values = [w["value"] if isinstance(w, dict) else w for w in windows]
        i = values.index(value) if value in values else -1
        step = -1 if ctx.triggered_id == "locus-sel-prev" else 1
        return values[min(max(i + step, 0), len(values) - 1)]

    url_sync(app, "locus-url", "locus-url-sink")

    @app.callback(
        Output("locus-download", "data"),
        Output("locus-alert", "children", allow_duplicate=True),
        Input("locus-bedgraph", "n_clicks"),
        Input("locus-bedgraph-zip", "n_clicks"),
        Input("locus-csv", "n_clicks"),
        State("locus-current", "data"),
        State("locus-tracks", "data"),
        State("locus-units", "value"),
        prevent_initial_call=True,
    )
    @guarded(2)
    def export(_bg, _zip, _csv, current, chosen, units):
        if not current:
            raise ValueError("nothing to export yet: choose a locus first")
        chrom, start, end, b0, b1 = snap_window(ws, current["chrom"], current["start"],
                                                current["end"])
        tracks = locus_tracks(ws, b0, b1, [tuple(e) for e in (chosen or [])])
        name = f"avocado_{chrom}_{start}_{end}"
        units = units or "arcsinh"
        window = (chrom, start, ws.store.regions.bin_size, tracks, units)
        if ctx.triggered_id == "locus-csv":  # (a plain CSV header: the file name says the units)
            return dict(content=csv_text(*window), filename=f"{name}.{units}.csv"), None
        if ctx.triggered_id == "locus-bedgraph-zip":
            return dcc.send_bytes(bedgraph_zip(*window), f"{name}.bedGraph.zip"), None
        return dict(content=bedgraph_text(*window), filename=f"{name}.bedGraph"), None

    app.clientside_callback(
        """
        function(n, current) {
            if (!n) { return window.dash_clientside.no_update; }
            const gd = document.querySelector('#locus-graph .js-plotly-plot');
            if (!gd) { return 'no plot'; }
            let name = 'avocado-locus';
            if (current) { name = `avocado_${current.chrom}_${current.start}_${current.end}`; }
            window.Plotly.downloadImage(gd, {format: 'png', filename: name, scale: 2,
                                             width: gd.offsetWidth, height: gd.offsetHeight});
            return name + '.png';
        }
        """,
        Output("locus-png-sink", "children"),
        Input("locus-png", "n_clicks"),
        State("locus-current", "data"),
        prevent_initial_call=True,
    )
