"""``avocado import-original`` / ``export-original``: models of the original Avocado package.

The original (avocado-epigenome, Keras) saves a model as ``NAME.json`` + ``NAME.h5``; its
published genome-wide models are one such pair per chromosome (``avocado-chr1``, ...). These
commands convert both ways with h5py only (see :mod:`avocado_core.original`).
"""

from __future__ import annotations

from pathlib import Path

import click

from ._common import EXISTING_DIR, NEW_DIR, quiet_option

__all__ = ["export_original", "import_original"]


@click.command()
@click.argument("prefix", metavar="PREFIX", type=click.Path(path_type=Path))
@click.argument("output", metavar="MODEL_DIR", type=NEW_DIR)
@click.option("--genome", is_flag=True,
              help="PREFIX names per-chromosome models PREFIX-<chrom>.json/.h5 (e.g. "
                   "models/avocado for models/avocado-chr1.json ...): write one genome model.")
@click.option("--device", default=None, help="Where to read the model [default: cuda if any].")
@quiet_option
def import_original(prefix: Path, output: Path, genome: bool, device: str | None,
                    quiet: bool) -> None:
    """Import the original Avocado's PREFIX.json + PREFIX.h5 into MODEL_DIR.

    No TensorFlow or Keras is needed. The result is an ordinary model directory (predict,
    train further, serve, export), or with --genome a genome model directory (the layout of
    assemble-genome) in which every chromosome must share the network and the celltype /
    assay factors.

    \b
    Examples:
      avocado import-original roadmap/avocado-pilot model/
      avocado import-original --genome roadmap/avocado genome-model/   # avocado-chr*.json
      avocado export-genome genome-model/ imputed/ -e E065:H3K4me3
    """
    from ..original import import_original_genome, read_original

    if genome:
        from ..genome_wide import GenomeModel

        out = import_original_genome(prefix, output, device=device, progress=not quiet)
        model = GenomeModel.load(out)
        click.echo(f"{len(model.chroms)} chromosomes, {model.regions.n_bins:,} bins, "
                   f"{len(model.biosamples)} biosamples x {len(model.assays)} assays -> {out}")
        return
    model = read_original(prefix, device=device)
    model.save(output)
    click.echo(f"{model!r} -> {output}")


@click.command()
@click.argument("model_path", metavar="MODEL_DIR", type=EXISTING_DIR)
@click.argument("prefix", metavar="PREFIX", type=click.Path(path_type=Path))
@quiet_option
def export_original(model_path: Path, prefix: Path, quiet: bool) -> None:
    """Write MODEL_DIR as the original Avocado saves a model: PREFIX.json + PREFIX.h5.

    A genome model directory (assemble-genome, import-original --genome) becomes one pair per
    chromosome, PREFIX-<chrom>.json + .h5, as the original's published models are.

    \b
    Examples:
      avocado export-original model/ keras/avocado-pilot
      avocado export-original genome-model/ keras/avocado     # keras/avocado-chr1.json ...
    """
    from tqdm.auto import tqdm

    from ..genome_wide import GenomeModel
    from ..model import Avocado
    from ..original import write_original

    if (model_path / "genome.json").is_file():
        genome = GenomeModel.load(model_path, device="cpu")
        for chrom in tqdm(genome.chroms, disable=quiet, desc="exporting", unit="chrom"):
            write_original(genome.chromosome(chrom), f"{prefix}-{chrom}")
        click.echo(f"{len(genome.chroms)} chromosomes -> {prefix}-<chrom>.json/.h5")
        return
    json_path, h5_path = write_original(Avocado.load(model_path, device="cpu"), prefix)
    click.echo(f"{json_path} + {h5_path}")
