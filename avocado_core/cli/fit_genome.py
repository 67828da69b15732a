"""``avocado fit-genome`` (alias ``fit-positions``): genome factors chromosome by chromosome.

The genome-wide phase of Avocado: the network and the biosample / assay embeddings of a model
trained on a region set are frozen, and only new genome factors are learned over the positions of
a genome-wide store, one chromosome at a time (:func:`avocado_core.genome_wide.fit_chromosome`).
Each chromosome is an independent job that writes ``PARTS/<chrom>/`` atomically, so jobs can run
in parallel processes (``--jobs``) or on separate machines; ``avocado assemble-genome`` then
gathers the parts into one genome model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import EXISTING_DIR, NEW_DIR, quiet_option
from .train import device_option, fit_options, max_memory_option, precision_option

__all__ = ["fit_genome"]


@click.command()
@click.argument("model_path", metavar="MODEL", type=EXISTING_DIR)
@click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
@click.argument("parts_dir", metavar="PARTS", type=NEW_DIR)
@click.option(
    "-c", "--chrom", "chroms", multiple=True,
    help="Fit only this chromosome (repeatable) [default: every chromosome of STORE].",
)
@click.option(
    "-j", "--jobs", type=int, default=1, show_default=True,
    help="Chromosomes fitted at once, each in its own process.",
)
@click.option(
    "--threads-per-job", type=int, default=1, show_default=True,
    help="torch threads of each job (with --jobs).",
)
@fit_options(epochs=10, choose=False)
@device_option
@precision_option
@max_memory_option
@click.option(
    "--checkpoint-every", type=int, default=None,
    help="Checkpoint every N epochs (a rerun resumes).",
)
@click.option("--overwrite", is_flag=True, help="Refit chromosomes whose part exists already.")
@quiet_option
def fit_genome(
    model_path: Path,
    store_path: Path,
    parts_dir: Path,
    chroms: tuple[str, ...],
    jobs: int,
    threads_per_job: int,
    loop: dict[str, Any],
    device: str | None,
    precision: str | None,
    max_memory: str | None,
    checkpoint_every: int | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Learn genome factors of MODEL over each chromosome of STORE; write PARTS/CHROM/.

    The network and the biosample / assay factors of MODEL stay frozen; only the 25 bp, 250 bp
    and 5 kbp genome factors of each chromosome train, from the observed tracks of STORE (those
    of biosamples and assays the model knows). A finished part of the same model is skipped, so
    a rerun (or a job array) only does what is left; each part is an ordinary model directory.
    With --jobs on CUDA (--device cuda, or none on a machine with GPUs) job i runs on GPU
    i % (number of GPUs).

    \b
    Examples:
      avocado ingest genome/ --chrom-sizes hg19.sizes --chroms chr21,chr22 -m bigwigs.tsv
      avocado fit-genome model/ genome/ parts/ --chrom chr21 --epochs 5
      avocado fit-genome model/ genome/ parts/ --chrom chr22 --epochs 5   # another machine
      avocado fit-genome model/ genome/ parts/ --jobs 2                   # all, 2 at a time
      avocado assemble-genome model/ genome/ genome-model/ -p parts/
    """
    from ..genome_wide import fit_chromosome, fit_chromosomes
    from ..model import Avocado
    from ..store import TrackStore

    fit_kwargs = dict(loop, max_memory=max_memory, checkpoint_every=checkpoint_every,
                      overwrite=overwrite, device=device, precision=precision)
    if jobs > 1:
        which = ", ".join(chroms) if chroms else "every chromosome"
        click.echo(f"Fitting {which} with {jobs} jobs ...", err=True)
        done = fit_chromosomes(
            model_path, store_path, parts_dir, list(chroms) or None, n_jobs=jobs,
            threads_per_job=threads_per_job, **fit_kwargs,
        )
    else:
        model = Avocado.load(model_path, device=device)
        store = TrackStore(store_path)
        done = [
            fit_chromosome(model, store, chrom, parts_dir, progress=not quiet, **fit_kwargs)
            for chrom in (chroms or store.regions.chroms)
        ]
    regions = TrackStore(store_path).regions
    for part in done:
        start, end = regions.chrom_bins(part.name)
        click.echo(f"{part.name}: {end - start:,} positions -> {part}")
