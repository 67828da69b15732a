"""``avocado serve``: the app on a workspace, with several worker processes where there are cores.

The library does not import the app: the app package registers its factory under the
``avocado.apps`` entry point (see pyproject.toml), and :func:`find_app_factory` looks it up.
With more than one worker the app is served by gunicorn: each worker process builds its own
app (the workspace's store is memory-mapped, so the workers share its pages), and the master
process never runs the model, so forking workers from it is safe. With one worker, werkzeug's
threaded server runs in this process.

The server's **runtime folder** (the app's uploads and its job store, which every worker must
share) is made by this process before any worker starts and handed to the factory as
``temp_dir``; this process alone removes it when the server stops, however it stops (Ctrl+C
included: the workers' clean-up ignores the second stop signal that gunicorn's master sends
after the terminal's). A folder left by a server that was killed (``kill -9``) is removed by
the next ``avocado serve``.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .._io import remove_stale, temp_path
from ..errors import AvocadoValueError
from ._common import EXISTING_DIR, EXISTING_FILE

__all__ = ["serve", "serve_app", "serve_workspace", "open_app", "find_app_factory",
           "default_workers", "init_workspace", "make_runtime_dir", "host_option", "port_option",
           "workers_option", "APP_ENTRY_POINTS", "RUNTIME_NAME"]

#: The entry-point group under which an app registers ``create_app(workspace, *, temp_dir)
#: -> Dash`` (``temp_dir``: the server's runtime folder, shared by its workers).
APP_ENTRY_POINTS = "avocado.apps"
#: Name of the server's runtime folders in the system's temporary folder (see ``_io``).
RUNTIME_NAME = "avocado-serve"
#: What a terminal's Ctrl+C, gunicorn's master and ``kill`` send to stop a server.
STOP_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)

host_option = click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Interface to listen on (0.0.0.0 makes the app reachable from other machines).",
)
port_option = click.option("--port", type=int, default=8050, show_default=True, help="TCP port.")
workers_option = click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Server processes (gunicorn when more than one) [default: one per CPU core, at most "
         "4].",
)


def default_workers() -> int:
    """One worker per CPU core this process may use, at most 4 (each holds a model)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def find_app_factory() -> Callable[..., Any]:
    """The app factory registered under the ``avocado.apps`` entry point.

    Set ``AVOCADO_APP`` to the entry point's name when several apps are installed.

    Raises
    ------
    AvocadoValueError
        When no app (or, without ``AVOCADO_APP``, more than one) is installed.
    """
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=APP_ENTRY_POINTS)}
    wanted = os.environ.get("AVOCADO_APP")
    if wanted:
        if wanted not in found:
            raise AvocadoValueError(
                f"AVOCADO_APP={wanted!r} is not an installed app; installed: "
                f"{', '.join(sorted(found)) or 'none'}")
        return found[wanted].load()
    if not found:
        raise AvocadoValueError(
            f"no app is installed: `avocado serve` serves the app registered under the "
            f"{APP_ENTRY_POINTS!r} entry point (the project's dashboard package); install the "
            "project with `pip install -e .` (or `make install`)")
    if len(found) > 1:
        raise AvocadoValueError(
            f"several apps are installed ({', '.join(sorted(found))}); choose one with "
            "AVOCADO_APP=NAME")
    return next(iter(found.values())).load()


def open_app(workspace_path: Path, runtime: Path | None = None) -> Any:
    """The installed app (see :func:`find_app_factory`) on the workspace at ``workspace_path``,
    with its uploads and job store in ``runtime`` (default: a folder the app makes itself)."""
    from ..workspace import Workspace

    extra = {} if runtime is None else {"temp_dir": str(runtime)}
    return find_app_factory()(Workspace(workspace_path), **extra)


def init_workspace(
    path: Path, genome: str, title: str | None, genes: Path | None, exons: Path | None,
    tss: Path | None, cpg_islands: Path | None, gtf: Path | None, hg19: bool,
) -> bool:
    """Write workspace.json for a folder that has store/ (and model/) but none yet.

    Returns True if it was created.
    """
    from ..workspace import WORKSPACE_FILE, Workspace

    if (path / WORKSPACE_FILE).is_file():
        return False
    if not (path / "store" / "catalog.tsv").is_file():
        return False  # Workspace(path) then says what a workspace is
    files = {"genes": genes, "exons": exons, "tss": tss, "cpg_islands": cpg_islands, "gtf": gtf}
    files = {k: str(v) for k, v in files.items() if v is not None}
    if hg19 and files:
        raise click.UsageError("give either --hg19-annotations or annotation files, not both")
    annotations: Any = "hg19" if hg19 else (files or None)
    Workspace.create(path, genome=genome, annotations=annotations, title=title)
    return True


def serve_app(app: Any, host: str, port: int) -> None:
    """Serve a Dash (or Flask / WSGI) app with werkzeug's threaded server until Ctrl+C (or
    SIGTERM, which stops it the same way).

    Prints its address first. When the app has a ``close()`` hook in its server config
    (``AVOCADO_CLOSE``), it is called when the server stops (temporary files, job launcher).
    """
    from werkzeug.serving import make_server

    wsgi = getattr(app, "server", app)
    try:
        server = make_server(host, port, wsgi, threaded=True)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE or "in use" in str(exc):
            raise click.ClickException(
                f"port {port} on {host} is already in use; choose another with --port"
            ) from None
        raise
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    click.echo(f"Serving the Avocado app at http://{shown}:{server.server_port} (Ctrl+C to stop)")
    # `kill` stops it as Ctrl+C does: cleanly
    previous = _set_handlers((signal.SIGTERM,), _interrupt)
    try:
        server.serve_forever()  # werkzeug's returns on Ctrl+C
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        close = getattr(wsgi, "config", {}).get("AVOCADO_CLOSE")
        if close is not None:
            close()
        _set_handlers((signal.SIGTERM,), previous)
    click.echo("Stopped.")


def serve_workspace(workspace: Path, host: str, port: int, workers: int | None = None) -> None:
    """Serve the installed app on a workspace: gunicorn workers, or werkzeug for one worker.

    Parameters
    ----------
    workspace: Path
    host, port:
        Where to listen (port 0: any free port; the address is printed).
    workers: int or None
        Server processes. Default: :func:`default_workers`.
    """
    from ..workspace import Workspace

    workers = default_workers() if workers is None else int(workers)
    if workers > 1:
        Workspace(workspace).check()  # a bad workspace: one line now, not a worker boot loop
    runtime = make_runtime_dir()
    owner = os.getpid()
    try:
        if workers <= 1:
            serve_app(open_app(workspace, runtime), host, port)
        else:
            factory = find_app_factory()
            _serve_gunicorn(lambda: factory(Workspace(workspace), temp_dir=str(runtime)).server,
                            host, port, workers)
    finally:
        if os.getpid() == owner:  # not in a worker: gunicorn's workers return through here
            # a second Ctrl+C does not cut the clean-up short
            previous = _set_handlers(STOP_SIGNALS, _ignore)
            shutil.rmtree(runtime, ignore_errors=True)
            _set_handlers(STOP_SIGNALS, previous)


def make_runtime_dir() -> Path:
    """A new private folder for one server's runtime files, in the system's temporary folder.

    Its name carries this host and process (``.avocado-serve.avocado-tmp-<host>-<pid>-*``), so
    that the folders of servers that were killed are recognised and removed here first.
    """
    base = Path(tempfile.gettempdir())
    remove_stale(base, RUNTIME_NAME)
    runtime = temp_path(base / RUNTIME_NAME)
    runtime.mkdir(mode=0o700)  # the job store holds the secret that signs the pages' jobs
    return runtime


def _set_handlers(signals: tuple, handlers: Any) -> list:
    """Set the handlers of ``signals`` (one handler for all, or one each) in the main thread
    (where Python runs them; elsewhere nothing is set); returns the handlers they replace."""
    if threading.current_thread() is not threading.main_thread():
        return []
    each = handlers if isinstance(handlers, list) else [handlers] * len(signals)
    return [signal.signal(sig, signal.SIG_DFL if h is None else h)
            for sig, h in zip(signals, each)]


def _ignore(signum, frame) -> None:
    """A stop signal while stopping. A handler that does nothing rather than ``SIG_IGN``: a
    signal that has just arrived runs it instead of printing "Signal 3 ignored due to race
    condition"."""


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _serve_gunicorn(load: Callable[[], Any], host: str, port: int, workers: int) -> None:
    """Run gunicorn in this process: ``workers`` processes, each calling ``load()`` once."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.errors import HaltServer

    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    master = os.getpid()

    def when_ready(server) -> None:
        bound = server.LISTENERS[0].sock.getsockname()[1]
        click.echo(f"Serving the Avocado app at http://{shown}:{bound} with {workers} worker "
                   "processes (Ctrl+C to stop)")

    def worker_int(worker) -> None:
        # The terminal's Ctrl+C reaches the worker, then the master sends it SIGQUIT: the
        # second signal must not interrupt the clean-up (the app's job launcher) on the way out.
        _set_handlers(STOP_SIGNALS, _ignore)

    class Application(BaseApplication):
        def load_config(self) -> None:
            # gthread: 8 requests at a time per worker (numpy releases the GIL); no
            # keep-alive, so that each callback goes to a free worker instead of staying on
            # the one that accepted the browser's connection.
            for key, value in {
                "bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread",
                "threads": 8, "keepalive": 0, "timeout": 300, "graceful_timeout": 10,
                "preload_app": False, "accesslog": None, "loglevel": "warning",
                "when_ready": when_ready, "worker_int": worker_int,
                "proc_name": "avocado-serve",
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return load()

    try:
        Application().run()
    except HaltServer as exc:
        raise click.ClickException(f"the server stopped: {exc.reason}") from None
    except SystemExit as exc:
        if os.getpid() != master:
            raise  # a worker leaving: its own exit status, nothing printed
        if exc.code not in (0, None):
            raise click.ClickException(
                f"the server could not start on {host}:{port} (is the port in use?)") from None
    click.echo("Stopped.")


def _file(flag: str, text: str):
    return click.option(flag, type=EXISTING_FILE, help=text)


@click.command()
@click.argument("workspace", type=EXISTING_DIR)
@host_option
@port_option
@workers_option
@click.option(
    "--genome", default="hg19", show_default=True,
    help="New workspace: assembly name shown in the app.",
)
@click.option(
    "--title", default=None, help="New workspace: title of the app [default: folder name]."
)
@_file("--genes", "New workspace: genes BED.")
@_file("--exons", "New workspace: exons BED.")
@_file("--tss", "New workspace: TSS BED.")
@_file("--cpg-islands", "New workspace: CpG islands BED.")
@_file("--gtf", "New workspace: GENCODE GTF instead of the BED files.")
@click.option(
    "--hg19-annotations", "hg19", is_flag=True,
    help="New workspace: the bundled hg19 annotations.",
)
def serve(
    workspace: Path, host: str, port: int, workers: int | None, genome: str, title: str | None,
    genes: Path | None, exons: Path | None, tss: Path | None, cpg_islands: Path | None,
    gtf: Path | None, hg19: bool,
) -> None:
    """Serve the app (embeddings, locus browser, experimental design) on WORKSPACE.

    A workspace is a folder with store/, model/ and workspace.json, as `avocado demo` builds
    it. For your own data, ingest into WORKSPACE/store, train into WORKSPACE/model and serve:
    the first serve writes workspace.json from the --genome / annotation options. Where the
    machine has several cores, several server processes answer requests (gunicorn).

    \b
    Examples:
      avocado serve workspace/
      avocado serve workspace/ --host 0.0.0.0 --port 8080 --workers 4
      avocado ingest ws/store --regions my.bed -m bigwigs.tsv
      avocado train ws/store ws/model && avocado impute ws/store ws/model --all
      avocado serve ws/ --genes genes.bed --tss tss.bed
    """
    if init_workspace(workspace, genome, title, genes, exons, tss, cpg_islands, gtf, hg19):
        click.echo(f"Created {workspace / 'workspace.json'}")
    serve_workspace(workspace, host, port, workers)
