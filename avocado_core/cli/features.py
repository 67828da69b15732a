"""``avocado features``: genome factors and / or imputed signal of regions (a BED), to a TSV."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (
    EXISTING_DIR,
    EXISTING_FILE,
    NEW_FILE,
    parse_experiments,
    quiet_option,
    write_table,
)

__all__ = ["features"]


@click.command()
@click.argument("model_path", metavar="MODEL", type=EXISTING_DIR)
@click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
@click.argument("bed", type=EXISTING_FILE)
@click.argument("output", type=NEW_FILE)
@click.option(
    "--mode", type=click.Choice(["mean", "center"]), default="mean", show_default=True,
    help="Average over each region's bins, or take the bin at its centre.",
)
@click.option(
    "--factors/--no-factors", default=True, show_default=True, help="Include the genome factors."
)
@click.option(
    "-e", "--experiment", "experiments", multiple=True, metavar="BIOSAMPLE:ASSAY",
    help="Include the imputed signal of this experiment (repeatable).",
)
@quiet_option
def features(
    model_path: Path, store_path: Path, bed: Path, output: Path, mode: str, factors: bool,
    experiments: tuple[str, ...], quiet: bool,
) -> None:
    """Features of the regions in BED (genes, elements) from MODEL, for downstream models.

    STORE gives the region set whose bins are the model's positions. One row per region:
    name, chrom, start, end, first_bin, n_bins, then factor_0... and / or BIOSAMPLE.ASSAY
    columns; regions outside the region set get NaN.

    \b
    Examples:
      avocado features model/ store/ genes.bed genes.features.tsv
      avocado features model/ store/ fires.bed fires.tsv --mode center -e E116:H3K4me3 --no-factors
    """
    from ..downstream import export_features
    from ..model import Avocado
    from ..store import TrackStore

    regions = TrackStore(store_path).regions
    model = Avocado.load(model_path, device="cpu")
    if regions.n_bins != model.n_positions:
        raise click.UsageError(
            f"{store_path} has {regions.n_bins:,} bins but the model covers "
            f"{model.n_positions:,} positions"
        )
    df = export_features(
        model, bed, regions, mode=mode, factors=factors, experiments=parse_experiments(experiments),
        progress=not quiet,
    )
    write_table(df, output)
    covered = int((df["first_bin"] >= 0).sum())
    click.echo(f"{len(df):,} regions ({covered:,} covered by the model) "
               f"x {df.shape[1] - 6} features -> {output}")
