"""``avocado fetch``: the project's public datasets, from the mirror or downloaded (checksummed)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import NEW_DIR, quiet_option

__all__ = ["fetch"]


@click.command()
@click.argument("dataset", type=click.Choice(["roadmap-pilot", "hg19-annotations",
                                              "encode2018-layout"]))
@click.argument("path", required=False, type=NEW_DIR)
@quiet_option
def fetch(dataset: str, path: Path | None, quiet: bool) -> None:
    """Get a public dataset: the Roadmap pilot tracks as a store at PATH, the hg19 annotations,
    or the layout tables of the ENCODE 2018 compendia (copied into PATH if given).

    Files come from $AVOCADO_DATA_MIRROR when it is set, else from their public URLs (checked
    against SHA-256 sums) into the cache ($AVOCADO_CACHE).

    \b
    Examples:
      avocado fetch roadmap-pilot pilot-store/
      avocado evaluate pilot-store/ evaluation/ --folds 0
      avocado fetch hg19-annotations
      avocado fetch encode2018-layout encode2018/
    """
    from .. import datasets

    if dataset == "roadmap-pilot":
        store = datasets.roadmap_pilot(path, progress=not quiet)
        click.echo(
            f"{store.path}: {len(store.experiments())} observed tracks, "
            f"{len(store.biosamples)} biosamples x {len(store.assays)} assays, "
            f"{store.n_bins:,} bins"
        )
    elif dataset == "encode2018-layout":
        from .._io import write_bytes
        from ..encode_layout import LAYOUT_FILES, encode2018_layout

        for table in LAYOUT_FILES:
            layout = encode2018_layout(table, progress=not quiet)
            where = layout.path
            if path is not None:
                where = write_bytes(path / layout.path.name, layout.path.read_bytes())
            click.echo(f"{where}: {layout.name}, {layout.summary}")
    else:
        if path is not None:
            raise click.UsageError("hg19-annotations takes no PATH (the files are cached)")
        ann = datasets.hg19_annotations(progress=not quiet)
        click.echo(f"hg19 annotations: {len(ann.genes):,} genes, {len(ann.exons):,} exons, "
                   f"{len(ann.tss):,} TSSs, {len(ann.cpg_islands):,} CpG islands")
