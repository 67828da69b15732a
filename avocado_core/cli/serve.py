"""``avocado serve``: the Dash app on a workspace, served by werkzeug (no debugger, no reloader)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import click

from ._common import EXISTING_DIR, EXISTING_FILE
__all__ = ["serve", "serve_app", "open_app", "init_workspace", "host_option", "port_option"]

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


def _file(flag: str, text: str):
    return click.option(flag, type=EXISTING_FILE, help=text)


@click.command()
@click.argument("workspace", type=EXISTING_DIR)
@host_option
@port_option
@click.option("--genome", default="hg19", show_default=True, help="New workspace: assembly name shown in the app.")
@click.option("--title", default=None, help="New workspace: title of the app [default: folder name].")
@_file("--genes", "New workspace: genes BED.")
@_file("--exons", "New workspace: exons BED.")
@_file("--tss", "New workspace: TSS BED.")
@_file("--cpg-islands", "New workspace: CpG islands BED.")
@_file("--gtf", "New workspace: GENCODE GTF instead of the BED files.")
@click.option("--hg19-annotations", "hg19", is_flag=True, help="New workspace: the bundled hg19 annotations.")
def serve(
    workspace: Path, host: str, port: int, genome: str, title: str | None, genes: Path | None,
    exons: Path | None, tss: Path | None, cpg_islands: Path | None, gtf: Path | None, hg19: bool,
) -> None:
    """Serve the app (embeddings, locus browser, experimental design) on WORKSPACE.

    A workspace is a folder with store/, model/ and workspace.json, as `avocado demo` builds
    it. For your own data, ingest into WORKSPACE/store, train into WORKSPACE/model and serve:
    the first serve writes workspace.json from the --genome / annotation options.

    \b
    Examples:
      avocado serve workspace/
      avocado serve workspace/ --host 0.0.0.0 --port 8080
      avocado ingest ws/store --regions my.bed -m bigwigs.tsv
      avocado train ws/store ws/model && avocado impute ws/store ws/model --all
      avocado serve ws/ --genes genes.bed --tss tss.bed
    """
    if init_workspace(workspace, genome, title, genes, exons, tss, cpg_islands, gtf, hg19):
        click.echo(f"Created {workspace / 'workspace.json'}")
    serve_app(open_app(workspace), host, port)
