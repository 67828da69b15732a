"""``avocado assemble-genome`` and ``avocado export-genome``: the end of the genome-wide workflow.

After ``avocado fit-genome MODEL STORE PARTS --chrom CHROM`` has written one part per chromosome
(independent jobs: parallel processes or separate machines), ``assemble-genome`` gathers the parts
into one genome model directory and ``export-genome`` imputes genome-wide bigWigs from it,
chromosome by chromosome with bounded memory. See ``docs/scale.md``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ._common import experiments_options, named_experiments, quiet_option
from .train import device_option

__all__ = ["assemble_genome", "export_genome"]

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command()
@click.argument("model_path", metavar="MODEL", type=_DIR)
@click.argument("store_path", metavar="STORE", type=_DIR)
@click.argument("output", metavar="OUTPUT", type=click.Path(file_okay=False, path_type=Path))
@click.option("-p", "--parts", "parts", multiple=True, required=True, type=_DIR,
              help="A directory of CHROM/ parts written by fit-genome (repeatable).")
@click.option("-c", "--chrom", "chroms", multiple=True,
              help="Include only this chromosome (repeatable) [default: every one of STORE].")
@quiet_option
def assemble_genome(model_path: Path, store_path: Path, output: Path, parts: tuple[Path, ...],
                    chroms: tuple[str, ...], quiet: bool) -> None:
    """Gather per-chromosome parts of MODEL over STORE into one genome model OUTPUT.

    Every part must come from MODEL (same frozen network and biosample / assay factors) and
    cover its chromosome of STORE exactly; a missing or foreign part is an error. OUTPUT is
    written under a temporary name and renamed into place.

    \b
    Examples:
      avocado fit-genome model/ genome/ parts/ --chrom chr21
      avocado fit-genome model/ genome/ parts/ --chrom chr22      # another job
      avocado assemble-genome model/ genome/ genome-model/ -p parts/
    """
    from ..genome_wide import GenomeModel, assemble

    out = assemble(model_path, store_path, list(parts), output, chroms=list(chroms) or None,
                   progress=not quiet)
    genome = GenomeModel.load(out)
    click.echo(f"{len(genome.chroms)} chromosomes, {genome.regions.n_bins:,} bins -> {out}")


@click.command()
@click.argument("genome_path", metavar="GENOME_MODEL", type=_DIR)
@click.argument("out_dir", metavar="OUT_DIR", type=click.Path(file_okay=False, path_type=Path))
@experiments_options
@click.option("--all", "all_experiments", is_flag=True,
              help="Every biosample x assay pair of the model.")
@click.option("--chrom-sizes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The genome's chrom-sizes file [default: the chromosome ends of the model].")
@click.option("--invert-transform", type=click.Choice(["arcsinh", "log1p"]), default=None,
              help="Write the signal on the original scale [default: the model's scale].")
@click.option("--chunk-bins", type=int, default=None,
              help="Bins predicted at once [default: about 8 MiB of predictions].")
@device_option
@quiet_option
def export_genome(genome_path: Path, out_dir: Path, experiments: tuple[str, ...],
                  experiments_file: Path | None, all_experiments: bool, chrom_sizes: Path | None,
                  invert_transform: str | None, chunk_bins: int | None, device: str | None,
                  quiet: bool) -> None:
    """Impute experiments genome-wide from GENOME_MODEL into OUT_DIR/BIOSAMPLE.ASSAY.bigWig.

    Works chromosome by chromosome and chunk by chunk: memory holds one window of genome
    factors and two chunks of predictions, whatever the size of a chromosome.

    \b
    Examples:
      avocado export-genome genome-model/ imputed/ -e E065:H3K4me3 -e E065:H3K27ac
      avocado export-genome genome-model/ imputed/ --all --invert-transform arcsinh
    """
    from ..genome_wide import GenomeModel

    genome = GenomeModel.load(genome_path, device=device)
    chosen = named_experiments(experiments, experiments_file)
    if all_experiments:
        chosen += [(b, a) for b in genome.biosamples for a in genome.assays]
    chosen = list(dict.fromkeys(chosen))
    if not chosen:
        raise click.UsageError(
            "no experiment given: use -e BIOSAMPLE:ASSAY, --experiments-file or --all")
    paths = genome.export_bigwigs(chosen, out_dir, chrom_sizes=chrom_sizes,
                                  invert_transform=invert_transform, chunk_bins=chunk_bins,
                                  progress=not quiet)
    click.echo(f"{len(paths)} bigWig files over {len(genome.chroms)} chromosomes -> {out_dir}")
