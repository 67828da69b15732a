"""``avocado impute``: predictions of a model into the store (kind "imputed") and / or bigWig."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (
    EXISTING_DIR,
    EXISTING_FILE,
    NEW_DIR,
    experiments_options,
    named_experiments,
    parse_experiments,
    quiet_option,
)

__all__ = ["impute", "choose_experiments"]


def choose_experiments(
    model, store, experiments: list[tuple[str, str]], missing: bool, every: bool
) -> list[tuple[str, str]]:
    """The experiments to impute: those named, every unobserved one, or the whole tensor."""
    from ..imputation import missing_experiments

    if every:
        chosen = [(b, a) for b in model.biosamples for a in model.assays]
    elif missing:
        chosen = missing_experiments(model, store)
    else:
        chosen = []
    return list(dict.fromkeys(chosen + list(experiments)))


@click.command()
@click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
@click.argument("model_paths", metavar="MODEL...", nargs=-1, required=True, type=EXISTING_DIR)
@experiments_options
@click.option(
    "--missing", is_flag=True,
    help="Every (biosample, assay) of the model not observed in STORE.",
)
@click.option(
    "--all", "every", is_flag=True,
    help="Every (biosample, assay) of the model, observed or not.",
)
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
@click.option(
    "--spread", is_flag=True,
    help="With several MODELs: also store the members' spread (for an uncertainty band).",
)
@click.option(
    "--calibrate-on", "calibrate_on", multiple=True, metavar="BIOSAMPLE:ASSAY",
    help="Calibrate the 90%% band on this observed experiment that no MODEL trained on "
         "(repeatable; needs --spread).",
)
@click.option("--device", default=None, help="torch device [default: auto].")
@quiet_option
def impute(
    store_path: Path,
    model_paths: tuple[Path, ...],
    experiments: tuple[str, ...],
    experiments_file: Path | None,
    missing: bool,
    every: bool,
    into_store: bool,
    bigwig_dir: Path | None,
    chrom_sizes: Path | None,
    overwrite: bool,
    spread: bool,
    calibrate_on: tuple[str, ...],
    device: str | None,
    quiet: bool,
) -> None:
    """Impute experiments with MODEL over the region set of STORE.

    A MODEL saved as an ensemble (avocado train saves 3 models by default) imputes the mean
    of its members, and so do several MODEL directories (models of one tensor trained from
    different seeds): an ensemble, whose squared error is never above the members' average.
    --spread also stores how far the members disagree, and --calibrate-on turns that into a
    90% band calibrated on held-out experiments (the app draws it).

    Choose one experiment or a list (-e, --experiments-file), every missing one (--missing) or
    the whole tensor (--all). Predictions go into STORE as "imputed" tracks beside the observed
    ones and / or into bigWig files. Imputed tracks already in STORE are skipped unless
    --overwrite.

    \b
    Examples:
      avocado impute store/ model/ -e E065:H3K27me3
      avocado impute store/ model/ --missing --bigwig-dir imputed/
      avocado impute store/ model/ --all --no-store --bigwig-dir imputed/
      avocado impute store/ model-s0/ model-s100/ model-s200/ --missing
      avocado impute store/ model/ --all --spread --calibrate-on E017:H3K4me1
    """
    from ..ensemble import AvocadoEnsemble, member_paths
    from ..imputation import impute_experiments
    from ..model import Avocado
    from ..store import TrackStore

    chosen_input = named_experiments(experiments, experiments_file)
    if not chosen_input and not missing and not every:
        raise click.UsageError(
            "say what to impute: -e BIOSAMPLE:ASSAY, --experiments-file, --missing or --all"
        )
    if not into_store and bigwig_dir is None:
        raise click.UsageError("--no-store needs --bigwig-dir, or nothing would be written")
    if calibrate_on and not spread:
        raise click.UsageError("--calibrate-on needs --spread (the band is built from it)")
    members = [p for path in model_paths for p in member_paths(path)]
    if spread and (len(members) < 2 or not into_store):
        raise click.UsageError("--spread needs an ensemble (2 or more models) and the store "
                               "(no --no-store)")

    store = TrackStore(store_path)
    if len(members) == 1:
        model = Avocado.load(members[0], device=device)
    else:
        model = AvocadoEnsemble.load(model_paths, device=device)  # each with its members
    chosen = choose_experiments(model, store, chosen_input, missing, every)
    done = impute_experiments(
        model, store, chosen, into_store=into_store, bigwig_dir=bigwig_dir,
        chrom_sizes=chrom_sizes, overwrite=overwrite,
        source="avocado:" + ",".join(str(p.resolve()) for p in model_paths), spread=spread,
        progress=not quiet,
    )
    skipped = len(chosen) - len(done)
    where = [str(store_path)] if into_store else []
    where += [str(bigwig_dir)] if bigwig_dir is not None else []
    note = f" ({skipped} already imputed, skipped)" if skipped else ""
    click.echo(f"Imputed {len(done)} experiments into {' and '.join(where)}{note}")
    if calibrate_on:
        from ..uncertainty import calibrate_store_band

        cal = calibrate_store_band(store, parse_experiments(calibrate_on))
        click.echo(f"Calibrated the {cal.level:.0%} band on {len(cal.experiments)} held-out "
                   f"experiments: half-width {cal.scale:.3g} x (spread + {cal.floor:.3g})")
