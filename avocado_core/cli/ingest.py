"""``avocado ingest``: bigWig files into a track store (created on first use)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import EXISTING_FILE, NEW_DIR, quiet_option

__all__ = ["ingest", "open_or_create_store"]


def _region_set(regions: Path | None, chrom_sizes: Path | None, chroms: str | None, pilot: bool):
    from ..regions import RegionSet

    given = [x for x in (regions, chrom_sizes) if x is not None] + ([True] if pilot else [])
    if len(given) > 1:
        raise click.UsageError("give only one of --regions, --chrom-sizes and --pilot-regions")
    if regions is not None:
        return RegionSet.from_bed(regions)
    if chrom_sizes is not None:
        wanted = [c.strip() for c in chroms.split(",") if c.strip()] if chroms else None
        return RegionSet.from_chrom_sizes(chrom_sizes, chroms=wanted)
    if pilot:
        return RegionSet.roadmap_pilot()
    return None


def _remove_new_store(path: Path, keep_folder: bool) -> None:
    """Undo the creation of a store that a failed first ingest left without a track: the
    folder goes, or only what it holds when it was there (empty) before."""
    import shutil

    if not keep_folder:
        shutil.rmtree(path, ignore_errors=True)
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _read_metadata(path: Path | None):
    if path is None:
        return None
    import pandas as pd

    table = pd.read_csv(path, sep="\t")
    return table.set_index(table.columns[0])


def open_or_create_store(
    path: Path,
    regions: Path | None = None,
    chrom_sizes: Path | None = None,
    chroms: str | None = None,
    pilot: bool = False,
    genome_sizes: Path | None = None,
):
    """Open the store at ``path``, or create it over the region set the options name.

    The genome's chromosome sizes (``genome_sizes``, else ``chrom_sizes``) are recorded in the
    store so that ``avocado export`` can write bigWig headers.
    """
    from ..bigwig import read_chrom_sizes
    from ..store import TrackStore

    region_set = _region_set(regions, chrom_sizes, chroms, pilot)
    sizes_file = genome_sizes or chrom_sizes
    sizes = read_chrom_sizes(sizes_file) if sizes_file is not None else None
    if (path / "catalog.tsv").is_file():
        store = TrackStore(path)
        if region_set is not None and region_set.n_bins != store.n_bins:
            raise click.UsageError(
                f"{path} already holds a store over {store.n_bins:,} bins; the region set "
                f"given has {region_set.n_bins:,}. Leave out the region option, or use a new store."
            )
        if genome_sizes is not None:
            store.set_chrom_sizes(sizes)
        return store
    if region_set is None:
        raise click.UsageError(
            f"{path} is not a track store yet; say which regions it covers with "
            "--regions BED, --chrom-sizes FILE [--chroms chr1,chr2] or --pilot-regions"
        )
    return TrackStore.create(path, region_set, chrom_sizes=sizes)


@click.command()
@click.argument("store_path", metavar="STORE", type=NEW_DIR)
@click.argument("bigwig", required=False, type=EXISTING_FILE)
@click.option("-b", "--biosample", help="Biosample name of BIGWIG.")
@click.option("-a", "--assay", help="Assay name of BIGWIG.")
@click.option(
    "-m", "--manifest", type=EXISTING_FILE,
    help="TSV with columns biosample, assay, path: ingest many files.",
)
@click.option(
    "--regions", type=EXISTING_FILE,
    help="New store: BED file of the intervals to bin.",
)
@click.option(
    "--chrom-sizes", type=EXISTING_FILE,
    help="New store: whole chromosomes from a chrom-sizes file.",
)
@click.option("--chroms", help="With --chrom-sizes: comma-separated chromosomes to keep.")
@click.option(
    "--pilot-regions", is_flag=True, help="New store: the Roadmap pilot region set (hg19)."
)
@click.option(
    "--genome-sizes", type=EXISTING_FILE,
    help="The genome's chrom-sizes file, recorded for bigWig export "
         "(with --regions / --pilot-regions).",
)
@click.option(
    "--transform", type=click.Choice(["arcsinh", "log1p", "none"]), default="arcsinh",
    show_default=True, help="Transform of the stored values, applied to the signal's 25 bp "
    "means (an exported file's values are first brought back to the signal).",
)
@click.option(
    "--allow-missing-chroms", is_flag=True,
    help="Fill chromosomes absent from a bigWig with 0 instead of failing.",
)
@click.option(
    "--biosamples", "biosample_meta", type=EXISTING_FILE,
    help="TSV of biosample metadata (first column: name) to store with the tracks.",
)
@click.option(
    "--assays", "assay_meta", type=EXISTING_FILE,
    help="TSV of assay metadata (first column: name) to store with the tracks.",
)
@click.option("--overwrite", is_flag=True, help="Replace tracks that are already in the store.")
@quiet_option
def ingest(
    store_path: Path,
    bigwig: Path | None,
    biosample: str | None,
    assay: str | None,
    manifest: Path | None,
    regions: Path | None,
    chrom_sizes: Path | None,
    chroms: str | None,
    pilot_regions: bool,
    genome_sizes: Path | None,
    transform: str,
    allow_missing_chroms: bool,
    biosample_meta: Path | None,
    assay_meta: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Bin bigWig files to 25 bp over a region set and add them to STORE.

    The store is created on first use (give its region set); a first run that fails before a
    track is added leaves no store behind. A rerun skips the tracks already ingested from the
    same files, so an interrupted run can simply be restarted; replacing a track by another
    file needs --overwrite. Chromosome names match with or without "chr". A bigWig that
    avocado exported records the transform of its values: they are brought back to the signal
    first, so ingesting an export with its track's transform gives back the stored values.

    \b
    Examples:
      avocado ingest store/ --regions regions.bed --manifest bigwigs.tsv
      avocado ingest store/ H1.H3K4me3.bw -b H1 -a H3K4me3
      avocado ingest store/ --chrom-sizes hg19.sizes --chroms chr21,chr22 -m bigwigs.tsv
    """
    if bigwig is None and manifest is None and biosample_meta is None and assay_meta is None:
        raise click.UsageError("give a BIGWIG file with --biosample and --assay, or --manifest")
    if bigwig is not None and (not biosample or not assay):
        raise click.UsageError("a BIGWIG file needs --biosample and --assay")
    if bigwig is None and (biosample or assay):
        raise click.UsageError("--biosample / --assay name a BIGWIG file; none was given")

    from .. import bigwig as bw

    before = sorted(store_path.iterdir()) if store_path.is_dir() else None
    store = open_or_create_store(
        store_path, regions, chrom_sizes, chroms, pilot_regions, genome_sizes
    )
    added = skipped = 0
    try:
        if biosample_meta is not None or assay_meta is not None:
            store.set_metadata(
                biosamples=_read_metadata(biosample_meta), assays=_read_metadata(assay_meta)
            )
        if bigwig is not None:
            written = bw.ingest_bigwig(
                store, bigwig, biosample, assay, transform=transform, overwrite=overwrite,
                allow_missing_chroms=allow_missing_chroms, progress=not quiet,
            )
            added, skipped = int(written), int(not written)
        if manifest is not None:
            report = bw.ingest_manifest(
                store, manifest, transform=transform, overwrite=overwrite,
                allow_missing_chroms=allow_missing_chroms, progress=not quiet,
            )
            added += int((report["status"] == "ingested").sum())
            skipped += int((report["status"] == "skipped").sum())
    except BaseException:
        if before in (None, []) and not store.experiments(None):
            _remove_new_store(store_path, keep_folder=before is not None)
        raise
    note = f", {skipped} already there" if skipped else ""
    click.echo(
        f"{store_path}: {added} tracks ingested{note}; {len(store.experiments())} observed tracks "
        f"over {store.n_bins:,} bins"
    )
