"""Small layout pieces shared by the pages: alerts, labelled controls, the workspace lookup."""

from __future__ import annotations

import functools
import logging
import urllib.parse
from collections.abc import Callable, Iterable

import numpy as np
from dash import Input, Output, html, no_update

from avocado_core.errors import shorten
from avocado_core.saved_selections import load_selection

log = logging.getLogger("dashboard")

# The errors a user can cause (bad locus, unknown gene, ...): shown as an alert, not logged
# as a crash. avocado_core raises ValueError / KeyError subclasses for all of them.
USER_ERRORS = (ValueError, KeyError)


def current_workspace():
    """The workspace of the app serving the current request (page layouts use it)."""
    import flask

    return flask.current_app.config["AVOCADO_WORKSPACE"]


def genome_selection(ws, sel_id: str) -> dict:
    """A saved selection of genome positions, checked against the workspace's store (a
    damaged file, another axis or positions outside the store raise a ``ValueError`` naming
    the selection)."""
    return load_selection(ws.path, sel_id, axis="genome", n_positions=ws.store.n_bins)


#: Longest message an alert shows. Messages echo what a user typed through
#: :func:`avocado_core.errors.shorten`; this also bounds any message that did not.
MAX_MESSAGE_CHARS = 400


def alert(message: str, kind: str = "error") -> html.Div:
    """A visible message box (role="alert"); kind is "error", "warning" or "info"."""
    return html.Div(shorten(message, MAX_MESSAGE_CHARS, quote=False), role="alert",
                    className=f"alert alert-{kind}")


def error_message(exc: BaseException) -> str:
    """The one-line text of an error for an alert (KeyError's repr quotes are dropped)."""
    if isinstance(exc, KeyError) and exc.args and type(exc) is KeyError:
        return f"unknown name: {shorten(exc.args[0], MAX_MESSAGE_CHARS, quote=False)}"
    return str(exc) or type(exc).__name__


def significant(values, digits: int = 3) -> np.ndarray:
    """Numbers rounded to ``digits`` significant digits, as float64 (for tables people read:
    0.487, not 0.4869999885559082, a float32's 0.487 written out in full)."""
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x) & (x != 0)
    magnitude = np.floor(np.log10(np.abs(x, where=finite, out=np.ones_like(x))))
    scale = 10.0 ** (digits - 1 - magnitude)
    return np.where(finite, np.round(x * scale) / scale, x)


def guarded(n_outputs: int, alert_index: int | None = None) -> Callable:
    """Decorate a callback so that user errors become an alert instead of a traceback.

    The decorated callback returns its outputs normally (with the alert output set to None by
    the callback itself). When it raises a ``ValueError`` / ``KeyError``, every output is left
    unchanged except the alert output (``alert_index``, default the last), which shows the
    message. Other exceptions propagate to the app's ``on_error`` handler.
    """
    idx = n_outputs - 1 if alert_index is None else alert_index

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except USER_ERRORS as exc:
                out = [no_update] * n_outputs
                out[idx] = alert(error_message(exc))
                return tuple(out) if n_outputs > 1 else out[0]

        return inner

    return wrap


def field(label: str, control, hint: str | None = None, **kw) -> html.Div:
    """A labelled control for the side panels."""
    children = [html.Label(label, className="field-label"), control]
    if hint:
        children.append(html.Div(hint, className="field-hint"))
    return html.Div(children, className="field", **kw)


def options(values: Iterable, labels: dict | None = None) -> list[dict]:
    """Dropdown options from values (labels optional)."""
    labels = labels or {}
    return [{"label": str(labels.get(v, v)), "value": v} for v in values]


def split_list(text: str | None, sep: str = ",") -> list[str]:
    """A URL list parameter ("a,b,c") as a list; empty for None or ""."""
    if not text:
        return []
    return [s for s in (p.strip() for p in urllib.parse.unquote(str(text)).split(sep)) if s]


def query_string(params: dict, keep_empty: tuple[str, ...] = ()) -> str:
    """``?key=value&...`` of the non-empty parameters (lists joined by commas); those named in
    ``keep_empty`` stay as ``key=`` when empty (an empty choice, not the page's default)."""
    clean = {}
    for k, v in params.items():
        if v is None or ((v == "" or v == []) and k not in keep_empty):
            continue
        clean[k] = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return "?" + urllib.parse.urlencode(clean, safe=",|:") if clean else ""


URL_SYNC_JS = """
function(state) {
    if (!state || !state.path) { return window.dash_clientside.no_update; }
    const url = state.path + (state.query || '');
    if (window.location.pathname + window.location.search !== url) {
        window.history.replaceState(window.history.state, '', url);
    }
    return url;
}
"""


def job_controls(label: str, run: str, cancel: str, progress: str, steps: int,
                 status: str | None = None) -> html.Div:
    """The row that starts a background job: the ``run`` button (``label``), a ``cancel``
    button, a ``progress`` bar of ``steps`` steps and, given its id, a ``status`` line (the
    elements that :func:`background_job` drives)."""
    children = [
        html.Button(label, id=run, className="button primary"),
        html.Button("Cancel", id=cancel, className="button", disabled=True),
        html.Progress(id=progress, value="0", max=str(steps)),
    ]
    if status is not None:
        children.append(html.Span(id=status, className="field-hint"))
    return html.Div(children, className="run-row")


def background_job(run: str, cancel: str, progress: str,
                   status: tuple[str, str] | None = None) -> dict:
    """Keyword arguments of ``app.callback`` for a cancellable job run in the background (the
    controls of :func:`job_controls`).

    While it works the ``run`` button is disabled and the ``cancel`` button enabled (a click
    on it stops the job), and ``status``, an ``(element id, text)`` pair, shows the text; the
    job reports ``set_progress((value, max))`` to the ``progress`` bar. It never runs when the
    page loads.
    """
    running = [(Output(run, "disabled"), True, False), (Output(cancel, "disabled"), False, True)]
    if status is not None:
        running.append((Output(status[0], "children"), status[1], ""))
    return dict(background=True, running=running, cancel=[Input(cancel, "n_clicks")],
                progress=[Output(progress, "value"), Output(progress, "max")],
                prevent_initial_call=True)


def url_sync(app, store_id: str, sink_id: str) -> None:
    """Mirror a page's state store into the address bar (history.replaceState, no reload).

    The store holds ``{"path": "/locus", "query": "?locus=..."}``; replaceState changes the URL
    without notifying dash's router, so the page is not rebuilt, and a copied URL restores the
    view because each page's layout reads its state from the query string. ``sink_id`` is a
    hidden element that receives the URL (dash needs an output).
    """
    app.clientside_callback(URL_SYNC_JS, Output(sink_id, "children"), Input(store_id, "data"))
