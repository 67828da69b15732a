"""The Dash app factory: pages, shared shell, background-callback manager. No logic here.

``create_app(workspace)`` returns a Dash app serving one workspace. Pages are registered with
``dash.register_page``; their layouts find the workspace through the Flask app that serves the
request, so several apps (e.g. two workspaces in one test process) can coexist. The app is
ready to serve when the factory returns: Dash's set-up of the first request (the component
libraries' scripts, the callback list) is done here, so that the first requests a new server
worker answers together all see it complete.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

import dash
import diskcache
import psutil
from dash import Dash, Input, Output, dcc, html, set_props
from dash.exceptions import BackgroundCallbackError

from avocado_core.choice import describe_choice
from avocado_core.workspace import Workspace

from .background import MANAGER_CONFIG_KEY, ORPHAN_AFTER_S, JobManager, stop_signals_ignored
from .components import alert, error_message

__all__ = ["create_app", "close_app", "ASSETS", "MAX_UPLOAD_BYTES"]

log = logging.getLogger("dashboard")

#: The stylesheet folder at the repository root.
ASSETS = Path(__file__).resolve().parents[1] / "assets"
#: Largest request body accepted (uploads included).
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
#: Name prefix of the app's temporary folders (followed by the server's process id).
TEMP_PREFIX = "avocado-dash-"

PAGES = (
    ("embeddings", "/", "Embeddings", "Latent space of biosamples, assays and positions"),
    ("locus", "/locus", "Locus", "Observed and imputed tracks at a locus"),
    ("design", "/design", "Design", "Which experiments to run next"),
)


def create_app(workspace: Workspace | str | os.PathLike, *, background_dir: str | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, temp_dir: str | None = None,
               orphan_after: float = ORPHAN_AFTER_S, _launcher: bool = False) -> Dash:
    """Build the Dash app for a workspace.

    Parameters
    ----------
    workspace: Workspace or path
        The workspace to serve.
    background_dir: str or None
        The job store: the diskcache folder of the background callbacks (uploads, fits,
        projections, selections). Every worker of one server must open the same folder.
        Default: ``background/`` inside ``temp_dir``.
    max_upload_bytes: int
        Requests larger than this are refused (HTTP 413). Default is 64 MB.
    temp_dir: str or None
        The server's runtime folder (uploads, the default job store), made and removed by
        whoever serves the app (``avocado serve`` makes one for all its workers). Default: a
        new folder ``avocado-dash-<pid>-*`` in the system's temporary folder, owned by this
        app: removed by :func:`close_app` or when the process exits; those of servers that
        died are removed when the next app starts.
    orphan_after: float
        A background job whose page stopped asking for it (its tab was closed) stops after
        this many seconds. Default is 30.

    Returns
    -------
    dash.Dash
        Serve ``app.server`` with any WSGI server; the app never runs in debug mode.
    """
    from .pages import design, embeddings, locus

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if not _launcher:
        ws.warm_up()  # the job launcher never touches the data: it only forks jobs
    own_temp = temp_dir is None
    if own_temp:
        _remove_stale_temp_dirs()
        temp_dir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    cache_dir = background_dir or os.path.join(temp_dir, "background")
    # the job launcher builds this same app by the factory's name (it never imports this
    # module's importer), on the same job store
    spec = None if _launcher else {
        "factory": f"{create_app.__module__}:{create_app.__qualname__}",
        "kwargs": {"workspace": str(ws.path), "background_dir": cache_dir,
                   "max_upload_bytes": int(max_upload_bytes), "temp_dir": temp_dir,
                   "orphan_after": float(orphan_after), "_launcher": True}}
    manager = JobManager(diskcache.Cache(cache_dir), spec, orphan_after=orphan_after)
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
    app.server.config["AVOCADO_TEMP_DIR"] = temp_dir
    app.server.config["AVOCADO_OWNS_TEMP_DIR"] = own_temp
    app.server.config[MANAGER_CONFIG_KEY] = manager
    app.server.config["AVOCADO_CLOSE"] = lambda: close_app(app)  # called by `avocado serve`
    atexit.register(close_app, app)  # a server worker that exits stops its job launcher
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
    if not _launcher:
        # Dash sets itself up on the first request (its component libraries' script paths,
        # the callback list) and lets the requests that arrive meanwhile through unprepared:
        # a new worker's first requests, arriving together, then fail ("dash" is not a
        # registered library). One request now does it before the server takes any.
        app.server.test_client().get("/")
    return app


def close_app(app: Dash) -> None:
    """Stop the app's job launcher (and its jobs) and remove the temporary folder the app made
    itself (uploads, job store).

    Called by ``avocado serve`` when the server stops and when the process exits. A second
    stop signal (a terminal's Ctrl+C reaches every process of the server, and gunicorn's
    master then signals its workers again) does not cut it short. Safe to call more than once.
    """
    config = app.server.config
    with stop_signals_ignored():
        manager = config.get(MANAGER_CONFIG_KEY)
        if manager is not None:
            manager.close()
        temp_dir = config.pop("AVOCADO_TEMP_DIR", None)
        if temp_dir and config.get("AVOCADO_OWNS_TEMP_DIR"):
            shutil.rmtree(temp_dir, ignore_errors=True)


def _remove_stale_temp_dirs() -> None:
    """Remove the temporary folders of app servers that are no longer running (killed -9)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = folder.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


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
                    *([html.Div("synthetic signal", id="synthetic-badge",
                                className="genome-badge synthetic-badge", title=ws.synthetic)]
                      if ws.synthetic else []),
                    *_model_badge(ws),
                    html.Div(ws.genome, className="genome-badge", title="genome assembly"),
                ],
                className="topbar",
            ),
            html.Div(id="global-alert", className="global-alert"),
            html.Main(dash.page_container, className="page"),
        ],
        className="app",
    )


def _model_badge(ws: Workspace) -> list[html.Div]:
    """How many models impute, and what their training chose on validation tracks (hover)."""
    if not ws.has_model:
        return []
    n = len(ws.member_paths)
    choice = ws.model_choice  # from config.json: the job launcher never loads the model
    text = (f"{n} models" if n > 1 else "1 model") + (" · settings chosen" if choice else "")
    title = ("Chosen on validation tracks split off the training tracks: "
             f"{describe_choice(choice)}" if choice else "Settings as given at training")
    return [html.Div(text, id="model-badge", className="genome-badge", title=title)]


def _on_error(exc: Exception) -> None:
    """Any error a callback did not handle: an alert on the page, the traceback in the log."""
    if isinstance(exc, (ValueError, KeyError)):
        set_props("global-alert", {"children": alert(error_message(exc))})
        return None
    if isinstance(exc, BackgroundCallbackError):  # a job failed or died: its first line
        log.error("%s", exc)
        text = str(exc).split(": ", 1)[-1].split("\n", 1)[0]
        set_props("global-alert", {"children": alert(f"The background job failed: {text}")})
        return None
    log.exception("callback failed", exc_info=exc)
    set_props("global-alert", {"children": alert(
        f"Something went wrong on the server ({type(exc).__name__}: {exc}). "
        "The page still works; try another setting.")})
    return None
