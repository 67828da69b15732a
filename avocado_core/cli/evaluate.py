"""``avocado evaluate``: held-out evaluation of the model against the baselines on a store."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from ._common import EXISTING_DIR, EXISTING_FILE, NEW_DIR, quiet_option
from .embed import load_annotations
from .train import check_fixed_settings, device_option, fit_options, model_kwargs, model_options

__all__ = ["evaluate", "command_line", "parse_select"]


def command_line(argv: list[str]) -> str:
    """``avocado ARGS`` as a shell command, without ``--notes`` (the summary prints them)."""
    words = list(argv)
    for i, word in enumerate(words):
        if word == "--notes":
            del words[i : i + 2]
            break
        if word.startswith("--notes="):
            del words[i]
            break
    return "avocado " + shlex.join(words)


#: --select names that differ from the library's setting names.
_SELECT_ALIASES = {"epochs": "n_epochs"}


def parse_select(items: tuple[str, ...]) -> dict[str, list[Any]]:
    """``("biosample-decay=0,0.1", "epochs=30,45")`` -> ``{"biosample_decay": [0, 0.1], ...}``.

    Each value is read as JSON when it is (numbers, ``null``), else kept as a string
    (``residual``); ``none`` means None.
    """
    out: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise click.BadParameter(
                f"{item!r}; expected NAME=V1,V2,... (e.g. biosample-decay=0,0.1)",
                param_hint="--select")
        name = _SELECT_ALIASES.get(name, name)
        if name in out:
            raise click.BadParameter(f"{name} is selected twice", param_hint="--select")
        out[name] = [_select_value(v.strip()) for v in values.split(",")]
    return out


def _select_value(text: str) -> Any:
    if text.lower() == "none":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@click.command()
@click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
@click.argument("out_dir", metavar="OUT_DIR", type=NEW_DIR)
@click.option(
    "--folds", type=int, default=5, show_default=True,
    help="Number of folds (each leaves every biosample and assay some training track); "
         "0 = leave one experiment out.",
)
@model_options
@fit_options
@click.option(
    "--models", "n_models", type=click.IntRange(min=1), default=3, show_default=True,
    help="Models trained per fold from seeds SEED, SEED+100, ... (the settings chosen once, "
         "by the first), as avocado train does; the imputation scored is their mean (an "
         "ensemble).",
)
@click.option(
    "--select", "select", multiple=True, metavar="NAME=V1,V2,...",
    help="Nested model selection (repeatable): candidate values of a setting (epochs, "
         "average-from, biosample-decay, average-activity, or another model option), chosen "
         "per fold by the validation MSE (or --select-by) on a split of that fold's training "
         "tracks; every combination is tried.",
)
@click.option(
    "--inner-folds", type=click.IntRange(min=2), default=5, show_default=True,
    help="With --select: folds of each fold's training tracks (one validates).",
)
@click.option(
    "--inner-splits", type=click.IntRange(min=1), default=1, show_default=True,
    help="With --select: inner folds that validate in turn (each costs a model per candidate).",
)
@click.option(
    "--per-biosample", is_flag=True,
    help="With --select: choose the prediction settings (activity-blend, smoothing) per "
         "biosample, on that biosample's own validation tracks (use --inner-splits equal to "
         "--inner-folds, so that every biosample has some).",
)
@click.option(
    "--select-by", type=click.Choice(["mse", "pearson", "mse1obs", "match1"]), default="mse",
    show_default=True,
    help="With --select: the validation metric that chooses (also per biosample): the error "
         "everywhere, the correlation, or the error / overlap on the top 1% of observed bins "
         "(the peaks).",
)
@click.option(
    "--selection-only", is_flag=True,
    help="With --select: run only the nested selection (every candidate's validation MSE "
         "per fold, in PREFIX-selection.tsv / .md); train no final model and read no held-out "
         "track. A later run with the same settings and cache reuses it.",
)
@device_option
@click.option(
    "--baseline", "baselines", multiple=True,
    type=click.Choice(["average_activity", "smoothed_average_activity", "assay_mean"]),
    help="Baselines to score beside the model (repeatable; smoothed_average_activity: its "
         "moving mean over 9 bins, the fair reference for --smoothing) "
         "[default: average_activity and assay_mean].",
)
@click.option("--genes", type=EXISTING_FILE,
              help="Genes BED (or GTF): adds mseprom / msegene.")
@click.option("--tss", type=EXISTING_FILE, help="TSS BED (with --genes).")
@click.option("--enhancers", type=EXISTING_FILE,
              help="Enhancer BED: adds mseenh.")
@click.option("--hg19-annotations", "hg19", is_flag=True,
              help="Use the bundled hg19 genes for mseprom / msegene.")
@click.option("--prefix", default="evaluation", show_default=True, help="Stem of the output files.")
@click.option("--cache", "cache", type=NEW_DIR, default=None,
              help="Folder of finished folds, reused by a rerun with the same settings "
                   "[default: OUT_DIR/folds].")
@click.option("--notes", default=None, help="A paragraph added to the markdown summary.")
@quiet_option
def evaluate(
    store_path: Path,
    out_dir: Path,
    folds: int,
    config: str,
    loop: dict[str, Any],
    n_models: int,
    select: tuple[str, ...],
    inner_folds: int,
    inner_splits: int,
    per_biosample: bool,
    select_by: str,
    selection_only: bool,
    device: str | None,
    baselines: tuple[str, ...],
    genes: Path | None,
    tss: Path | None,
    enhancers: Path | None,
    hg19: bool,
    prefix: str,
    cache: Path | None,
    notes: str | None,
    quiet: bool,
    **arch: Any,
) -> None:
    """Hold out every observed track of STORE once, train on the rest, score model and baselines.

    Writes OUT_DIR/PREFIX.tsv (one row per experiment and method), PREFIX.md (means per method
    and assay, and the tracks where the model beats each baseline) and PREFIX.png; with
    --select also PREFIX-selection.tsv (every candidate's validation MSE per fold). Finished
    folds are kept in OUT_DIR/folds/, so a rerun with the same settings resumes. With
    --select and --selection-only, only the selection runs (PREFIX-selection.tsv and .md):
    a grid can be studied without ever scoring the held-out tracks.

    \b
    Examples:
      avocado evaluate store/ evaluation/ --folds 0 --epochs 10
      avocado evaluate store/ evaluation/ --folds 5 --config small --hg19-annotations
      avocado evaluate store/ evaluation/ --epochs 45 --average-from 10 --models 3
      avocado evaluate store/ evaluation/ --average-activity input --average-from 10 \\
          --select biosample-decay=0,0.1 --select epochs=30,45 --select activity-blend=0,0.25 \\
          --select smoothing=1,5,9 --baseline average_activity \\
          --baseline smoothed_average_activity
      avocado evaluate store/ study/ --average-activity input --select n-nodes=64,128 \\
          --select activity-blend=0.25,0.5 --inner-splits 2 --selection-only
      avocado evaluate store/ evaluation/ --average-activity input --select average-from=2,5 \\
          --select activity-blend=0.25,0.5,0.75 --select smoothing=5,9,13 --inner-splits 5 \\
          --per-biosample
      avocado evaluate store/ peaks/ --average-activity input --select average-from=2,10 \\
          --select activity-blend=0,0.5 --select smoothing=1,5 --select-by mse1obs
      avocado fetch roadmap-pilot pilot/ && avocado evaluate pilot/ results/ --batch-size 40000
    """
    from ..evaluation import evaluate_to_dir
    from ..store import TrackStore

    if selection_only and not select:
        raise click.UsageError("--selection-only needs --select (the candidates to score)")
    if select_by != "mse" and not select:
        raise click.UsageError("--select-by needs --select (the candidates to choose from)")
    if per_biosample and not select:
        raise click.UsageError("--per-biosample needs --select (activity-blend and / or "
                               "smoothing candidates to choose from per biosample)")
    store = TrackStore(store_path)
    overrides = model_kwargs(arch)
    if not select:  # a selection of them turns the choice off
        check_fixed_settings(loop["choose_settings"], overrides)
    model_config: Any = {"preset": config, **overrides} if overrides else config
    # Record the command line in the summary when run as `avocado` (not inside a test runner).
    from_shell = Path(sys.argv[0]).name in ("avocado", "__main__.py")
    command = command_line(sys.argv[1:]) if from_shell else None
    common = dict(
        n_folds=None if folds == 0 else folds,
        config=model_config,
        n_epochs=loop["n_epochs"],
        epoch_size=loop["epoch_size"],
        fit_kwargs={k: loop[k] for k in ("sampling", "average_from", "choose_settings")},
        seed=loop["seed"],
        select=parse_select(select),
        inner_folds=inner_folds,
        inner_splits=inner_splits,
        per_biosample=per_biosample,
        select_by=select_by,
        cache_dir=cache if cache is not None else out_dir / "folds",
        device=device,
        progress=not quiet,
    )
    if selection_only:
        _selection_only(store, out_dir, prefix, command, **common)
        return
    # the masks only score held-out tracks: the selection alone needs none
    masks: dict[str, Any] = {}
    annotations = load_annotations(genes, tss, None, hg19)
    if annotations is not None:
        masks["promoter"] = annotations.promoter_bins(store.regions)
        masks["gene"] = annotations.gene_body_bins(store.regions)
    if enhancers is not None:
        from ..annotations import interval_mask
        from ..downstream import read_regions

        masks["enhancer"] = interval_mask(read_regions(enhancers), store.regions)
    results = evaluate_to_dir(
        store,
        out_dir,
        prefix=prefix,
        command=command,
        notes=notes,
        n_models=n_models,
        baselines=baselines or ("average_activity", "assay_mean"),
        masks=masks or None,
        **common,
    )
    means = results.groupby("method")[["mse", "pearson"]].mean()
    for method, row in means.iterrows():
        click.echo(f"{method:<18} mean MSE {row['mse']:.4f}  mean Pearson {row['pearson']:.3f}")
    click.echo(f"Results in {out_dir / (prefix + '.tsv')}, summary in {out_dir / (prefix + '.md')}")


def _selection_only(store, out_dir: Path, prefix: str, command: str | None,
                    **kwargs: Any) -> None:
    """``--selection-only``: write PREFIX-selection.tsv / .md and print the best candidates."""
    from .. import _io
    from ..evaluation import SELECTION_METRICS, nested_selection, summarize_selection
    from ..metrics import HIGHER_IS_BETTER

    scores = nested_selection(store, **kwargs)
    out_dir.mkdir(parents=True, exist_ok=True)
    _io.write_text(out_dir / f"{prefix}-selection.tsv",
                   scores.to_csv(sep="\t", index=False, float_format="%.6g"))
    _io.write_text(out_dir / f"{prefix}-selection.md", summarize_selection(scores, command))
    metric = kwargs["select_by"]
    means = scores.groupby("params", sort=False)[f"val_{metric}"].mean().sort_values(
        ascending=metric not in HIGHER_IS_BETTER, kind="stable")
    click.echo(f"Best candidates by mean validation {SELECTION_METRICS[metric]} over the folds:")
    for params, value in means.head(5).items():
        click.echo(f"  {value:.4f}  {params}")
    click.echo(f"Every candidate in {out_dir / (prefix + '-selection.md')}")
