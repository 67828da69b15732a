"""``avocado fit-genome`` (alias ``fit-positions``): genome factors for a new position set.

The genome-wide phase of Avocado: the network and the biosample / assay embeddings of a model
trained on a region set are frozen, and only new genome factors are learned over the positions of
another store (e.g. whole chromosomes). Chromosomes are independent, so each ``--chrom`` can be a
separate job, in parallel processes or on separate machines.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._common import quiet_option
from .train import device_option, fit_options, max_memory_option, memory_limit

__all__ = ["fit_genome"]


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("store_path", metavar="STORE", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("output", metavar="OUTPUT", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-c", "--chrom", "chroms", multiple=True,
    help="Fit only this chromosome into OUTPUT/CHROM/ (repeatable) [default: all of STORE at once].",
)
@fit_options
@device_option
@max_memory_option
@click.option("--checkpoint-every", type=int, default=None, help="Checkpoint every N epochs (a rerun resumes).")
@quiet_option
def fit_genome(
    model_path: Path,
    store_path: Path,
    output: Path,
    chroms: tuple[str, ...],
    epochs: int,
    epoch_size: int | None,
    sampling: str,
    seed: int,
    device: str | None,
    max_memory: str | None,
    checkpoint_every: int | None,
    quiet: bool,
) -> None:
    """Learn genome factors of MODEL over the positions of STORE; save the new model to OUTPUT.

    The network and the biosample / assay factors of MODEL are kept frozen; only the 25 bp,
    250 bp and 5 kbp genome factors of the new positions train, from the observed tracks of
    STORE (those of biosamples and assays the model knows). With --chrom, each chromosome is
    an independent job that writes OUTPUT/CHROM/.

    \b
    Examples:
      avocado ingest genome/ --chrom-sizes hg19.sizes --chroms chr21,chr22 -m bigwigs.tsv
      avocado fit-genome model/ genome/ genome-model/ --chrom chr21 --epochs 5
      avocado fit-genome model/ genome/ genome-model/ --chrom chr22 --epochs 5   # another job
    """
    from ..model import Avocado
    from ..store import TrackStore

    store = TrackStore(store_path)
    model = Avocado.load(model_path, device=device)
    known_b, known_a = set(model.biosamples), set(model.assays)
    tracks = store.tracks()
    keys = [k for k in tracks if k[0] in known_b and k[1] in known_a]
    if not keys:
        raise click.UsageError(
            f"{store_path} has no observed track of a biosample and assay the model knows "
            f"(biosamples {', '.join(model.biosamples)}; assays {', '.join(model.assays)})"
        )
    skipped = len(tracks) - len(keys)
    if chroms:
        jobs = [(c, *store.regions.chrom_bins(c), output / c) for c in chroms]
    else:
        jobs = [("all", 0, store.n_bins, output)]
    for name, start, end, target in jobs:
        # memmap slices: each job reads only its own bins from disk
        data = {k: tracks[k][start:end] for k in keys}
        with memory_limit(max_memory):
            new = model.fit_positions(
                data,
                end - start,
                n_epochs=epochs,
                epoch_size=epoch_size,
                sampling=sampling,
                seed=seed,
                checkpoint_dir=target / "checkpoints" if checkpoint_every else None,
                checkpoint_every=checkpoint_every,
                progress=not quiet,
            )
        new.save(target)
        loss = new.history.get("loss", [])
        tail = f", final loss {loss[-1]:.4f}" if loss else ""
        click.echo(f"{name}: {end - start:,} positions from {len(keys)} tracks{tail} -> {target}")
    if skipped:
        click.echo(f"({skipped} tracks of biosamples / assays unknown to the model were not used)")
