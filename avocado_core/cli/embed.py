"""``avocado embed``: a 2-D UMAP / PCA projection of a model's factors, to a TSV file."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import EXISTING_DIR, EXISTING_FILE, NEW_FILE, quiet_option, write_table

__all__ = ["embed", "load_annotations"]


def load_annotations(genes: Path | None, tss: Path | None, cpg_islands: Path | None, hg19: bool):
    """Annotations from the files given (BED, or GTF for --genes), or the hg19 set; None if none."""
    if hg19:
        if genes or tss or cpg_islands:
            raise click.UsageError("give either --hg19-annotations or annotation files, not both")
        from ..datasets import hg19_annotations

        return hg19_annotations()
    if genes is None:
        if tss or cpg_islands:
            raise click.UsageError("--tss / --cpg-islands need --genes")
        return None
    from ..annotations import Annotations

    if genes.name.endswith((".gtf", ".gtf.gz")):
        return Annotations.from_gtf(genes)
    return Annotations.from_bed(genes=genes, tss=tss, cpg_islands=cpg_islands)


@click.command()
@click.argument("model_path", metavar="MODEL", type=EXISTING_DIR)
@click.argument("output", type=NEW_FILE)
@click.option(
    "--axis", type=click.Choice(["biosamples", "assays", "genome"]), default="biosamples",
    show_default=True, help="Which factors to project.",
)
@click.option("--method", type=click.Choice(["umap", "pca"]), default="umap", show_default=True)
@click.option(
    "--resolution", type=click.Choice(["all", "25bp", "250bp", "5kbp"]), default="all",
    show_default=True, help="Genome: all 110 factors per bin, or one resolution's table.",
)
@click.option(
    "--n-points", type=int, default=100_000, show_default=True,
    help="Genome: positions sampled (stratified by annotation class when annotations are given).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the sample and of UMAP."
)
@click.option(
    "--store", "store_path", type=EXISTING_DIR,
    help="Store of the model's region set: adds chrom / start to genome points and metadata "
         "columns to biosamples / assays.",
)
@click.option(
    "--genes", type=EXISTING_FILE,
    help="Genome: genes BED (or GENCODE GTF) to stratify positions by class (needs --store).",
)
@click.option("--tss", type=EXISTING_FILE, help="TSS BED (with --genes).")
@click.option("--cpg-islands", type=EXISTING_FILE,
              help="CpG island BED (with --genes).")
@click.option(
    "--hg19-annotations", "hg19", is_flag=True,
    help="Genome: stratify by the bundled hg19 annotations.",
)
@quiet_option
def embed(
    model_path: Path,
    output: Path,
    axis: str,
    method: str,
    resolution: str,
    n_points: int,
    seed: int,
    store_path: Path | None,
    genes: Path | None,
    tss: Path | None,
    cpg_islands: Path | None,
    hg19: bool,
    quiet: bool,
) -> None:
    """Project the biosample, assay or genome factors of MODEL to 2-D and write a TSV.

    Biosamples / assays give columns name, x, y; the genome gives bin, n_bins, x, y, stratum
    (and chrom, start with --store).

    \b
    Examples:
      avocado embed model/ biosamples.umap.tsv --axis biosamples
      avocado embed model/ assays.pca.tsv --axis assays --method pca
      avocado embed model/ genome.tsv --axis genome --store store/ \\
        --hg19-annotations --n-points 20000
    """
    from ..model import Avocado
    from ..projection import model_projection

    annotations = load_annotations(genes, tss, cpg_islands, hg19)
    store = None
    if store_path is not None:
        from ..store import TrackStore

        store = TrackStore(store_path)
    if annotations is not None and axis == "genome" and store is None:
        raise click.UsageError(
            "stratifying genome positions by annotation needs --store (its region set)")

    model = Avocado.load(model_path, device="cpu")
    if store is not None and axis == "genome" and int(store.n_bins) != int(model.n_positions):
        raise click.UsageError(
            f"{store_path} has {store.n_bins:,} bins but the model covers "
            f"{model.n_positions:,} positions"
        )
    strata = None
    if annotations is not None and axis == "genome":
        strata = annotations.classify_bins(store.regions)
    if not quiet and axis == "genome":
        n = min(n_points, model.n_positions)
        click.echo(f"Projecting {n:,} genome positions with {method.upper()} "
                   f"(UMAP on 100,000 points takes minutes) ...", err=True)
    df = model_projection(
        model, axis=axis, method=method, resolution=resolution, n_points=n_points, strata=strata,
        seed=seed,
    )
    if store is not None:
        if axis == "genome":
            chrom, start = store.regions.bin_coordinates(df["bin"].to_numpy())
            df.insert(1, "chrom", chrom)
            df.insert(2, "start", start)
        else:
            meta = store.biosamples if axis == "biosamples" else store.assays
            df = df.join(meta, on="name", rsuffix="_meta")
    write_table(df, output)
    click.echo(f"{len(df):,} {axis} points ({method}) -> {output}")
