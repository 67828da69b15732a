"""The epoch loop: steps, validation, early stopping, weight averaging and checkpoints."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..errors import AvocadoValueError
from .checkpoints import Checkpointer
from .trainer import Trainer

__all__ = ["check_schedule", "train"]


def check_schedule(
    n_epochs: int,
    epoch_size: int,
    early_stopping: int | None,
    validates: bool,
    average_from: int | None,
    first_epoch: int = 0,
) -> None:
    """Refuse a schedule :func:`train` cannot run (before anything is touched).

    Parameters are those of :func:`train`; ``validates`` tells whether it gets ``validate``.

    Raises
    ------
    AvocadoValueError
        A bad epoch count or size, early stopping without validation, or an ``average_from``
        that averages no epoch.
    """
    if n_epochs < 0 or epoch_size < 1:
        raise AvocadoValueError(
            f"need n_epochs >= 0 and epoch_size >= 1, got {n_epochs} and {epoch_size}"
        )
    if early_stopping is not None and not validates:
        raise AvocadoValueError("early_stopping needs validation data")
    if average_from is not None and not 0 <= average_from < first_epoch + n_epochs:
        total = f"{first_epoch} + " if first_epoch else ""
        raise AvocadoValueError(
            f"average_from={average_from} averages no epoch; expected 0 <= average_from < "
            f"{total}n_epochs={n_epochs}"
        )


def train(
    trainer: Trainer,
    n_epochs: int,
    epoch_size: int,
    validate: Callable[[], float] | None = None,
    early_stopping: int | None = None,
    checkpointer: Checkpointer | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    progress: bool = True,
    average_from: int | None = None,
    first_epoch: int = 0,
) -> dict[str, list[float]]:
    """The epoch loop.

    Parameters
    ----------
    trainer: Trainer
        Takes the steps.
    n_epochs: int
        Total number of epochs (including those a resumed checkpoint already ran).
    epoch_size: int
        Steps (batches) per epoch.
    validate: callable or None, optional
        Returns the validation MSE after an epoch. Default is None.
    early_stopping: int or None, optional
        Stop after this many epochs without a better validation MSE. Default is None.
    checkpointer: Checkpointer or None, optional
        Where to write checkpoints and to resume from. Default is None.
    checkpoint_every: int or None, optional
        Write a checkpoint every this many epochs (and after the last). Default is None (every
        epoch when a checkpointer is given).
    resume: bool, optional
        Resume from the checkpointer's checkpoint when one exists. Default is True.
    progress: bool, optional
        Show a tqdm progress bar with the running loss. Default is True.
    average_from: int or None, optional
        Stochastic weight averaging: the trained parameters end as the mean of their values
        at the end of every epoch after this many (epochs ``average_from + 1`` to the last).
        Validation and early stopping see each epoch's own parameters. Epochs are counted
        from ``first_epoch``. Default is None (the last epoch's parameters).
    first_epoch: int, optional
        Epochs the trainer's state already ran (in earlier calls this one continues); this
        call's first epoch is epoch ``first_epoch + 1`` for ``average_from``. Default is 0.

    Returns
    -------
    dict
        ``{"loss": [...], "val_mse": [...]}``, one entry per epoch (``val_mse`` empty without
        ``validate``).
    """
    from tqdm.auto import tqdm

    check_schedule(n_epochs, epoch_size, early_stopping, validate is not None, average_from,
                   first_epoch)
    history: dict[str, list[float]] = {"loss": [], "val_mse": []}
    start = 0
    if checkpointer is not None and resume and checkpointer.exists():
        start, history, _ = checkpointer.load(trainer)
    every = checkpoint_every or 1
    best, since_best = math.inf, 0
    for v in history["val_mse"]:
        best, since_best = (v, 0) if v < best else (best, since_best + 1)

    bar = tqdm(total=(n_epochs - start) * epoch_size, disable=not progress, unit="batch",
               desc=f"training ({trainer.precision})")
    old_threads = torch.get_num_threads()
    if getattr(trainer, "threads", None):
        torch.set_num_threads(trainer.threads)
    # The losses add up where they are computed, in float64 (as Python floats would), and are
    # read once an epoch: reading a GPU's running loss every few steps would make the host
    # wait for the GPU. On the CPU reading costs nothing, and the bar shows the running loss.
    live = trainer.device.type == "cpu"
    dtype = torch.float32 if trainer.device.type == "mps" else torch.float64  # (MPS has no f64)
    try:
        for epoch in range(start, n_epochs):
            if early_stopping is not None and since_best >= early_stopping:
                break
            total = torch.zeros((), dtype=dtype, device=trainer.device)
            for i in range(epoch_size):
                total += trainer.advance()
                bar.update(1)
                if live and (i % 10 == 9 or i == epoch_size - 1):
                    bar.set_postfix(epoch=epoch + 1, loss=f"{float(total) / (i + 1):.4f}")
            history["loss"].append(float(total) / epoch_size)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history['loss'][-1]:.4f}")
            if validate is not None:
                trainer.finalize()
                val = float(validate())
                history["val_mse"].append(val)
                best, since_best = (val, 0) if val < best else (best, since_best + 1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{history['loss'][-1]:.4f}",
                                val=f"{val:.4f}")
            done = epoch + 1
            if average_from is not None and first_epoch + done > average_from:
                trainer.accumulate_average()
            if checkpointer is not None and (done % every == 0 or done == n_epochs):
                checkpointer.save(done, history, trainer)
    finally:
        bar.close()
        torch.set_num_threads(old_threads)
    trainer.finalize()
    if trainer.n_averaged:
        trainer.apply_average()
    return history
