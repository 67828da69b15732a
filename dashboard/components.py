"""Small layout pieces shared by the pages: alerts, labelled controls, the workspace lookup."""

from __future__ import annotations

import functools
import logging
import urllib.parse
from collections.abc import Callable, Iterable

from dash import Input, Output, html, no_update

log = logging.getLogger("dashboard")

# The errors a user can cause (bad locus, unknown gene, ...): shown as an alert, not logged
# as a crash. avocado_core raises ValueError / KeyError subclasses for all of them.
USER_ERRORS = (ValueError, KeyError)


def current_workspace():
    """The workspace of the app serving the current request (page layouts use it)."""
    import flask

    return flask.current_app.config["AVOCADO_WORKSPACE"]


def alert(message: str, kind: str = "error") -> html.Div:
    """A visible message box (role="alert"); kind is "error", "warning" or "info"."""
    return html.Div(message, role="alert", className=f"alert alert-{kind}")


def error_message(exc: BaseException) -> str:
    """The one-line text of an error for an alert (KeyError's repr quotes are dropped)."""
    if isinstance(exc, KeyError) and exc.args and type(exc) is KeyError:
        return f"unknown name: {exc.args[0]}"
    return str(exc) or type(exc).__name__


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


def query_string(params: dict) -> str:
    """``?key=value&...`` of the non-empty parameters (lists joined by commas)."""
    clean = {}
    for k, v in params.items():
        if v is None or v == "" or v == []:
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


def url_sync(app, store_id: str, sink_id: str) -> None:
    """Mirror a page's state store into the address bar (history.replaceState, no reload).

    The store holds ``{"path": "/locus", "query": "?locus=..."}``; replaceState changes the URL
    without notifying dash's router, so the page is not rebuilt, and a copied URL restores the
    view because each page's layout reads its state from the query string. ``sink_id`` is a
    hidden element that receives the URL (dash needs an output).
    """
    app.clientside_callback(URL_SYNC_JS, Output(sink_id, "children"), Input(store_id, "data"))
