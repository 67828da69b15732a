"""``avocado impute``: predictions of a model into the store (kind "imputed") and / or bigWig."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (
    EXISTING_DIR, EXISTING_FILE, NEW_DIR, parse_experiments, quiet_option,
    read_experiment_list,
)

__all__ = ["impute", "choose_experiments"]

#: Bytes of predictions held at once.
PREDICT_BYTES = 256 * 2**20


def choose_experiments(
    model, store, experiments: list[tuple[str, str]], missing: bool, every: bool
) -> list[tuple[str, str]]:
    """The experiments to impute: those named, every unobserved one, or the whole tensor."""
    tensor = [(b, a) for b in model.biosamples for a in model.assays]
    if every:
        chosen = tensor
    elif missing:
        observed = set(store.experiments())
        chosen = [k for k in tensor if k not in observed]
    else:
        chosen = []
    known_b, known_a = set(model.biosamples), set(model.assays)
    for b, a in experiments:
        if b not in known_b:
            raise click.BadParameter(
                f"biosample {b!r} is not in the model; it knows {', '.join(model.biosamples)}",
                param_hint="--experiment",
            )
        if a not in known_a:
            raise click.BadParameter(
                f"assay {a!r} is not in the model; it knows {', '.join(model.assays)}",
                param_hint="--experiment",
            )
    seen = set(chosen)
    chosen += [k for k in dict.fromkeys(experiments) if k not in seen]
    return chosen


@click.command()
@click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
@click.argument("model_path", metavar="MODEL", type=EXISTING_DIR)
@click.option(
    "-e", "--experiment", "experiments", multiple=True, metavar="BIOSAMPLE:ASSAY",
    help="An experiment to impute (repeatable).",
)
@click.option(
    "--experiments-file", type=EXISTING_FILE,
    help="File of experiments, one 'BIOSAMPLE<TAB>ASSAY' per line.",
)
@click.option("--missing", is_flag=True, help="Every (biosample, assay) of the model not observed in STORE.")
@click.option("--all", "every", is_flag=True, help="Every (biosample, assay) of the model, observed or not.")
@click.option(
    "--store/--no-store", "into_store", default=True, show_default=True,
    help="Write the predictions into STORE as imputed tracks.",
)
@click.option(
    "--bigwig-dir", type=NEW_DIR,
    help="Also write BIOSAMPLE.ASSAY.imputed.bw files into this folder.",
)
@click.option(
    "--chrom-sizes", type=EXISTING_FILE,
    help="The genome's chrom-sizes file for the bigWig headers [default: recorded in STORE].",
)
@click.option("--overwrite", is_flag=True, help="Replace imputed tracks already in STORE.")
@click.option("--device", default=None, help="torch device [default: auto].")
@quiet_option
def impute(
    store_path: Path,
    model_path: Path,
    experiments: tuple[str, ...],
    experiments_file: Path | None,
    missing: bool,
    every: bool,
    into_store: bool,
    bigwig_dir: Path | None,
    chrom_sizes: Path | None,
    overwrite: bool,
    device: str | None,
    quiet: bool,
) -> None:
    """Impute experiments with MODEL over the region set of STORE.

    Choose one experiment or a list (-e, --experiments-file), every missing one (--missing) or
    the whole tensor (--all). Predictions go into STORE as "imputed" tracks beside the observed
    ones and / or into bigWig files. Imputed tracks already in STORE are skipped unless
    --overwrite.

    \b
    Examples:
      avocado impute store/ model/ -e E065:H3K27me3
      avocado impute store/ model/ --missing --bigwig-dir imputed/
      avocado impute store/ model/ --all --no-store --bigwig-dir imputed/
    """
    from ..model import Avocado
    from ..store import TrackStore

    chosen_input = parse_experiments(experiments)
    if experiments_file is not None:
        chosen_input += read_experiment_list(experiments_file)
    if not chosen_input and not missing and not every:
        raise click.UsageError("say what to impute: -e BIOSAMPLE:ASSAY, --experiments-file, --missing or --all")
    if not into_store and bigwig_dir is None:
        raise click.UsageError("--no-store needs --bigwig-dir, or nothing would be written")

    store = TrackStore(store_path)
    model = Avocado.load(model_path, device=device)
    if int(model.n_positions) != int(store.n_bins):
        raise click.UsageError(
            f"the model covers {model.n_positions:,} positions but {store_path} has "
            f"{store.n_bins:,} bins; impute with a model trained (or genome-fitted) on this region set"
        )
    chosen = choose_experiments(model, store, chosen_input, missing, every)
    if into_store and not overwrite and bigwig_dir is None:
        todo = [k for k in chosen if not store.has_track(*k, kind="imputed")]
        skipped = len(chosen) - len(todo)
        chosen = todo
    else:
        skipped = 0
    if bigwig_dir is not None:
        from ..bigwig import _default_chrom_sizes, read_chrom_sizes, write_bigwig

        if chrom_sizes is not None:
            sizes = read_chrom_sizes(chrom_sizes)
        else:
            sizes = store.chrom_sizes or _default_chrom_sizes(store.regions)
        if sizes is None:
            raise click.UsageError(
                f"the chromosome sizes of the genome of {store_path} are not recorded; "
                "give them with --chrom-sizes FILE"
            )
        bigwig_dir.mkdir(parents=True, exist_ok=True)

    source = f"avocado:{model_path.resolve()}"
    from tqdm.auto import tqdm

    # A few experiments per predict_many call share the genome term; memory stays ~256 MB.
    per_call = int(max(1, min(8, PREDICT_BYTES // (4 * max(store.n_bins, 1)))))
    bar = tqdm(total=len(chosen), desc="Imputing", unit="track", disable=quiet or len(chosen) < 2)
    for i in range(0, len(chosen), per_call):
        batch = chosen[i : i + per_call]
        for (b, a), values in zip(batch, model.predict_many(batch)):
            if into_store and (overwrite or not store.has_track(b, a, kind="imputed")):
                store.add_track(b, a, values, kind="imputed", source=source, transform="arcsinh",
                                overwrite=overwrite)
            if bigwig_dir is not None:
                write_bigwig(values, store.regions, bigwig_dir / f"{b}.{a}.imputed.bw", sizes)
        bar.update(len(batch))
    bar.close()
    where = [str(store_path)] if into_store else []
    where += [str(bigwig_dir)] if bigwig_dir is not None else []
    note = f" ({skipped} already imputed, skipped)" if skipped else ""
    click.echo(f"Imputed {len(chosen)} experiments into {' and '.join(where)}{note}")
