"""``avocado train``: fit an Avocado model on the observed tracks of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import EXISTING_DIR, NEW_DIR, parse_experiments, quiet_option

__all__ = ["train", "model_options", "model_kwargs", "fit_options", "device_option", "precision_option", "max_memory_option",
           "memory_limit", "build_model"]

#: Architecture / optimizer options shared by ``train`` and ``evaluate``: (flag, kwarg, type, help).
_MODEL_OPTIONS = [
    ("--n-layers", "n_layers", int, "Hidden layers of the network."),
    ("--n-nodes", "n_nodes", int, "Nodes per hidden layer."),
    ("--n-biosample-factors", "n_biosample_factors", int, "Biosample embedding size."),
    ("--n-assay-factors", "n_assay_factors", int, "Assay embedding size."),
    ("--n-25bp-factors", "n_25bp_factors", int, "Genome factors at 25 bp."),
    ("--n-250bp-factors", "n_250bp_factors", int, "Genome factors at 250 bp."),
    ("--n-5kbp-factors", "n_5kbp_factors", int, "Genome factors at 5 kbp."),
    ("--batch-size", "batch_size", int, "Training samples per step."),
    ("--learning-rate", "learning_rate", float, "Adam learning rate."),
    ("--biosample-decay", "biosample_decay", float,
     "Weight decay of the biosample embedding per step (0: none)."),
]


def model_options(func):
    """Decorate a command with --config and the architecture overrides."""
    for flag, name, typ, text in reversed(_MODEL_OPTIONS):
        func = click.option(flag, name, type=typ, default=None, help=f"{text} [default: from --config]")(func)
    func = click.option(
        "--config", "config", type=click.Choice(["small", "paper"]), default="small",
        show_default=True,
        help="small: the CPU-friendly tutorial model; paper: the published architecture.",
    )(func)
    return func


def model_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The architecture overrides the user gave (None = keep the config's value)."""
    return {name: options[name] for _, name, _, _ in _MODEL_OPTIONS if options.get(name) is not None}


def fit_options(func):
    """Decorate a command with the training-loop options (epochs, epoch size, sampling, seed)."""
    opts = [
        click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True,
                     help="Training epochs."),
        click.option(
            "--epoch-size", type=click.IntRange(min=1), default=None,
            help="Batches per epoch [default: one pass over the positions].",
        ),
        click.option(
            "--sampling", type=click.Choice(["sequential", "permuted", "random"]),
            default="sequential", show_default=True, help="Order of the training samples.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Random seed."),
        click.option(
            "--average-from", type=int, default=None, metavar="N",
            help="End with the mean of the parameters of every epoch after the N-th "
            "(stochastic weight averaging) [default: the last epoch's].",
        ),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


device_option = click.option(
    "--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 [default: cuda if available]."
)
max_memory_option = click.option(
    "--max-memory", default=None, metavar="SIZE",
    help="RAM budget for the training data, e.g. 4G; larger data streams from the store "
         "(out-of-core) [default: gather up to 2 GiB].",
)


def memory_limit(max_memory: str | None):
    """Context in which fits keep at most ``max_memory`` of data in RAM (no-op for None)."""
    import contextlib

    if max_memory is None:
        return contextlib.nullcontext()
    from ..streaming import memory_budget, parse_size

    parse_size(max_memory)  # a bad size fails here, before any work
    return memory_budget(max_memory)


precision_option = click.option(
    "--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
    help="Arithmetic precision of training (bf16: faster on recent CPUs / GPUs).",
)


def build_model(store: Any, experiments: list[tuple[str, str]], config: str, **kwargs: Any) -> Any:
    """An untrained Avocado over the biosamples / assays of ``experiments`` (in store order)."""
    from ..model import Avocado

    used_b = {b for b, _ in experiments}
    used_a = {a for _, a in experiments}
    biosamples = [b for b in store.biosamples.index if b in used_b] + sorted(used_b - set(store.biosamples.index))
    assays = [a for a in store.assays.index if a in used_a] + sorted(used_a - set(store.assays.index))
    if config == "small":
        return Avocado.small(biosamples, assays, store.n_bins, **kwargs)
    return Avocado(biosamples, assays, store.n_bins, **kwargs)


@click.command()
@click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
@click.argument("model_path", metavar="MODEL", type=NEW_DIR)
@model_options
@fit_options
@device_option
@precision_option
@max_memory_option
@click.option(
    "--holdout", "-x", "holdout", multiple=True, metavar="BIOSAMPLE:ASSAY",
    help="Leave this observed experiment out of training and report its MSE (repeatable).",
)
@click.option("--early-stopping", type=click.IntRange(min=1), default=None, help="Stop after N epochs without a better validation MSE.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None, help="Save a checkpoint into MODEL/checkpoints every N epochs.")
@click.option("--overwrite", is_flag=True, help="Replace the model in MODEL (kept until the new one is saved).")
@quiet_option
def train(
    store_path: Path,
    model_path: Path,
    config: str,
    epochs: int,
    epoch_size: int | None,
    sampling: str,
    seed: int,
    average_from: int | None,
    device: str | None,
    precision: str,
    max_memory: str | None,
    holdout: tuple[str, ...],
    early_stopping: int | None,
    checkpoint_every: int | None,
    overwrite: bool,
    quiet: bool,
    **arch: Any,
) -> None:
    """Train a model on the observed tracks of STORE and save it to MODEL.

    With --checkpoint-every, an interrupted run resumes from its last checkpoint when the same
    command is run again.

    \b
    Examples:
      avocado train store/ model/ --config small --epochs 10
      avocado train store/ model/ --holdout E065:H3K4me3 --epochs 20 --seed 1
      avocado train store/ model/ --epochs 60 --average-from 30
      avocado train store/ model/ --config paper --device cuda --precision bf16
    """
    from .._paths import writable_dir
    from ..store import TrackStore

    if (model_path / "config.json").is_file() and not overwrite:
        raise click.UsageError(f"{model_path} holds a model already; use --overwrite to replace it")
    writable_dir(model_path, "model folder")  # now, not after training
    store = TrackStore(store_path)
    held = parse_experiments(holdout)
    for b, a in held:
        if not store.has_track(b, a):
            raise click.BadParameter(f"{b}:{a} is not an observed track of {store_path}", param_hint="--holdout")
    tracks = store.tracks()
    train_keys = [k for k in store.experiments() if k not in set(held)]
    if not train_keys:
        raise click.UsageError(f"{store_path} has no observed tracks to train on")
    data = {k: tracks[k] for k in train_keys}
    validation = {k: tracks[k] for k in held} or None

    model = build_model(
        store, train_keys, config, seed=seed, device=device, precision=precision, **model_kwargs(arch)
    )
    with memory_limit(max_memory):
        history = model.fit(
            data,
            n_epochs=epochs,
            epoch_size=epoch_size,
            sampling=sampling,
            validation=validation,
            seed=seed,
            early_stopping=early_stopping,
            average_from=average_from,
            checkpoint_dir=model_path / "checkpoints" if checkpoint_every else None,
            checkpoint_every=checkpoint_every,
            progress=not quiet,
        )
    model.save(model_path)
    summary = f"{len(train_keys)} tracks, {len(history.get('loss', []))} epochs"
    if history.get("loss"):
        summary += f", final loss {history['loss'][-1]:.4f}"
    if history.get("val_mse"):
        summary += f", held-out MSE {history['val_mse'][-1]:.4f}"
    click.echo(f"Saved model to {model_path} ({summary})")
