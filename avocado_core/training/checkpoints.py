"""Periodic training checkpoints: network, optimizer and sampler state, resumed bit for bit."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import AvocadoValueError
from ..model_format import read_tensors_dir, write_tensors_dir
from .state import check_trainer_state
from .trainer import Trainer

__all__ = ["Checkpointer"]


class Checkpointer:
    """Periodic training checkpoints in one directory.

    Parameters
    ----------
    directory: path-like
        Where the checkpoint lives (``checkpoint.json`` + one safetensors file).
    fingerprint: dict
        What identifies the training run (configuration, data, schedule); a checkpoint whose
        fingerprint differs is refused instead of silently resumed.
    """

    META = "checkpoint.json"

    def __init__(self, directory: str | os.PathLike, fingerprint: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint))

    def exists(self) -> bool:
        """Whether a checkpoint was written."""
        return (self.directory / self.META).is_file()

    def save(
        self,
        epoch: int,
        history: dict[str, list[float]],
        trainer: Trainer,
        extra_meta: dict[str, Any] | None = None,
    ) -> None:
        """Write the trainer's network, optimizer and sampler state after ``epoch`` epochs.

        Rows of catch-up tables are stored as they are, with the step each is current to, so
        that a resumed run continues bit for bit.
        """
        tensors = {f"net.{k}": v for k, v in trainer.network.state_dict().items()}
        tensors.update(trainer.state_tensors())
        meta = {
            "epoch": epoch,
            "history": history,
            "trainer": trainer.state_meta(),
            "fingerprint": self.fingerprint,
            "extra": extra_meta or {},
        }
        write_tensors_dir(self.directory, meta, tensors, self.META)

    def load(self, trainer: Trainer) -> tuple[int, dict[str, list[float]], dict[str, Any]]:
        """Restore the trainer from the checkpoint.

        Returns
        -------
        epoch: int
            Epochs completed.
        history: dict
            History up to that epoch.
        extra: dict
            ``extra_meta`` given to :meth:`save`.
        """
        meta, tensors = read_tensors_dir(self.directory, self.META)
        if meta.get("fingerprint") != self.fingerprint:
            old = meta.get("fingerprint") or {}
            diff = sorted(
                k for k in set(old) | set(self.fingerprint) if old.get(k) != self.fingerprint.get(k)
            )
            raise AvocadoValueError(
                f"checkpoint in {self.directory} belongs to a different training run "
                f"(differs in: {', '.join(diff)}); use another checkpoint_dir or resume=False"
            )
        net_state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        check_trainer_state(meta.get("trainer"),
                            {k: v for k, v in tensors.items() if not k.startswith("net.")},
                            trainer.trained_shapes(), str(self.directory))
        trainer.network.load_state_dict(net_state)
        trainer.load_state(meta["trainer"], tensors)
        return int(meta["epoch"]), meta["history"], meta.get("extra", {})

    def clear(self) -> None:
        """Remove the checkpoint directory."""
        shutil.rmtree(self.directory, ignore_errors=True)
