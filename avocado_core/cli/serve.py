"""``avocado serve``: the Dash app on a workspace, served by werkzeug (no debugger, no reloader)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import click

__all__ = ["serve", "serve_app", "open_app", "host_option", "port_option"]

host_option = click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Interface to listen on (0.0.0.0 makes the app reachable from other machines).",
)
port_option = click.option("--port", type=int, default=8050, show_default=True, help="TCP port.")


def open_app(workspace_path: Path) -> Any:
    """``dashboard.app.create_app(Workspace(path))``."""
    from dashboard.app import create_app

    from ..workspace import Workspace

    return create_app(Workspace(workspace_path))


def serve_app(app: Any, host: str, port: int) -> None:
    """Serve a Dash (or Flask / WSGI) app until Ctrl+C, printing its address first.

    werkzeug's threaded server is enough for one lab; for more users run gunicorn on
    ``dashboard.wsgi:server``.
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
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.server_close()


@click.command()
@click.argument("workspace", type=click.Path(exists=True, file_okay=False, path_type=Path))
@host_option
@port_option
def serve(workspace: Path, host: str, port: int) -> None:
    """Serve the app (embeddings, locus browser, experimental design) on WORKSPACE.

    A workspace is a folder with store/, model/ and workspace.json, as `avocado demo`
    builds it.

    \b
    Examples:
      avocado serve workspace/
      avocado serve workspace/ --host 0.0.0.0 --port 8080
    """
    serve_app(open_app(workspace), host, port)
