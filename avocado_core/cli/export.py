"""``avocado export``: one track of a store (observed or imputed) to a bigWig file."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import EXISTING_DIR, EXISTING_FILE, NEW_FILE

__all__ = ["export"]


@click.command()
@click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
@click.argument("biosample")
@click.argument("assay")
@click.argument("output", type=NEW_FILE)
@click.option(
    "--kind", type=click.Choice(["observed", "imputed"]), default="observed", show_default=True,
    help="Which track of the experiment to export.",
)
@click.option(
    "--chrom-sizes", type=EXISTING_FILE,
    help="The genome's chrom-sizes file for the bigWig header [default: recorded in STORE].",
)
def export(
    store_path: Path, biosample: str, assay: str, output: Path, kind: str, chrom_sizes: Path | None
) -> None:
    """Write the track BIOSAMPLE ASSAY of STORE to the bigWig file OUTPUT.

    Values are written as stored (arcsinh signal unless the store says otherwise), one 25 bp
    interval per bin, and the file records their transform: ingesting it again (with that
    transform, arcsinh by default) over the same bins reproduces them exactly.

    \b
    Examples:
      avocado export store/ E065 H3K4me3 E065.H3K4me3.bw
      avocado export store/ E065 H3K27me3 imputed.bw --kind imputed --chrom-sizes hg19.sizes
    """
    from ..bigwig import export_bigwig, read_chrom_sizes
    from ..store import TrackStore

    store = TrackStore(store_path)
    sizes = read_chrom_sizes(chrom_sizes) if chrom_sizes is not None else None
    output.parent.mkdir(parents=True, exist_ok=True)
    export_bigwig(store, biosample, assay, output, kind=kind, chrom_sizes=sizes)
    click.echo(f"{biosample} {assay} ({kind}) -> {output}")
