"""The locus page's track list: the drawn tracks top to bottom, each with buttons that move it
to the top, up or down a row, change its height, or remove it.

A move reorders the chosen tracks (the address's ``tracks=``) and sets the page's order to "as
chosen", so what the list shows stays what is drawn; the plot is then drawn anew in that
order. A removal goes through the chosen-tracks list, as a chip's removal does. A height
button cycles the track's own height (the address's ``heights=``). The logic is
:mod:`dashboard.track_order` and :mod:`dashboard.track_heights`.
"""

from __future__ import annotations

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from avocado_core.workspace import Workspace

from ..figures.tracks import assay_colors
from ..names import SEPARATOR, labels_of, short_assay_labels
from ..track_heights import cycle_height, next_height
from ..track_order import MOVES, arrange, move_track

__all__ = ["order_panel", "order_rows", "register_order_callbacks", "BUTTONS"]

#: A row's buttons: the moves of :data:`~dashboard.track_order.MOVES`, and a removal.
BUTTONS = {**MOVES, "remove": ("✕", "remove {}")}
#: The pattern of the list's buttons' ids; "track" is the experiment as ``"B|A"``.
BUTTON = "locus-order-button"
#: The pattern of the height buttons' ids (``{"type": HEIGHT_BUTTON, "track": "B|A"}``).
HEIGHT_BUTTON = "locus-height-button"


def _key(track) -> str:
    return f"{track[0]}|{track[1]}"


def order_rows(ws: Workspace, drawn: list[tuple[str, str]], focus: dict | None = None,
               own: dict[str, str] | None = None, page: str = "normal") -> list[html.Li]:
    """One row per drawn track, top to bottom: its place, its assay's colour, the assay's short
    name and the biosample's id and name (the full label on hover), its own height where it
    has one (``own``, by ``"B|A"``; the others are the ``page``'s), and its buttons.

    ``focus``: the button (``{"track": "B|A", "where": ...}``, "where" "height" for the height
    button) that takes the keyboard's focus as the list is drawn: the one just pressed, on its
    track's new row, so that a key held on "up" moves the same track on.
    """
    bios = labels_of(ws.store.biosamples, dict.fromkeys(b for b, _ in drawn)).to_dict()
    assays = short_assay_labels(ws.store.assays, dict.fromkeys(a for _, a in drawn)).to_dict()
    colors = assay_colors([a for _, a in drawn])
    rows = []
    focus, own = focus or {}, own or {}
    for i, (b, a) in enumerate(drawn):
        # the buttons name the track shortly (40 rows of 4 buttons), the row's hover in full
        label, track = f"{assays[a]} of {bios[b]}", _key((b, a))
        at_end = {"top": i == 0, "up": i == 0, "down": i == len(drawn) - 1, "remove": False}
        buttons = [
            html.Button(symbol, id={"type": BUTTON, "track": track, "where": where},
                        className="button order-button", title=words.format(label),
                        autoFocus=focus == {"track": track, "where": where},
                        # not `disabled`: a track moved to the top keeps the focus
                        **{"aria-label": words.format(label),
                           "aria-disabled": "true" if at_end[where] else "false"})
            for where, (symbol, words) in BUTTONS.items()
        ]
        height = own.get(track, page)
        words = f"{label}: {height}; make it {next_height(height)}"
        buttons.insert(3, html.Button(
            "↕", id={"type": HEIGHT_BUTTON, "track": track}, className="button order-button",
            title=words, autoFocus=focus == {"track": track, "where": "height"},
            **{"aria-label": words}))
        rows.append(html.Li(
            [html.Span(f"{i + 1}", className="order-place"),
             html.I(className="swatch", style={"background": colors[a]}),
             # the short assay first: it stays whole where a long biosample name is cut
             html.Span([html.B(assays[a], className="order-assay"), " ",
                        html.Span(bios[b], className="order-biosample")],
                       className="order-name", title=f"{bios[b]}{SEPARATOR}{a}"),
             # a track's own height, at rest too
             html.Span(height, className="order-height") if track in own else None,
             html.Span(buttons, className="order-buttons")],
            id={"type": "locus-order-row", "track": _key((b, a))}, className="order-row"))
    return rows


def order_panel(ws: Workspace, chosen: list[tuple[str, str]], order: str,
                own: dict[str, str], page: str) -> html.Div:
    """The list under its title, for the side panel."""
    return html.Div(
        [html.H3("Drawn order", className="field-label"),
         html.Ol(order_rows(ws, arrange(chosen, order), own=own, page=page),
                 id="locus-order-list", className="order-list",
                 **{"aria-label": "drawn tracks, top to bottom"}),
         html.Div("Top to bottom as drawn. A move sets the order to “as chosen”; ↕ cycles a "
                  "track's height (a strip, compact, normal, tall).", className="field-hint"),
         dcc.Store(id="locus-order-focus"),
         dcc.Store(id="locus-heights", data=own)],
        className="field order-panel")


def _pressed() -> dict:
    """The id of the list's button that fired the callback; none (PreventUpdate) when a list
    drawn anew fired it with its buttons unclicked."""
    button = ctx.triggered_id
    if not button or not ctx.triggered[0]["value"]:
        raise PreventUpdate
    return button


def register_order_callbacks(app, ws: Workspace) -> None:
    """The track list's callbacks, bound to ``app`` and its workspace."""

    @app.callback(
        Output("locus-tracks", "data", allow_duplicate=True),
        Output("locus-chosen", "value", allow_duplicate=True),
        Output("locus-order", "value"),
        Output("locus-order-focus", "data"),
        Input({"type": BUTTON, "track": ALL, "where": ALL}, "n_clicks"),
        State("locus-tracks", "data"),
        State("locus-order", "value"),
        prevent_initial_call=True,
    )
    def move(_clicks, chosen, order):
        button = _pressed()
        chosen = [tuple(e) for e in (chosen or [])]
        drawn = [_key(e) for e in arrange(chosen, order or "chosen")]
        track, where = button["track"], button["where"]
        if track not in drawn:  # a click on a list that was already out of date
            raise PreventUpdate
        if where == "remove":
            # As the chosen-tracks list removes a chip (picker, count and tracks follow); the
            # chosen order stays, and the focus goes to the next row's removal.
            i = drawn.index(track)
            rest = drawn[:i] + drawn[i + 1:]
            focus = {"track": rest[min(i, len(rest) - 1)], "where": "remove"} if rest else None
            return no_update, [_key(e) for e in chosen if _key(e) != track], no_update, focus
        moved = move_track(drawn, drawn.index(track), where)
        if moved == drawn:
            raise PreventUpdate
        return [k.split("|", 1) for k in moved], moved, "chosen", {"track": track,
                                                                   "where": where}

    @app.callback(
        Output("locus-heights", "data"),
        Output("locus-order-focus", "data", allow_duplicate=True),
        Input({"type": HEIGHT_BUTTON, "track": ALL}, "n_clicks"),
        State("locus-heights", "data"),
        State("locus-height", "value"),
        prevent_initial_call=True,
    )
    def resize(_clicks, own, page):
        track = _pressed()["track"]
        return cycle_height(own or {}, track, page or "normal"), {"track": track,
                                                                  "where": "height"}

    @app.callback(
        Output("locus-order-list", "children"),
        Output("locus-order-focus", "data", allow_duplicate=True),
        Input("locus-tracks", "data"),
        Input("locus-order", "value"),
        Input("locus-heights", "data"),
        Input("locus-height", "value"),
        State("locus-order-focus", "data"),
        prevent_initial_call=True,
    )
    def show(chosen, order, own, page, focus):
        # the focus goes to the button once: a later list (a track picked) leaves it be
        return (order_rows(ws, arrange([tuple(e) for e in (chosen or [])], order or "chosen"),
                           focus, own, page or "normal"), None)
