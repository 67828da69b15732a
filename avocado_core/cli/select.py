"""``avocado select``: which biosamples to profile next, or which positions to assay (BED)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import EXISTING_DIR, EXISTING_FILE, NEW_FILE, AvocadoGroup, quiet_option, write_table
from .embed import load_annotations

__all__ = ["select"]

_CLASSES = ["promoter", "gene body", "CpG island", "other"]


@click.group(cls=AvocadoGroup)
def select() -> None:
    """Experimental design by facility location on the model's factors.

    \b
    Examples:
      avocado select biosamples model/ store/ --assay H3K27me3 -k 3
      avocado select positions model/ -k 1000 --store store/ --bed picks.bed
    """


def _echo_picks(df, columns: list[str]) -> None:
    shown = df[[c for c in columns if c in df.columns]]
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


@select.command("biosamples")
@click.argument("model_path", metavar="MODEL", type=EXISTING_DIR)
@click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
@click.option("-a", "--assay", required=True, help="The assay to plan.")
@click.option(
    "-k", "k", type=int, default=3, show_default=True, help="How many biosamples to pick."
)
@click.option(
    "--candidate", "candidates", multiple=True,
    help="Pick only among these biosamples (repeatable) [default: all that lack the assay].",
)
@click.option(
    "--query", help="pandas query on the biosample metadata, e.g. \"anatomy == 'BLOOD'\"."
)
@click.option("-o", "--output", type=NEW_FILE, help="Write the picks as TSV.")
def select_biosamples_cmd(
    model_path: Path, store_path: Path, assay: str, k: int, candidates: tuple[str, ...],
    query: str | None, output: Path | None,
) -> None:
    """Rank the biosamples in which to measure ASSAY next.

    Biosamples that already have the assay in STORE count as chosen; the picks are those that
    add the most coverage of the biosample embedding of MODEL.

    \b
    Example:
      avocado select biosamples model/ store/ --assay H3K27me3 -k 3 -o picks.tsv
    """
    from ..model import Avocado
    from ..selection import select_biosamples
    from ..store import TrackStore

    model = Avocado.load(model_path, device="cpu")
    store = TrackStore(store_path)
    picks = select_biosamples(
        model, store, assay, k, candidates=list(candidates) or None, query=query
    )
    _echo_picks(picks, ["rank", "biosample", "gain", "coverage"])
    if output is not None:
        write_table(picks, output)
        click.echo(f"-> {output}")


@select.command("positions")
@click.argument("model_path", metavar="MODEL", type=EXISTING_DIR)
@click.option(
    "-k", "k", type=int, default=1000, show_default=True, help="How many positions to pick."
)
@click.option(
    "--store", "store_path", type=EXISTING_DIR,
    help="Store of the model's region set: adds chrom / start / end (needed for --bed).",
)
@click.option(
    "--resolution", type=click.Choice(["all", "25bp", "250bp", "5kbp"]), default="all",
    show_default=True, help="Which genome factors describe a position.",
)
@click.option(
    "--within", type=click.Choice(_CLASSES), default=None,
    help="Pick only positions of this annotation class (needs --store and annotations).",
)
@click.option("--genes", type=EXISTING_FILE, help="Genes BED / GTF for --within.")
@click.option(
    "--hg19-annotations", "hg19", is_flag=True,
    help="Use the bundled hg19 annotations for --within.",
)
@click.option(
    "--ground-size", type=int, default=20_000, show_default=True,
    help="Positions standing for the genome.",
)
@click.option(
    "--pool-size", type=int, default=5_000, show_default=True,
    help="Candidate positions to pick from.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--output", type=NEW_FILE, help="Write the picks as TSV.")
@click.option("--bed", type=NEW_FILE, help="Write the picks as BED (needs --store).")
@quiet_option
def select_positions_cmd(
    model_path: Path, k: int, store_path: Path | None, resolution: str, within: str | None,
    genes: Path | None, hg19: bool, ground_size: int, pool_size: int, seed: int,
    output: Path | None, bed: Path | None, quiet: bool,
) -> None:
    """Pick K diverse genome positions to assay, by their genome factors.

    \b
    Examples:
      avocado select positions model/ -k 1000 --store store/ --bed picks.bed
      avocado select positions model/ -k 200 --store store/ --hg19-annotations --within promoter
    """
    from ..model import Avocado
    from ..selection import select_positions, write_bed

    if (bed is not None or within is not None) and store_path is None:
        raise click.UsageError("--bed and --within need --store (the model's region set)")
    regions = None
    if store_path is not None:
        from ..store import TrackStore

        regions = TrackStore(store_path).regions
    candidates = None
    if within is not None:
        annotations = load_annotations(genes, None, None, hg19)
        if annotations is None:
            raise click.UsageError("--within needs --genes or --hg19-annotations")
        candidates = annotations.classify_bins(regions) == within
    model = Avocado.load(model_path, device="cpu")
    if regions is not None and regions.n_bins != model.n_positions:
        raise click.UsageError(
            f"{store_path} has {regions.n_bins:,} bins but the model covers "
            f"{model.n_positions:,} positions"
        )
    picks = select_positions(
        model, k, regions, resolution=resolution, candidates=candidates, ground_size=ground_size,
        pool_size=pool_size, seed=seed, progress=not quiet,
    )
    _echo_picks(picks.head(20), ["rank", "bin", "chrom", "start", "end", "gain", "coverage"])
    if len(picks) > 20:
        click.echo(f"... {len(picks) - 20} more")
    if output is not None:
        write_table(picks, output)
        click.echo(f"-> {output}")
    if bed is not None:
        write_bed(picks, bed)
        click.echo(f"-> {bed}")
