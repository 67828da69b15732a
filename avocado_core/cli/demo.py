"""``avocado demo``: build the demo workspace if it is missing, then serve the app on it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ._common import NEW_DIR, quiet_option
from .serve import host_option, port_option, workers_option

__all__ = ["demo"]


@click.command()
@click.argument("workspace", default="workspace", type=NEW_DIR)
@host_option
@port_option
@workers_option
@click.option(
    "--source", type=click.Choice(["roadmap-pilot", "synthetic"]), default="roadmap-pilot",
    show_default=True, help="The 25 real Roadmap pilot tracks, or a synthetic compendium.",
)
@click.option(
    "--epochs", type=int, default=None,
    help="Training epochs of the demo model [default: the workspace's].",
)
@click.option(
    "--genome-points", type=int, default=100_000, show_default=True,
    help="Genome positions in the UMAP / PCA projections, set when the workspace is first "
    "built (fewer is faster).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-serve", is_flag=True, help="Only build the workspace.")
@quiet_option
def demo(
    workspace: Path, host: str, port: int, workers: int | None, source: str,
    epochs: int | None, genome_points: int,
    seed: int, no_serve: bool, quiet: bool,
) -> None:
    """Build the demo WORKSPACE (default: ./workspace) if needed, then serve the app.

    The first run gets the Roadmap pilot data (mirror or download), trains an ensemble of 3
    CPU-friendly models without two Latin squares of experiments (one shown as held out, one
    that calibrates the uncertainty band and is then dropped from the store), imputes every
    (biosample, assay) with the members' spread, computes the projections; each step already
    done is skipped, so a second run serves within seconds.

    \b
    Examples:
      avocado demo
      avocado demo workspace/ --port 8051
      avocado demo synthetic-ws/ --source synthetic --no-serve
    """
    from ..workspace import build_workspace

    click.echo(f"Preparing the workspace {workspace} ...")
    build_workspace(
        workspace, source=source, n_epochs=epochs, genome_points=genome_points, seed=seed,
        progress=not quiet,
    )
    if no_serve:
        click.echo(f"Workspace ready: {workspace} (serve it with `avocado serve {workspace}`)")
        return
    # Serve from a fresh process: this one has trained and projected (torch's and numba's
    # OpenMP threads), and a process that used OpenMP must not fork server workers or jobs.
    args = [sys.executable, "-m", "avocado_core", "serve", str(workspace), "--host", host,
            "--port", str(port)] + (["--workers", str(workers)] if workers else [])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, args)
