"""The Dash app factory: pages, shared shell, background-callback manager. No logic here.

``create_app(workspace)`` returns a Dash app serving one workspace. Pages are registered with
``dash.register_page``; their layouts find the workspace through the Flask app that serves the
request, so several apps (e.g. two workspaces in one test process) can coexist.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import dash
import diskcache
from dash import Dash, DiskcacheManager, Input, Output, dcc, html, set_props

from avocado_core.workspace import Workspace

from .components import alert, error_message

__all__ = ["create_app", "ASSETS", "MAX_UPLOAD_BYTES"]

log = logging.getLogger("dashboard")

#: The stylesheet folder at the repository root.
ASSETS = Path(__file__).resolve().parents[1] / "assets"
#: Largest request body accepted (uploads included).
MAX_UPLOAD_BYTES = 64 * 1024 * 1024

PAGES = (
    ("embeddings", "/", "Embeddings", "Latent space of biosamples, assays and positions"),
    ("locus", "/locus", "Locus", "Observed and imputed tracks at a locus"),
    ("design", "/design", "Design", "Which experiments to run next"),
)


def create_app(workspace: Workspace | str | os.PathLike, *, background_dir: str | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES) -> Dash:
    """Build the Dash app for a workspace.

    Parameters
    ----------
    workspace: Workspace or path
        The workspace to serve.
    background_dir: str or None
        Folder of the diskcache that runs background callbacks (selections, projections); a
        new temporary folder by default.
    max_upload_bytes: int
        Requests larger than this are refused (HTTP 413). Default is 64 MB.

    Returns
    -------
    dash.Dash
        Serve ``app.server`` with any WSGI server; the app never runs in debug mode.
    """
    from .pages import design, embeddings, locus

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.warm_up()
    cache_dir = background_dir or tempfile.mkdtemp(prefix="avocado-dash-")
    manager = DiskcacheManager(diskcache.Cache(cache_dir))
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        background_callback_manager=manager,
        suppress_callback_exceptions=True,
        title=f"Avocado · {ws.title}",
        update_title=None,
        on_error=_on_error,
        use_async=False,
    )
    app.server.config["AVOCADO_WORKSPACE"] = ws
    app.server.config["MAX_CONTENT_LENGTH"] = int(max_upload_bytes)
    app.server.config["AVOCADO_MAX_UPLOAD_BYTES"] = int(max_upload_bytes)

    for module, (name, path, title, description) in zip((embeddings, locus, design), PAGES):
        dash.register_page(module.__name__, path=path, name=title, title=f"{title} · Avocado",
                           description=description, layout=module.layout,
                           order=PAGES.index((name, path, title, description)))
        module.register_callbacks(app, ws)

    app.layout = _shell(ws)
    # Highlight the current page in the top bar.
    app.clientside_callback(
        """
        function(path) {
            const pages = %s;
            return pages.map(p => (p === path || (p !== '/' && path && path.startsWith(p)))
                             ? 'nav-link active' : 'nav-link');
        }
        """ % [path for _, path, _, _ in PAGES],
        [Output(f"nav-{name}", "className") for name, _, _, _ in PAGES],
        Input("_pages_location", "pathname"),
    )
    return app


def _shell(ws: Workspace) -> html.Div:
    nav = [
        dcc.Link(title, href=path, className="nav-link", id=f"nav-{name}")
        for name, path, title, _ in PAGES
    ]
    return html.Div(
        [
            html.Header(
                [
                    html.Div([html.Span(className="brand-mark"),
                              html.Span("Avocado", className="brand-name"),
                              html.Span(ws.title, className="brand-workspace")],
                             className="brand"),
                    html.Nav(nav, className="nav"),
                    html.Div(ws.genome, className="genome-badge", title="genome assembly"),
                ],
                className="topbar",
            ),
            html.Div(id="global-alert", className="global-alert"),
            html.Main(dash.page_container, className="page"),
        ],
        className="app",
    )


def _on_error(exc: Exception) -> None:
    """Any error a callback did not handle: an alert on the page, the traceback in the log."""
    if isinstance(exc, (ValueError, KeyError)):
        set_props("global-alert", {"children": alert(error_message(exc))})
        return None
    log.exception("callback failed", exc_info=exc)
    set_props("global-alert", {"children": alert(
        f"Something went wrong on the server ({type(exc).__name__}: {exc}). "
        "The page still works; try another setting.")})
    return None
