"""``avocado train``: fit an Avocado model on the observed tracks of a store.

With ``--distributed``, the same command trains data-parallel over the processes ``torchrun``
starts (:mod:`avocado_core.distributed`); every option means what it means without it::

    torchrun --standalone --nproc-per-node 2 -m avocado_core train store/ model/ --distributed
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ._common import EXISTING_DIR, NEW_DIR, parse_experiments, quiet_option

__all__ = ["train", "model_options", "model_kwargs", "parse_biosample_settings", "fit_options",
           "device_option", "precision_option", "max_memory_option", "memory_limit",
           "check_fixed_settings", "PRESET_NAMES"]

#: The names of ``avocado_core.model.PRESETS`` (written out: the CLI starts without torch).
PRESET_NAMES = ["small", "paper", "original-small"]
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
    ("--average-activity", "average_activity", click.Choice(["input", "residual", "none"]),
     "Use each assay's mean over the training biosamples: as an input of the network, or "
     "as a baseline the network corrects (residual); none: not at all."),
    ("--activity-blend", "activity_blend", float,
     "With --average-activity: predict (1 - B) x model + B x average activity (0: none)."),
    ("--smoothing", "smoothing", click.IntRange(min=1),
     "Impute a centred moving mean over this many 25 bp bins of the model's output (1: none)."),
]


def model_options(func):
    """Decorate a command with --config and the architecture overrides."""
    for flag, name, typ, text in reversed(_MODEL_OPTIONS):
        func = click.option(
            flag, name, type=typ, default=None, help=f"{text} [default: from --config]"
        )(func)
    func = click.option(
        "--config", "config", type=click.Choice(PRESET_NAMES), default="small",
        show_default=True,
        help="small: the best recipe measured here (the tutorial's CPU-sized network, average "
        "activity as an input, batches of 40,000 at lr 0.002); paper: the published "
        "configuration; original-small: the original tutorial's exactly.",
    )(func)
    return func


def model_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The architecture overrides the user gave (None = keep the config's value; the word
    ``none`` of --average-activity is None, the model without average activity)."""
    return {
        name: None if options[name] == "none" else options[name]
        for _, name, _, _ in _MODEL_OPTIONS
        if options.get(name) is not None
    }


def parse_biosample_settings(items: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``("E017:activity-blend=0.75", "E017:smoothing=13")`` -> ``{"E017": {...: 0.75, ...}}``."""
    from ..model import PREDICTION_SETTINGS

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        biosample, _, setting = item.partition(":")
        name, sep, value = setting.partition("=")
        name = name.strip().replace("-", "_")
        if not biosample or not sep or name not in PREDICTION_SETTINGS:
            raise click.BadParameter(
                f"{item!r}; expected BIOSAMPLE:NAME=VALUE with NAME one of "
                f"{', '.join(n.replace('_', '-') for n in PREDICTION_SETTINGS)} "
                f"(e.g. E017:activity-blend=0.75)", param_hint="--biosample-setting")
        try:
            number = float(value) if name == "activity_blend" else int(value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: {value!r} is not a number",
                                     param_hint="--biosample-setting") from None
        out.setdefault(biosample, {})[name] = number
    return out


#: The training-loop options of :func:`fit_options`: parameter name -> ``Avocado.fit``'s name.
_LOOP_OPTIONS = {"epochs": "n_epochs", "epoch_size": "epoch_size", "sampling": "sampling",
                 "seed": "seed", "average_from": "average_from", "choose": "choose_settings"}


def fit_options(func=None, *, epochs: int = 30, choose: bool = True):
    """Decorate a command with the training-loop options (epochs, epoch size, sampling, seed,
    averaging window) and, with ``choose``, ``--choose/--no-choose`` (``fit``'s automatic
    choice of settings). ``@fit_options`` or ``@fit_options(epochs=10, choose=False)``.

    The command receives them as one argument, ``loop``: the keyword arguments of
    ``Avocado.fit`` they set (``n_epochs``, ``epoch_size``, ``sampling``, ``seed``,
    ``average_from`` and, with ``choose``, ``choose_settings``)."""
    if func is None:
        return lambda f: fit_options(f, epochs=epochs, choose=choose)

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        loop = {fit_name: kwargs.pop(name) for name, fit_name in _LOOP_OPTIONS.items()
                if name in kwargs}
        return func(*args, loop=loop, **kwargs)

    averaging = ("[default: chosen on validation tracks, or the last epoch's with --no-choose]"
                 if choose else "[default: the last epoch's]")
    opts = [
        click.option("--epochs", type=click.IntRange(min=1), default=epochs, show_default=True,
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
            f"(stochastic weight averaging) {averaging}.",
        ),
    ]
    if choose:
        opts.append(click.option(
            "--choose/--no-choose", "choose", default=True, show_default=True,
            help="Choose the averaging window (unless --average-from) and each biosample's "
            "blend towards average activity and smoothing on validation tracks split off the "
            "training tracks (5 folds: 10 quick models) before the final training; "
            "--no-choose trains with the settings as given.",
        ))
    for opt in reversed(opts):
        command = opt(command)
    return command


device_option = click.option(
    "--device", default=None,
    help="torch device, e.g. cpu, cuda, cuda:1 [default: cuda if available].",
)
max_memory_option = click.option(
    "--max-memory", default=None, metavar="SIZE",
    help="RAM budget for the training data, e.g. 4G; larger data streams from the store "
         "(out-of-core) [default: gather up to 2 GiB].",
)


def memory_limit(max_memory: str | None):
    """Context in which fits keep at most ``max_memory`` of data in RAM (no-op for None)."""
    if max_memory is None:
        return contextlib.nullcontext()
    from ..streaming import memory_budget, parse_size

    parse_size(max_memory)  # a bad size fails here, before any work
    return memory_budget(max_memory)


precision_option = click.option(
    "--precision", type=click.Choice(["auto", "fp32", "tf32", "bf16"]), default=None,
    help="Arithmetic precision of training, saved with the model as given (auto: bf16 for "
    "networks of two or more hidden layers of >= 1024 nodes on a CPU with native bf16, AMX or "
    "AVX512-BF16, or on an NVIDIA GPU of compute capability 8.0 or later, where other "
    "networks get tf32; fp32 otherwise; tf32 is fp32 off CUDA) [default: a saved model's own "
    "choice; auto for a new one].",
)


def _initial_model(init: Path | None, config: str, experiments: list[tuple[str, str]],
                   n_positions: int, arch: dict[str, Any], *, seed: int,
                   device: Any, precision: str | None) -> Any:
    """A new model from ``--config`` and the overrides, or the saved model ``--init``."""
    from ..model import Avocado

    if init is None:
        return Avocado.from_preset({"preset": config, **arch}, experiments, n_positions,
                                   seed=seed, device=device, precision=precision or "auto")
    model = Avocado.load(init, device=device)
    fixed = [k for k in arch if k not in ("batch_size", "learning_rate", "biosample_decay")]
    if fixed:
        raise click.UsageError(
            f"--{fixed[0].replace('_', '-')} cannot change the architecture of the --init model; "
            "only --batch-size, --learning-rate and --biosample-decay can"
        )
    unknown = sorted({b for b, _ in experiments} - set(model.biosamples)) + sorted(
        {a for _, a in experiments} - set(model.assays))
    if unknown or model.n_positions != n_positions:
        raise click.UsageError(
            f"the --init model {init} does not cover the store: "
            + (f"it lacks {', '.join(unknown[:5])}" if unknown
               else f"{model.n_positions:,} positions, the store has {n_positions:,}")
        )
    for key, value in arch.items():
        setattr(model, key, value)
    if precision is not None:
        model.precision = precision
    return model


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
@click.option(
    "--biosample-setting", "biosample_setting", multiple=True,
    metavar="BIOSAMPLE:NAME=VALUE",
    help="A prediction setting (activity-blend or smoothing) for one biosample's imputations, "
         "e.g. E017:activity-blend=0.75 (repeatable; as avocado evaluate --per-biosample "
         "chooses them).",
)
@click.option("--models", "n_models", type=click.IntRange(min=1), default=None,
              help="Models trained from seeds SEED, SEED+100, ... (the settings chosen once, "
                   "by the first); MODEL imputes their mean, an ensemble (MODEL holds the "
                   "first, members/ the others) [default: 3; 1 with --init].")
@click.option("--early-stopping", type=click.IntRange(min=1), default=None,
              help="Stop after N epochs without a better validation MSE.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="Save a checkpoint into MODEL/checkpoints every N epochs.")
@click.option("--overwrite", is_flag=True,
              help="Replace the model in MODEL (kept until the new one is saved).")
@click.option("--init", type=EXISTING_DIR, default=None, metavar="MODEL",
              help="Start from this saved model (its configuration and weights) instead of a "
                   "new one from --config; its optimizer state, when saved, is continued.")
@click.option("--save-optimizer", is_flag=True,
              help="Also save the optimizer state (about twice the weights), so that a later "
                   "--init continues this training where it stopped.")
@click.option("--distributed", is_flag=True,
              help="Data-parallel over the processes torchrun started (--batch-size is then "
                   "the global batch); rank 0 saves MODEL.")
@click.option("--backend", type=click.Choice(["gloo", "nccl"]), default=None,
              help="With --distributed [default: nccl with CUDA, else gloo].")
@quiet_option
def train(
    store_path: Path,
    model_path: Path,
    config: str,
    loop: dict[str, Any],
    device: str | None,
    precision: str | None,
    max_memory: str | None,
    holdout: tuple[str, ...],
    biosample_setting: tuple[str, ...],
    n_models: int | None,
    early_stopping: int | None,
    checkpoint_every: int | None,
    overwrite: bool,
    init: Path | None,
    save_optimizer: bool,
    distributed: bool,
    backend: str | None,
    quiet: bool,
    **arch: Any,
) -> None:
    """Train a model on the observed tracks of STORE and save it to MODEL.

    With --checkpoint-every, an interrupted run resumes from its last checkpoint when the same
    command is run again. Biosamples and assays of a new model are sorted by name.

    By default the averaging window and each biosample's blend and smoothing are chosen on
    validation tracks split off the training tracks, then the model trains on all of them;
    what was chosen is printed and saved with the model (avocado info MODEL).

    \b
    Examples:
      avocado train store/ model/
      avocado train store/ model/ --holdout E065:H3K4me3 --seed 1
      avocado train store/ model/ --epochs 60 --average-from 30
      avocado train store/ model/ --no-choose --activity-blend 0.5 --smoothing 9 \\
          --biosample-setting E017:activity-blend=0.75
      avocado train store/ model/ --epochs 5 --save-optimizer
      avocado train store/ model2/ --init model/ --epochs 5
      avocado train store/ model/ --config paper --device cuda --precision bf16
      torchrun --standalone --nproc-per-node 8 -m avocado_core train store/ model/ \\
          --distributed --config paper --batch-size 80000
    """
    from .._paths import writable_dir
    from ..store import TrackStore

    if backend is not None and not distributed:
        raise click.UsageError("--backend is for --distributed training")
    if (model_path / "config.json").is_file() and not overwrite:
        raise click.UsageError(f"{model_path} holds a model already; use --overwrite to replace it")
    writable_dir(model_path, "model folder")  # now, not after training
    store = TrackStore(store_path)
    held = parse_experiments(holdout)
    for b, a in held:
        if not store.has_track(b, a):
            raise click.BadParameter(
                f"{b}:{a} is not an observed track of {store_path}", param_hint="--holdout"
            )
    overrides = model_kwargs(arch)
    if biosample_setting:
        overrides["biosample_settings"] = parse_biosample_settings(biosample_setting)
    check_fixed_settings(loop["choose_settings"], overrides)
    tracks = store.tracks()
    train_keys = [k for k in store.experiments() if k not in set(held)]
    if not train_keys:
        raise click.UsageError(f"{store_path} has no observed tracks to train on")
    data = {k: tracks[k] for k in train_keys}
    validation = {k: tracks[k] for k in held} or None

    checkpoints = model_path / "checkpoints" if checkpoint_every else None
    if n_models is None:
        n_models = 3 if init is None else 1
    if init is not None and n_models > 1:
        raise click.UsageError("--init continues one saved model; --models must be 1")
    with _parallel(distributed, backend, device) as rank:
        if rank is not None:
            device = rank.device
            if checkpoints is not None:  # identical on every rank; no shared file system needed
                checkpoints = checkpoints / f"rank-{rank.rank}"
        is_main = rank is None or rank.is_main
        fit = dict(loop, validation=validation, early_stopping=early_stopping,
                   checkpoint_dir=checkpoints, checkpoint_every=checkpoint_every,
                   progress=not quiet and is_main)

        def new_model(s: int) -> Any:
            return _initial_model(init, config, train_keys, store.n_bins, overrides, seed=s,
                                  device=device, precision=precision)

        with memory_limit(max_memory), _dropped_states() as dropped:
            if n_models == 1:
                model = new_model(loop["seed"])
                steps = model.optimizer_steps
                if init is not None and steps is None and is_main and not quiet:
                    click.echo(_continuation(init, None, []))  # known before training: say it
                model.fit(data, **fit)
                first = model
            else:
                from ..ensemble import AvocadoEnsemble

                steps = None
                model = AvocadoEnsemble.fit(new_model, data, n_models, **fit)
                first = model.models[0]
        if is_main:
            model.save(model_path, optimizer=save_optimizer)
    continued = None if init is None else _continuation(init, steps, dropped)
    if not is_main:
        return
    loss = first.history.get("loss", [])
    summary = f"{len(train_keys)} tracks, {len(loss)} epochs"
    if n_models > 1:
        summary += f", {n_models} models"
    if loss:
        summary += f", final loss {loss[-1]:.4f}" + (" (model 1)" if n_models > 1 else "")
    if validation:
        import numpy as np

        mse = np.mean([np.mean((model.predict(b, a).astype(np.float64) - y) ** 2)
                       for (b, a), y in validation.items()])
        summary += f", held-out MSE {mse:.4f}"
    click.echo(f"Saved model to {model_path} ({summary})"
               + (f"; {continued[0].lower()}{continued[1:]}" if continued else ""))


def check_fixed_settings(choose: bool, overrides: dict[str, Any]) -> None:
    """Refuse prediction settings given by hand while training chooses them (--choose)."""
    fixed = [k for k in ("activity_blend", "smoothing", "biosample_settings") if k in overrides]
    if choose and fixed:
        flag = {"biosample_settings": "--biosample-setting"}.get(
            fixed[0], f"--{fixed[0].replace('_', '-')}")
        raise click.UsageError(f"{flag} fixes a setting that training chooses on validation "
                               "tracks by default; add --no-choose to set it by hand")


def _continuation(init: Path, steps: int | None, dropped: list[str]) -> str:
    """What training did with the optimizer state of the ``--init`` model (``steps`` Adam
    steps, or None), given the reasons of the states the fit ``dropped``."""
    if steps is None:
        return (f"Started a fresh Adam optimizer: {init} holds no optimizer state (it was saved "
                "without --save-optimizer)")
    if dropped:
        return (f"Started a fresh Adam optimizer: the optimizer state of {init} does not fit "
                f"this training ({dropped[0]})")
    return f"Continued the optimizer state of {init} ({steps:,} Adam steps)"


@contextlib.contextmanager
def _dropped_states() -> Iterator[list[str]]:
    """Collect the reasons of the optimizer states a fit drops (OptimizerStateWarning), so that
    the command says once what became of the --init model's state; other warnings are shown."""
    from ..training import OptimizerStateWarning

    reasons: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OptimizerStateWarning)
        try:
            yield reasons
        finally:
            shown = [w for w in caught if not issubclass(w.category, OptimizerStateWarning)]
            reasons += [w.message.reason for w in caught if w not in shown]
    for w in shown:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def _parallel(distributed: bool, backend: str | None, device: str | None) -> Iterator[Any]:
    """Nothing (yields None), or: join torchrun's process group, make every fit inside
    data-parallel, yield the :class:`~avocado_core.distributed.DistributedContext`, wait for
    every rank (rank 0 saves) and leave the group."""
    if not distributed:
        yield None
        return
    import torch.distributed as dist

    from ..distributed import data_parallel, init_distributed

    try:
        ctx = init_distributed(backend, device)
        with data_parallel():
            yield ctx
        dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
