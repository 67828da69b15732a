"""``avocado demo``: build the demo workspace if it is missing, then serve the app on it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from ._common import NEW_DIR, quiet_option
from .serve import host_option, port_option, workers_option

__all__ = ["demo"]


def _peak_memory() -> str:
    """This process's peak resident memory, for the build summary."""
    try:
        import resource
    except ImportError:  # Windows: not measured
        return "peak memory not measured on this system"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak *= 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return f"peak memory {peak / 2**30:.2f} GiB (resident)"


def _load() -> str:
    """The 1-minute load average against the CPU count: build times depend on it."""
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    except (AttributeError, OSError):
        return f"{os.cpu_count()} CPUs"


@click.command()
@click.argument("workspace", default="workspace", type=NEW_DIR)
@host_option
@port_option
@workers_option
@click.option(
    "--source", type=click.Choice(["roadmap-pilot", "synthetic", "encode-layout"]),
    default="roadmap-pilot", show_default=True,
    help="The 25 real Roadmap pilot tracks; a synthetic compendium; or synthetic signal over "
    "the real layout of the ENCODE 2018 core compendium (400 biosamples x 84 assays, 3,814 "
    "experiments).",
)
@click.option(
    "--epochs", type=int, default=None,
    help="Training epochs of the demo model [default: the workspace's].",
)
@click.option(
    "--bins", type=click.IntRange(min=1), default=None,
    help="25 bp bins of a synthetic source's tracks, set when the store is first built "
    "[default: 100,000 for encode-layout].",
)
@click.option(
    "--biosamples", "n_biosamples", type=click.IntRange(min=1), default=None,
    help="encode-layout only: take this many of the layout's 400 biosamples (evenly spread), "
    "for a smaller, quicker workspace; set when the store is first built [default: all].",
)
@click.option(
    "--genome-points", type=int, default=None,
    help="Genome positions in the UMAP / PCA projections, set when the workspace is first "
    "built (fewer is faster) [default: 100,000; 50,000 for encode-layout].",
)
@click.option(
    "--max-memory", default=None,
    help="Stream the training data from the store above this size, e.g. 1G [default: 2G; 1G "
    "for encode-layout].",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-serve", is_flag=True, help="Only build the workspace.")
@quiet_option
def demo(
    workspace: Path, host: str, port: int, workers: int | None, source: str,
    epochs: int | None, bins: int | None, n_biosamples: int | None, genome_points: int | None,
    max_memory: str | None, seed: int, no_serve: bool, quiet: bool,
) -> None:
    """Build the demo WORKSPACE (default: ./workspace) if needed, then serve the app.

    The first run gets the Roadmap pilot data (mirror or download), trains an ensemble of 3
    CPU-friendly models without two Latin squares of experiments (one shown as held out, one
    that calibrates the uncertainty band and is then dropped from the store), imputes every
    (biosample, assay) with the members' spread, computes the projections; each step already
    done is skipped, so a second run serves within seconds. It prints how long the build took
    and its peak memory.

    With --source encode-layout the tracks are SYNTHETIC signal generated over the real layout
    of the ENCODE 2018 core compendium (names, summaries, which experiments exist): a
    compendium of ENCODE's size to try the app on before ingesting one (docs/encode-layout.md).

    \b
    Examples:
      avocado demo
      avocado demo workspace/ --port 8051
      avocado demo synthetic-ws/ --source synthetic --no-serve
      avocado demo encode-ws/ --source encode-layout
    """
    from ..workspace_build import build_workspace

    if bins is not None and source == "roadmap-pilot":
        raise click.UsageError("--bins sets the length of synthetic tracks; the Roadmap pilot "
                               "tracks have their own 1,126,469 bins")
    if n_biosamples is not None and source != "encode-layout":
        raise click.UsageError("--biosamples takes part of the ENCODE layout; use it with "
                               "--source encode-layout")
    synthetic = {k: v for k, v in (("n_positions", bins), ("n_biosamples", n_biosamples))
                 if v is not None}
    click.echo(f"Preparing the workspace {workspace} ...")
    start = time.perf_counter()
    ws = build_workspace(
        workspace, source=source, n_epochs=epochs, genome_points=genome_points, seed=seed,
        synthetic=synthetic, max_memory=max_memory,
        progress=not quiet,
    )
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in ws.info.get("build_seconds", {}).items())
    click.echo(f"Ready in {time.perf_counter() - start:.0f} s ({_peak_memory()}, {_load()}); "
               f"build steps: {steps or 'none'}.")
    if ws.synthetic:
        click.echo(f"Signal: {ws.synthetic}.")
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
