"""Training machinery: samplers, the Adam optimizers, the epoch loop and checkpoints.

Nothing here knows about files of tracks, biosample names or genomic coordinates: training data
arrives as a :class:`TrackSource` (experiment index x position -> value), the network as an
:class:`~avocado_core.network.AvocadoNetwork`, and the caller decides which tables train.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import AvocadoValueError
from .network import AvocadoNetwork

__all__ = [
    "SAMPLINGS",
    "Sampler",
    "TrackSource",
    "Trainer",
    "Checkpointer",
    "train",
]

#: Accepted values of ``sampling``.
SAMPLINGS = ("sequential", "permuted", "random")

#: Names of the parameter groups a trainer can update.
GROUPS = ("biosample", "assay", "25bp", "250bp", "5kbp", "network")


# ---------------------------------------------------------------------------------- sampling
class Sampler:
    """Draws training batches of (experiment index, position) pairs.

    Each sample pairs a position with one experiment drawn uniformly at random among the
    training experiments, as in the original package.

    Parameters
    ----------
    n_positions: int
        Number of positions.
    n_experiments: int
        Number of training experiments.
    batch_size: int
        Samples per batch.
    sampling: str, optional
        ``"sequential"``: consecutive positions, wrapping around at the end (the scan continues
        across epochs); ``"permuted"``: consecutive chunks of a fresh random permutation of the
        positions for every pass; ``"random"``: positions drawn independently and uniformly
        at random (with replacement). Default is ``"sequential"``.
    seed: int or None, optional
        Seed of the sampler's random generator. Default is None (fresh entropy).
    """

    def __init__(
        self,
        n_positions: int,
        n_experiments: int,
        batch_size: int,
        sampling: str = "sequential",
        seed: int | None = None,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise AvocadoValueError(
                f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}"
            )
        if n_positions < 1 or n_experiments < 1 or batch_size < 1:
            raise AvocadoValueError(
                f"sampler needs positive sizes, got n_positions={n_positions}, "
                f"n_experiments={n_experiments}, batch_size={batch_size}"
            )
        self.n_positions = int(n_positions)
        self.n_experiments = int(n_experiments)
        self.batch_size = int(batch_size)
        self.sampling = sampling
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.cursor = 0
        self._pass_seed: int | None = None
        self._perm: np.ndarray | None = None

    # The permutation of a pass is regenerated from its seed, so the state stays tiny.
    def _new_pass(self) -> None:
        self._pass_seed = int(self.rng.integers(0, 2**63 - 1))
        self._perm = np.random.Generator(np.random.PCG64(self._pass_seed)).permutation(
            self.n_positions
        )

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw the next batch.

        Returns
        -------
        experiments: numpy.ndarray, shape=(batch_size,), dtype=int64
        positions: numpy.ndarray, shape=(batch_size,), dtype=int64
        """
        b, n = self.batch_size, self.n_positions
        experiments = self.rng.integers(0, self.n_experiments, size=b, dtype=np.int64)
        if self.sampling == "sequential":
            positions = (self.cursor + np.arange(b, dtype=np.int64)) % n
            self.cursor = int((self.cursor + b) % n)
        elif self.sampling == "random":
            positions = self.rng.integers(0, n, size=b, dtype=np.int64)
        else:
            parts, need = [], b
            while need:
                if self._perm is None or self.cursor >= n:
                    self._new_pass()
                    self.cursor = 0
                take = self._perm[self.cursor : self.cursor + need]
                parts.append(take)
                self.cursor += len(take)
                need -= len(take)
            positions = np.concatenate(parts).astype(np.int64, copy=False)
        return experiments, positions

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state (to resume the exact same sequence of batches)."""
        return {
            "sampling": self.sampling,
            "cursor": self.cursor,
            "pass_seed": self._pass_seed,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        if state["sampling"] != self.sampling:
            raise AvocadoValueError(
                f"sampler state is for sampling {state['sampling']!r}, not {self.sampling!r}"
            )
        self.cursor = int(state["cursor"])
        self.rng.bit_generator.state = state["rng"]
        self._pass_seed = state["pass_seed"]
        self._perm = None
        if self._pass_seed is not None:
            self._perm = np.random.Generator(np.random.PCG64(self._pass_seed)).permutation(
                self.n_positions
            )


# ---------------------------------------------------------------------------------- data
class TrackSource:
    """Training values: experiment index x position -> float32.

    Tracks are gathered into one contiguous ``(n_experiments, n_positions)`` float32 array when
    that takes at most ``max_dense_bytes``; otherwise they stay as given (e.g. memory-mapped)
    and each batch reads only the positions it needs.

    Parameters
    ----------
    tracks: sequence of 1-D arrays
        One array per experiment, all of the same length.
    max_dense_bytes: int, optional
        Largest stacked array to build. Default is 2 GiB.
    """

    def __init__(self, tracks: Sequence[np.ndarray], max_dense_bytes: int = 2**31) -> None:
        if len(tracks) == 0:
            raise AvocadoValueError("no training tracks: data is empty")
        self.n_experiments = len(tracks)
        self.n_positions = int(len(tracks[0]))
        self.dense: np.ndarray | None = None
        self.tracks = list(tracks)
        if self.n_experiments * self.n_positions * 4 <= max_dense_bytes:
            self.dense = np.empty((self.n_experiments, self.n_positions), dtype=np.float32)
            for i, track in enumerate(self.tracks):
                self.dense[i] = track
            self.tracks = []

    def values(self, experiments: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Values of (experiment, position) pairs.

        Parameters
        ----------
        experiments, positions: numpy.ndarray, shape=(n,), dtype=int64

        Returns
        -------
        numpy.ndarray, shape=(n,), dtype=float32
        """
        if self.dense is not None:
            return self.dense[experiments, positions]
        out = np.empty(len(positions), dtype=np.float32)
        lo, hi = int(positions.min()), int(positions.max()) + 1
        for e in np.unique(experiments):  # a loop over experiments, not positions
            mask = experiments == e
            if hi - lo <= 4 * len(positions):  # contiguous-ish batch: read one window
                out[mask] = np.asarray(self.tracks[e][lo:hi], dtype=np.float32)[
                    positions[mask] - lo
                ]
            else:
                out[mask] = self.tracks[e][positions[mask]]
        return out


# ---------------------------------------------------------------------------------- trainer
class Trainer:
    """Runs optimization steps of an :class:`AvocadoNetwork` with Adam.

    Parameters
    ----------
    network: AvocadoNetwork
        The network to train (in place).
    biosample_index, assay_index: array-like of int, shape=(n_experiments,)
        Biosample and assay row of each training experiment of ``source``.
    source: TrackSource
        Training values.
    batch_size: int
        Samples per step.
    learning_rate: float, optional
        Adam's learning rate. Default is 0.001.
    train_groups: sequence of str, optional
        Which parameter groups train, among ``"biosample"``, ``"assay"``, ``"25bp"``,
        ``"250bp"``, ``"5kbp"``, ``"network"``. Default is all of them.
    trainable_rows: dict of str to array of int, optional
        Restrict an embedding group to these rows (the others stay bit-for-bit unchanged).
    sampling: str, optional
        See :class:`Sampler`. Default is ``"sequential"``.
    seed: int or None, optional
        Seed of the sampler. Default is None.
    precision: str, optional
        ``"fp32"`` or ``"bf16"`` (autocast of the matrix products). Default is ``"fp32"``.
    betas: tuple of float, optional
        Adam's betas. Default is (0.9, 0.999).
    eps: float, optional
        Adam's epsilon (torch formulation: added to the bias-corrected root). Default is 1e-7,
        Keras' default.
    """

    def __init__(
        self,
        network: AvocadoNetwork,
        biosample_index: Sequence[int] | np.ndarray,
        assay_index: Sequence[int] | np.ndarray,
        source: TrackSource,
        batch_size: int,
        learning_rate: float = 0.001,
        train_groups: Sequence[str] = GROUPS,
        trainable_rows: dict[str, np.ndarray] | None = None,
        sampling: str = "sequential",
        seed: int | None = None,
        precision: str = "fp32",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-7,
    ) -> None:
        unknown = set(train_groups) - set(GROUPS)
        if unknown:
            raise AvocadoValueError(f"unknown parameter groups {sorted(unknown)}; expected {GROUPS}")
        if precision not in ("fp32", "bf16"):
            raise AvocadoValueError(f"unknown precision {precision!r}; expected 'fp32' or 'bf16'")
        self.network = network
        self.device = next(network.parameters()).device
        self.source = source
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.precision = precision
        self.betas = betas
        self.eps = float(eps)
        self.train_groups = tuple(train_groups)
        self.biosample_index = torch.as_tensor(np.asarray(biosample_index), dtype=torch.long)
        self.assay_index = torch.as_tensor(np.asarray(assay_index), dtype=torch.long)
        self.sampler = Sampler(
            source.n_positions, source.n_experiments, batch_size, sampling=sampling, seed=seed
        )
        self.step_count = 0

        tables = network.embedding_parameters()
        self.params: dict[str, torch.nn.Parameter] = {}
        for group in self.train_groups:
            if group == "network":
                for i, p in enumerate(network.dense_parameters()):
                    self.params[f"network.{i}"] = p
            else:
                self.params[group] = tables[group]
        for p in network.parameters():
            p.requires_grad_(False)
        for p in self.params.values():
            p.requires_grad_(True)
        self.row_masks: dict[str, torch.Tensor] = {}
        for group, rows in (trainable_rows or {}).items():
            mask = torch.zeros(tables[group].shape[0], 1, dtype=tables[group].dtype)
            mask[torch.as_tensor(np.asarray(rows), dtype=torch.long)] = 1
            self.row_masks[group] = mask.to(self.device)
        self.optimizer = torch.optim.Adam(
            list(self.params.values()),
            lr=self.learning_rate,
            betas=betas,
            eps=self.eps,
            foreach=self.device.type != "cpu" or None,
        )

    # -------------------------------------------------------------- one step
    def _batch(self) -> tuple[torch.Tensor, ...]:
        experiments, positions = self.sampler.next_batch()
        y = torch.from_numpy(self.source.values(experiments, positions))
        exp = torch.from_numpy(experiments)
        b = self.biosample_index[exp]
        a = self.assay_index[exp]
        pos = torch.from_numpy(positions)
        dev = self.device
        return (
            b.to(dev, non_blocking=True),
            a.to(dev, non_blocking=True),
            pos.to(dev, non_blocking=True),
            y.to(dev, non_blocking=True),
        )

    def step(self) -> float:
        """Draw one batch and take one Adam step.

        Returns
        -------
        float
            The batch's mean squared error before the step.
        """
        b, a, pos, y = self._batch()
        with torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        ):
            pred = self.network(b, a, pos)
        loss = torch.mean((pred.float() - y) ** 2)
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        for group, mask in self.row_masks.items():
            self.params[group].grad.mul_(mask)
        self.optimizer.step()
        self.step_count += 1
        return float(loss.detach())

    def finalize(self) -> None:
        """Bring every parameter up to date (no-op for dense Adam; kept for the fast path)."""

    # -------------------------------------------------------------- state
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Optimizer moments as named tensors (for a checkpoint)."""
        out: dict[str, torch.Tensor] = {}
        for name, p in self.params.items():
            st = self.optimizer.state.get(p)
            if st:
                out[f"adam.{name}.exp_avg"] = st["exp_avg"]
                out[f"adam.{name}.exp_avg_sq"] = st["exp_avg_sq"]
        return out

    def state_meta(self) -> dict[str, Any]:
        """JSON-serializable trainer state (for a checkpoint)."""
        steps = {
            name: float(self.optimizer.state[p]["step"])
            for name, p in self.params.items()
            if self.optimizer.state.get(p)
        }
        return {
            "step_count": self.step_count,
            "sampler": self.sampler.state_dict(),
            "adam_steps": steps,
        }

    def load_state(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_meta` and :meth:`state_tensors` returned."""
        self.step_count = int(meta["step_count"])
        self.sampler.load_state_dict(meta["sampler"])
        for name, p in self.params.items():
            key = f"adam.{name}.exp_avg"
            if key in tensors:
                self.optimizer.state[p] = {
                    "step": torch.tensor(meta["adam_steps"][name]),
                    "exp_avg": tensors[key].to(p.device).clone(),
                    "exp_avg_sq": tensors[f"adam.{name}.exp_avg_sq"].to(p.device).clone(),
                }


# ---------------------------------------------------------------------------------- checkpoints
def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_tensors_dir(
    path: str | os.PathLike, meta: dict[str, Any], tensors: dict[str, torch.Tensor], meta_name: str
) -> None:
    """Write ``meta`` (JSON) and ``tensors`` (safetensors) into a directory atomically.

    The tensors go to a new file whose name ``meta`` records; the JSON file is replaced last
    with ``os.replace``, so a reader always sees a complete, consistent pair. Older tensor
    files are removed afterwards.

    Parameters
    ----------
    path: path-like
        The directory (created if missing).
    meta: dict
        JSON-serializable metadata; the key ``"weights_file"`` is added.
    tensors: dict of str to torch.Tensor
        Tensors to store.
    meta_name: str
        File name of the JSON file inside the directory.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".weights-", suffix=".safetensors")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        weights_name = "weights-" + os.path.basename(tmp)[len(".weights-") :]
        os.replace(tmp, directory / weights_name)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    meta = dict(meta, weights_file=weights_name)
    _atomic_write_text(directory / meta_name, json.dumps(meta, indent=1, sort_keys=True))
    for old in directory.glob("weights-*.safetensors"):
        if old.name != weights_name:
            old.unlink(missing_ok=True)


def read_tensors_dir(
    path: str | os.PathLike, meta_name: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read what :func:`write_tensors_dir` wrote.

    Raises
    ------
    AvocadoValueError
        When the directory, its JSON file or its tensor file is missing or unreadable.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise AvocadoValueError(f"{directory} is not a directory (expected a saved model)")
    meta_path = directory / meta_name
    if not meta_path.is_file():
        raise AvocadoValueError(f"{directory} has no {meta_name}: not a saved model directory")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AvocadoValueError(f"{meta_path} is corrupted (not valid JSON: {exc})") from None
    weights = directory / str(meta.get("weights_file", ""))
    if not meta.get("weights_file") or not weights.is_file():
        raise AvocadoValueError(
            f"{directory}: weights file {meta.get('weights_file')!r} named in {meta_name} "
            "is missing"
        )
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types
        raise AvocadoValueError(f"{weights} is corrupted ({exc})") from None
    return meta, tensors


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
        """Write the trainer's network, optimizer and sampler state after ``epoch`` epochs."""
        trainer.finalize()
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
        trainer.network.load_state_dict(net_state)
        trainer.load_state(meta["trainer"], tensors)
        return int(meta["epoch"]), meta["history"], meta.get("extra", {})

    def clear(self) -> None:
        """Remove the checkpoint directory."""
        shutil.rmtree(self.directory, ignore_errors=True)


# ---------------------------------------------------------------------------------- loop
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

    Returns
    -------
    dict
        ``{"loss": [...], "val_mse": [...]}``, one entry per epoch (``val_mse`` empty without
        ``validate``).
    """
    from tqdm.auto import tqdm

    if n_epochs < 0 or epoch_size < 1:
        raise AvocadoValueError(
            f"need n_epochs >= 0 and epoch_size >= 1, got {n_epochs} and {epoch_size}"
        )
    if early_stopping is not None and validate is None:
        raise AvocadoValueError("early_stopping needs validation data")
    history: dict[str, list[float]] = {"loss": [], "val_mse": []}
    start = 0
    if checkpointer is not None and resume and checkpointer.exists():
        start, history, _ = checkpointer.load(trainer)
    every = checkpoint_every or 1
    best, since_best = math.inf, 0
    for v in history["val_mse"]:
        best, since_best = (v, 0) if v < best else (best, since_best + 1)

    bar = tqdm(total=(n_epochs - start) * epoch_size, disable=not progress, unit="batch")
    try:
        for epoch in range(start, n_epochs):
            if early_stopping is not None and since_best >= early_stopping:
                break
            total = 0.0
            for i in range(epoch_size):
                total += trainer.step()
                bar.update(1)
                if i % 10 == 9 or i == epoch_size - 1:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{total / (i + 1):.4f}")
            history["loss"].append(total / epoch_size)
            if validate is not None:
                trainer.finalize()
                val = float(validate())
                history["val_mse"].append(val)
                best, since_best = (val, 0) if val < best else (best, since_best + 1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{total / epoch_size:.4f}", val=f"{val:.4f}")
            done = epoch + 1
            if checkpointer is not None and (done % every == 0 or done == n_epochs):
                checkpointer.save(done, history, trainer)
    finally:
        bar.close()
    trainer.finalize()
    return history
