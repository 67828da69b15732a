"""The user-facing Avocado model.

:class:`Avocado` holds the names of the biosamples and assays, the configuration and a trained
:class:`~avocado_core.network.AvocadoNetwork`; it validates training data, runs the trainer of
:mod:`avocado_core.training`, imputes tracks, exposes the learned factors and saves / loads
itself as a directory (JSON configuration + safetensors weights, no pickle).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .errors import AvocadoKeyError, AvocadoValueError
from .network import GENOME_RESOLUTIONS, AvocadoNetwork
from .training import (
    SAMPLINGS,
    Checkpointer,
    TrackSource,
    Trainer,
    read_tensors_dir,
    train,
    write_tensors_dir,
)

__all__ = ["Avocado"]

_FORMAT = "avocado-torch-model"
_CONFIG_FILE = "config.json"
_PRECISIONS = ("auto", "fp32", "bf16")
_SIZE_KEYS = (
    "n_layers",
    "n_nodes",
    "n_biosample_factors",
    "n_assay_factors",
    "n_25bp_factors",
    "n_250bp_factors",
    "n_5kbp_factors",
)
#: Bytes of first-layer activations one prediction chunk may hold.
_PREDICT_BUDGET = 128 * 2**20
#: Largest finiteness check read at once from a (memory-mapped) track.
_CHECK_CHUNK = 1 << 22


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_names(kind: str, names: Iterable[str] | None) -> list[str]:
    if names is None:
        raise AvocadoValueError(f"no {kind} given: pass the list of {kind} names")
    if isinstance(names, str):
        raise AvocadoValueError(f"{kind} must be a list of names, got the string {names!r}")
    names = list(names)
    if not names:
        raise AvocadoValueError(f"{kind}: the list of names is empty")
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise AvocadoValueError(f"{kind} names must be non-empty strings, got {bad[:5]}")
    seen: set[str] = set()
    dups = sorted({n for n in names if n in seen or seen.add(n)})
    if dups:
        raise AvocadoValueError(f"duplicate {kind} names: {dups}")
    return names


def _short(names: Iterable[str], n: int = 12) -> str:
    """The first ``n`` names, comma-separated, and how many there are in all if more."""
    names = list(names)
    text = ", ".join(names[:n])
    return text + (f", ... ({len(names)} in all)" if len(names) > n else "")


class Avocado:
    """Multi-scale deep tensor factorization of epigenomic data (Schreiber et al. 2020).

    Parameters
    ----------
    biosamples: sequence of str
        Biosample (cell type) names, one row of the biosample embedding each.
    assays: sequence of str
        Assay names.
    n_positions: int
        Number of 25 bp positions (bins) of the training region set.
    celltypes: sequence of str, optional
        Alias of ``biosamples`` (the original package's name).
    n_layers: int, optional
        Hidden ReLU layers. Default is 2.
    n_nodes: int, optional
        Width of the hidden layers. Default is 2048.
    n_biosample_factors, n_assay_factors: int, optional
        Embedding widths. Defaults are 32 and 256.
    n_25bp_factors, n_250bp_factors, n_5kbp_factors: int, optional
        Genome embedding widths. Defaults are 25, 40 and 45.
    batch_size: int, optional
        Samples per training step. Default is 40,000.
    learning_rate: float, optional
        Adam's learning rate. Default is 0.001.
    biosample_decay: float, optional
        Decoupled weight decay of the biosample embedding: after every Adam step its trained
        rows are multiplied by ``1 - biosample_decay``. It keeps biosample-specific effects
        small unless the data insist, so that an experiment the model has not seen leans
        towards what the assay does elsewhere. Default is 0.0 (none, as in the original); 0.1
        helped held-out accuracy on the 5-biosample pilot (see the README).
    device: str or torch.device, optional
        Where to compute. Default is None: CUDA when available, else CPU.
    precision: str, optional
        ``"fp32"``, ``"bf16"`` (training keeps the MLP's activations, their gradients and its
        matrix products in bfloat16, accumulating in fp32; parameters, Adam and the loss stay
        fp32) or ``"auto"`` (fp32). Default is ``"auto"``.
    seed: int or None, optional
        Seed of the initialization and, unless ``fit`` gets its own, of the sampling.
        Default is None.

    Attributes
    ----------
    biosamples, assays: list of str
    n_positions: int
    config: dict
        Everything needed to rebuild the model (sizes, names, training settings).
    history: dict
        ``{"loss": [...], "val_mse": [...]}`` accumulated over ``fit`` calls.
    network: AvocadoNetwork
    """

    #: Builds the training data source from the validated track arrays, and the trainer;
    #: ``avocado_core.streaming.memory_budget`` and ``avocado_core.distributed.data_parallel``
    #: swap in an out-of-core source and a data-parallel trainer.
    source_class: Any = TrackSource
    trainer_class: Any = Trainer

    def __init__(
        self,
        biosamples: Sequence[str] | None = None,
        assays: Sequence[str] | None = None,
        n_positions: int | None = None,
        *,
        celltypes: Sequence[str] | None = None,
        n_layers: int = 2,
        n_nodes: int = 2048,
        n_biosample_factors: int = 32,
        n_assay_factors: int = 256,
        n_25bp_factors: int = 25,
        n_250bp_factors: int = 40,
        n_5kbp_factors: int = 45,
        batch_size: int = 40000,
        learning_rate: float = 0.001,
        biosample_decay: float = 0.0,
        device: str | torch.device | None = None,
        precision: str = "auto",
        seed: int | None = None,
    ) -> None:
        if celltypes is not None:
            if biosamples is not None and list(biosamples) != list(celltypes):
                raise AvocadoValueError(
                    "both biosamples= and its alias celltypes= given, with different names"
                )
            biosamples = celltypes
        self.biosamples = _check_names("biosamples", biosamples)
        self.assays = _check_names("assays", assays)
        if n_positions is None or isinstance(n_positions, bool) or int(n_positions) != n_positions:
            raise AvocadoValueError(f"n_positions must be a positive integer, got {n_positions!r}")
        self.n_positions = int(n_positions)
        sizes = dict(
            n_layers=n_layers,
            n_nodes=n_nodes,
            n_biosample_factors=n_biosample_factors,
            n_assay_factors=n_assay_factors,
            n_25bp_factors=n_25bp_factors,
            n_250bp_factors=n_250bp_factors,
            n_5kbp_factors=n_5kbp_factors,
        )
        minimum = {"n_layers": 0}
        for key, value in dict(sizes, n_positions=self.n_positions, batch_size=batch_size).items():
            if isinstance(value, bool) or int(value) != value or value < minimum.get(key, 1):
                raise AvocadoValueError(
                    f"{key} must be an integer >= {minimum.get(key, 1)}, got {value!r}"
                )
        if not (learning_rate > 0 and math.isfinite(learning_rate)):
            raise AvocadoValueError(f"learning_rate must be positive, got {learning_rate!r}")
        if not 0.0 <= biosample_decay < 1.0:
            raise AvocadoValueError(
                f"biosample_decay must be in [0, 1), got {biosample_decay!r}"
            )
        if precision not in _PRECISIONS:
            raise AvocadoValueError(
                f"unknown precision {precision!r}; expected one of {', '.join(_PRECISIONS)}"
            )
        self._sizes = {k: int(v) for k, v in sizes.items()}
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.biosample_decay = float(biosample_decay)
        self.precision = precision
        self.seed = seed
        self.device = torch.device(device) if device is not None else _default_device()
        self.history: dict[str, list[float]] = {"loss": [], "val_mse": []}
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.network = AvocadoNetwork(
            len(self.biosamples), len(self.assays), self.n_positions, generator=generator,
            **self._sizes,
        ).to(self.device)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def small(
        cls, biosamples: Sequence[str], assays: Sequence[str], n_positions: int, **kwargs: Any
    ) -> Avocado:
        """The original tutorial's small configuration.

        One hidden layer of 128 nodes, 32 biosample / 24 assay factors, 10 / 20 / 30 genome
        factors and batches of 10,000; any keyword overrides.

        Returns
        -------
        Avocado
        """
        config = dict(
            n_layers=1,
            n_nodes=128,
            n_biosample_factors=32,
            n_assay_factors=24,
            n_25bp_factors=10,
            n_250bp_factors=20,
            n_5kbp_factors=30,
            batch_size=10000,
        )
        config.update(kwargs)
        return cls(biosamples, assays, n_positions, **config)

    # ------------------------------------------------------------------ properties
    @property
    def celltypes(self) -> list[str]:
        """Alias of :attr:`biosamples`."""
        return self.biosamples

    @property
    def config(self) -> dict[str, Any]:
        """The configuration (JSON-serializable) needed to rebuild this model."""
        return {
            "biosamples": list(self.biosamples),
            "assays": list(self.assays),
            "n_positions": self.n_positions,
            **self._sizes,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "biosample_decay": self.biosample_decay,
            "precision": self.precision,
            "seed": self.seed,
        }

    @property
    def train_precision(self) -> str:
        """The precision training actually uses (``"auto"`` resolved)."""
        return "fp32" if self.precision == "auto" else self.precision

    def __repr__(self) -> str:
        return (
            f"Avocado({len(self.biosamples)} biosamples, {len(self.assays)} assays, "
            f"{self.n_positions} positions, {self._sizes['n_layers']}x{self._sizes['n_nodes']}, "
            f"device={self.device.type})"
        )

    # ------------------------------------------------------------------ data checks
    def _biosample_index(self, name: str) -> int:
        try:
            return self.biosamples.index(name)
        except ValueError:
            raise AvocadoKeyError(
                f"unknown biosample {name!r}; the model knows: {_short(self.biosamples)}"
            ) from None

    def _assay_index(self, name: str) -> int:
        try:
            return self.assays.index(name)
        except ValueError:
            raise AvocadoKeyError(
                f"unknown assay {name!r}; the model knows: {_short(self.assays)}"
            ) from None

    @staticmethod
    def _as_mapping(data: Any, what: str = "data") -> Mapping:
        if hasattr(data, "tracks") and not isinstance(data, Mapping):
            data = data.tracks("observed")
        if not isinstance(data, Mapping):
            raise AvocadoValueError(
                f"{what} must be a mapping (biosample, assay) -> 1-D array or a TrackStore, "
                f"got {type(data).__name__}"
            )
        if len(data) == 0:
            raise AvocadoValueError(f"{what} is empty: no (biosample, assay) tracks to use")
        return data

    @staticmethod
    def _check_track(key: Any, track: Any, n_positions: int, what: str) -> np.ndarray:
        arr = track if isinstance(track, np.ndarray) else np.asarray(track)
        if arr.ndim != 1:
            raise AvocadoValueError(
                f"{what} track {key!r} must be 1-D, got shape {tuple(arr.shape)}"
            )
        if len(arr) != n_positions:
            raise AvocadoValueError(
                f"{what} track {key!r} has {len(arr)} positions; the model has {n_positions}"
            )
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise AvocadoValueError(f"{what} track {key!r} has non-numeric dtype {arr.dtype}")
        for lo in range(0, len(arr), _CHECK_CHUNK):
            chunk = arr[lo : lo + _CHECK_CHUNK]
            if not np.isfinite(chunk).all():
                bad = lo + int(np.flatnonzero(~np.isfinite(chunk))[0])
                raise AvocadoValueError(
                    f"{what} track {key!r} has a non-finite value ({chunk[bad - lo]}) at "
                    f"position {bad}; NaN and inf are not allowed"
                )
        return arr

    def _experiments(
        self,
        data: Any,
        n_positions: int,
        what: str = "data",
        only_biosamples: Sequence[str] | None = None,
        only_assays: Sequence[str] | None = None,
    ) -> tuple[list[tuple[str, str]], list[np.ndarray]]:
        """Validated (keys, arrays) of a data mapping, optionally restricted."""
        data = self._as_mapping(data, what)
        keys, arrays = [], []
        for key in data.keys():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise AvocadoValueError(
                    f"{what} keys must be (biosample, assay) tuples, got {key!r}"
                )
            b, a = key
            if only_biosamples is not None and b not in only_biosamples:
                continue
            if only_assays is not None and a not in only_assays:
                continue
            if b not in self.biosamples:
                raise AvocadoKeyError(
                    f"{what} has biosample {b!r} (track {key!r}) that the model does not know; "
                    f"the model's biosamples: {_short(self.biosamples)}"
                )
            if a not in self.assays:
                raise AvocadoKeyError(
                    f"{what} has assay {a!r} (track {key!r}) that the model does not know; "
                    f"the model's assays: {_short(self.assays)}"
                )
            keys.append((b, a))
            arrays.append(self._check_track(key, data[key], n_positions, what))
        if not keys:
            raise AvocadoValueError(f"{what} has no tracks to train on")
        return keys, arrays

    # ------------------------------------------------------------------ training
    def _fit_network(
        self,
        network: AvocadoNetwork,
        keys: list[tuple[str, str]],
        arrays: list[np.ndarray],
        *,
        train_groups: Sequence[str],
        trainable_rows: dict[str, np.ndarray] | None,
        n_epochs: int,
        epoch_size: int | None,
        sampling: str,
        validation: Any,
        seed: int | None,
        early_stopping: int | None,
        checkpoint_dir: str | os.PathLike | None,
        checkpoint_every: int | None,
        resume: bool,
        progress: bool,
        phase: str,
        average_from: int | None = None,
    ) -> dict[str, list[float]]:
        if sampling not in SAMPLINGS:
            raise AvocadoValueError(
                f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}"
            )
        for name, value, optional in (("n_epochs", n_epochs, False),
                                      ("epoch_size", epoch_size, True),
                                      ("checkpoint_every", checkpoint_every, True),
                                      ("early_stopping", early_stopping, True)):
            if (value is None and optional) or (isinstance(value, (int, np.integer))
                                                and not isinstance(value, bool) and value >= 1):
                continue  # an untrained model would be saved as if trained: refuse
            raise AvocadoValueError(f"{name} must be a positive integer, got {value!r}")
        n_positions = network.n_positions
        if epoch_size is None:
            epoch_size = math.ceil(n_positions / self.batch_size)
        seed = self.seed if seed is None else seed
        val_keys: list[tuple[str, str]] = []
        val_arrays: list[np.ndarray] = []
        if validation is not None:
            val_keys, val_arrays = self._experiments(validation, n_positions, "validation")
        source = self.source_class(arrays)
        trainer = self.trainer_class(
            network,
            [self.biosamples.index(b) for b, _ in keys],
            [self.assays.index(a) for _, a in keys],
            source,
            self.batch_size,
            learning_rate=self.learning_rate,
            biosample_decay=self.biosample_decay,
            train_groups=train_groups,
            trainable_rows=trainable_rows,
            sampling=sampling,
            seed=seed,
            precision=self.train_precision,
        )

        def validate() -> float:
            return self._validation_mse(network, val_keys, val_arrays)

        checkpointer = None
        if checkpoint_dir is not None:
            fingerprint = {
                "phase": phase,
                "config": self.config,
                "n_positions": n_positions,
                "experiments": [list(k) for k in keys],
                "epoch_size": epoch_size,
                "sampling": sampling,
                "seed": seed,
                "train_groups": list(train_groups),
                "average_from": average_from,
            }
            checkpointer = Checkpointer(checkpoint_dir, fingerprint)
        try:
            return train(
                trainer,
                n_epochs,
                epoch_size,
                validate=validate if validation is not None else None,
                early_stopping=early_stopping,
                checkpointer=checkpointer,
                checkpoint_every=checkpoint_every,
                resume=resume,
                progress=progress,
                average_from=average_from,
            )
        finally:
            for p in network.parameters():
                p.requires_grad_(False)

    def fit(
        self,
        data: Any,
        n_epochs: int = 200,
        epoch_size: int | None = None,
        sampling: str = "sequential",
        validation: Any = None,
        seed: int | None = None,
        early_stopping: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        progress: bool = True,
        resume: bool = True,
        average_from: int | None = None,
    ) -> dict[str, list[float]]:
        """Train every parameter on observed tracks.

        Parameters
        ----------
        data: Mapping or TrackStore
            ``(biosample, assay) -> 1-D array`` of length ``n_positions`` (in memory or
            memory-mapped), or a TrackStore (its observed tracks are used).
        n_epochs: int, optional
            Epochs to train. Default is 200.
        epoch_size: int or None, optional
            Batches per epoch. Default is None: one pass over the positions.
        sampling: str, optional
            ``"sequential"`` (a scan over positions, one random observed experiment per
            position), ``"permuted"`` (a scan over a random permutation) or ``"random"``
            (independently drawn random positions). Default is ``"sequential"``.
        validation: Mapping or None, optional
            Tracks to compute the validation MSE on after every epoch. Default is None.
        seed: int or None, optional
            Seed of the sampling. Default is None: the model's seed.
        early_stopping: int or None, optional
            Stop after this many epochs without a better validation MSE. Default is None.
        checkpoint_dir: path-like or None, optional
            Write a checkpoint there every ``checkpoint_every`` epochs; when a checkpoint of
            the same run is there already, training resumes from it (``resume=True``) and
            follows the same loss curve. Default is None.
        checkpoint_every: int or None, optional
            Epochs between checkpoints. Default is None: every epoch.
        progress: bool, optional
            Show a progress bar with the loss. Default is True.
        resume: bool, optional
            Resume from a checkpoint in ``checkpoint_dir`` when there is one. Default is True.
        average_from: int or None, optional
            Stochastic weight averaging: the model ends with the mean of its parameters at the
            end of every epoch after this many (e.g. ``n_epochs=60, average_from=30`` averages
            epochs 31-60). The parameters keep moving from epoch to epoch on a few training
            values per genome factor; their mean predicts held-out experiments better (on the
            pilot data it is what beats average activity; see the README). Validation and early
            stopping see each epoch's own parameters. Default is None: the last epoch's.

        Returns
        -------
        dict
            ``{"loss": [...], "val_mse": [...]}`` of this call, one value per epoch.
        """
        keys, arrays = self._experiments(data, self.n_positions)
        history = self._fit_network(
            self.network,
            keys,
            arrays,
            train_groups=("biosample", "assay", "25bp", "250bp", "5kbp", "network"),
            trainable_rows=None,
            n_epochs=n_epochs,
            epoch_size=epoch_size,
            sampling=sampling,
            validation=validation,
            seed=seed,
            early_stopping=early_stopping,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=progress,
            phase="fit",
            average_from=average_from,
        )
        self._extend_history(history)
        return history

    def _extend_history(self, history: dict[str, list[float]]) -> None:
        for key, values in history.items():
            self.history.setdefault(key, []).extend(values)

    def _fit_new_rows(
        self, kind: str, data: Any, names: Sequence[str] | None, **kwargs: Any
    ) -> dict[str, list[float]]:
        data = self._as_mapping(data)
        known = self.biosamples if kind == "biosample" else self.assays
        pos = 0 if kind == "biosample" else 1
        if names is None:
            names = list(dict.fromkeys(k[pos] for k in data.keys() if k[pos] not in known))
        names = _check_names(f"new {kind}s", names)
        old = [n for n in names if n in known]
        if old:
            raise AvocadoValueError(
                f"{kind}s {old} are already in the model; fit_{kind}s only adds new ones"
            )
        missing = [n for n in names if all(k[pos] != n for k in data.keys())]
        if missing:
            raise AvocadoValueError(f"no tracks in data for the new {kind}s {missing}")
        # Grow the table on a copy so that a failure leaves the model unchanged.
        network = copy.deepcopy(self.network)
        table = network.embedding_parameters()[kind]
        seed = kwargs.get("seed")
        seed = self.seed if seed is None else seed
        gen = torch.Generator().manual_seed(seed + 1) if seed is not None else None
        new_rows = torch.empty(len(names), table.shape[1]).uniform_(-0.05, 0.05, generator=gen)
        grown = torch.nn.Embedding(table.shape[0] + len(names), table.shape[1]).to(self.device)
        with torch.no_grad():
            grown.weight[: table.shape[0]] = table
            grown.weight[table.shape[0] :] = new_rows.to(self.device)
        if kind == "biosample":
            network.biosample_embedding = grown
        else:
            network.assay_embedding = grown
        all_names = list(known) + list(names)
        saved = list(known)
        try:
            if kind == "biosample":
                self.biosamples = all_names
                keys, arrays = self._experiments(data, self.n_positions, only_biosamples=names)
            else:
                self.assays = all_names
                keys, arrays = self._experiments(data, self.n_positions, only_assays=names)
            rows = np.arange(len(saved), len(all_names))
            history = self._fit_network(
                network,
                keys,
                arrays,
                train_groups=(kind,),
                trainable_rows={kind: rows},
                phase=f"fit_{kind}s",
                **kwargs,
            )
        except BaseException:
            if kind == "biosample":
                self.biosamples = saved
            else:
                self.assays = saved
            raise
        self.network = network
        return history

    def fit_biosamples(
        self,
        data: Any,
        n_epochs: int = 200,
        epoch_size: int | None = None,
        sampling: str = "sequential",
        biosamples: Sequence[str] | None = None,
        validation: Any = None,
        seed: int | None = None,
        early_stopping: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        progress: bool = True,
        resume: bool = True,
        average_from: int | None = None,
    ) -> dict[str, list[float]]:
        """Add new biosamples to a trained model, learning only their embedding rows.

        Every other parameter (network, assay and genome factors, the existing biosample rows)
        stays bit-for-bit unchanged.

        Parameters
        ----------
        data: Mapping or TrackStore
            Tracks of the new biosamples (with assays the model knows); tracks of biosamples
            the model already has are ignored.
        n_epochs, epoch_size, sampling, validation, seed, early_stopping, checkpoint_dir, \
checkpoint_every, progress, resume, average_from:
            As in :meth:`fit`.
        biosamples: sequence of str or None, optional
            The new biosamples, in the order their rows are added. Default is None: every
            biosample of ``data`` the model does not know, in order of appearance.

        Returns
        -------
        dict
            The history of this call.
        """
        return self._fit_new_rows(
            "biosample",
            data,
            biosamples,
            n_epochs=n_epochs,
            epoch_size=epoch_size,
            sampling=sampling,
            validation=validation,
            seed=seed,
            early_stopping=early_stopping,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            progress=progress,
            resume=resume,
            average_from=average_from,
        )

    def fit_celltypes(self, data: Any, *args: Any, celltypes: Sequence[str] | None = None,
                      **kwargs: Any) -> dict[str, list[float]]:
        """Alias of :meth:`fit_biosamples` (the original package's name)."""
        if celltypes is not None:
            kwargs["biosamples"] = celltypes
        return self.fit_biosamples(data, *args, **kwargs)

    def fit_assays(
        self,
        data: Any,
        n_epochs: int = 200,
        epoch_size: int | None = None,
        sampling: str = "sequential",
        assays: Sequence[str] | None = None,
        validation: Any = None,
        seed: int | None = None,
        early_stopping: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        progress: bool = True,
        resume: bool = True,
        average_from: int | None = None,
    ) -> dict[str, list[float]]:
        """Add new assays to a trained model, learning only their embedding rows.

        Parameters
        ----------
        data: Mapping or TrackStore
            Tracks of the new assays (in biosamples the model knows).
        assays: sequence of str or None, optional
            The new assays. Default is None: every assay of ``data`` the model does not know.
        n_epochs, epoch_size, sampling, validation, seed, early_stopping, checkpoint_dir, \
checkpoint_every, progress, resume, average_from:
            As in :meth:`fit`.

        Returns
        -------
        dict
            The history of this call.
        """
        return self._fit_new_rows(
            "assay",
            data,
            assays,
            n_epochs=n_epochs,
            epoch_size=epoch_size,
            sampling=sampling,
            validation=validation,
            seed=seed,
            early_stopping=early_stopping,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            progress=progress,
            resume=resume,
            average_from=average_from,
        )

    def fit_positions(
        self,
        data: Any,
        n_positions: int,
        n_epochs: int = 200,
        epoch_size: int | None = None,
        sampling: str = "sequential",
        validation: Any = None,
        seed: int | None = None,
        early_stopping: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        progress: bool = True,
        resume: bool = True,
        average_from: int | None = None,
    ) -> Avocado:
        """The genome-wide phase: learn genome factors for a new set of positions.

        The network and the biosample and assay embeddings are copied and frozen; only the new
        25 bp / 250 bp / 5 kbp tables train. Factors of different position sets (e.g. one
        chromosome at a time) are thus comparable, and one network serves them all.

        Parameters
        ----------
        data: Mapping or TrackStore
            Tracks over the new positions, of known biosamples and assays.
        n_positions: int
            Number of positions of the new set.
        n_epochs, epoch_size, sampling, validation, seed, early_stopping, checkpoint_dir, \
checkpoint_every, progress, resume, average_from:
            As in :meth:`fit`.

        Returns
        -------
        Avocado
            A new model over the new positions (this one is unchanged).
        """
        config = self.config
        config.update(n_positions=n_positions, device=self.device)
        if seed is not None:
            config["seed"] = seed
        other = Avocado(**config)
        with torch.no_grad():
            other.network.biosample_embedding.weight.copy_(self.network.biosample_embedding.weight)
            other.network.assay_embedding.weight.copy_(self.network.assay_embedding.weight)
            for mine, theirs in zip(self.network.dense_parameters(),
                                    other.network.dense_parameters()):
                theirs.copy_(mine)
        other.seed = self.seed
        keys, arrays = other._experiments(data, other.n_positions)
        history = other._fit_network(
            other.network,
            keys,
            arrays,
            train_groups=("25bp", "250bp", "5kbp"),
            trainable_rows=None,
            n_epochs=n_epochs,
            epoch_size=epoch_size,
            sampling=sampling,
            validation=validation,
            seed=seed,
            early_stopping=early_stopping,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=progress,
            phase="fit_positions",
            average_from=average_from,
        )
        other._extend_history(history)
        return other

    # ------------------------------------------------------------------ prediction
    def _validation_mse(
        self, network: AvocadoNetwork, keys: list[tuple[str, str]], arrays: list[np.ndarray]
    ) -> float:
        total = 0.0
        for (b, a), y in zip(keys, arrays):
            pred = self._predict_indices(
                network, np.array([self._biosample_index(b)]), np.array([self._assay_index(a)]),
                0, network.n_positions,
            )[0]
            total += float(np.mean((pred.astype(np.float64) - np.asarray(y, np.float64)) ** 2))
        return total / len(keys)

    def _predict_indices(
        self,
        network: AvocadoNetwork,
        b_idx: np.ndarray,
        a_idx: np.ndarray,
        start: int,
        end: int,
    ) -> np.ndarray:
        n_exp = len(b_idx)
        out = np.empty((n_exp, end - start), dtype=np.float32)
        width = network.hidden[0].out_features if network.hidden else 1
        chunk = max(1, _PREDICT_BUDGET // (4 * width * max(n_exp, 1)))
        dev = self.device
        with torch.no_grad():
            exp_term = network.experiment_term(
                torch.as_tensor(b_idx, dtype=torch.long, device=dev),
                torch.as_tensor(a_idx, dtype=torch.long, device=dev),
            )
            for lo in range(start, end, chunk):  # chunks of positions, vectorized inside
                hi = min(end, lo + chunk)
                pos = torch.arange(lo, hi, device=dev)
                pre = network.genome_term(pos).unsqueeze(0) + exp_term.unsqueeze(1)
                out[:, lo - start : hi - start] = network.head(pre).float().cpu().numpy()
        return out

    def _check_range(self, start: int, end: int | None) -> tuple[int, int]:
        end = self.n_positions if end is None else end
        if not (0 <= start < end <= self.n_positions):
            raise AvocadoValueError(
                f"position range [{start}, {end}) is not within [0, {self.n_positions})"
            )
        return int(start), int(end)

    def predict(self, biosample: str, assay: str, start: int = 0, end: int | None = None
                ) -> np.ndarray:
        """Impute one experiment's signal over positions ``[start, end)``.

        Parameters
        ----------
        biosample: str
            A biosample the model knows.
        assay: str
            An assay the model knows.
        start: int, optional
            First position. Default is 0.
        end: int or None, optional
            One past the last position. Default is None: ``n_positions``.

        Returns
        -------
        numpy.ndarray, shape=(end - start,), dtype=float32
        """
        return self.predict_many([(biosample, assay)], start, end)[0]

    def predict_many(
        self, experiments: Sequence[tuple[str, str]], start: int = 0, end: int | None = None
    ) -> np.ndarray:
        """Impute several experiments at once (the genome term is shared between them).

        Parameters
        ----------
        experiments: sequence of (str, str)
            ``(biosample, assay)`` pairs.
        start, end: int, optional
            Position range, as in :meth:`predict`.

        Returns
        -------
        numpy.ndarray, shape=(len(experiments), end - start), dtype=float32
        """
        experiments = list(experiments)
        if not experiments:
            raise AvocadoValueError("predict_many needs at least one (biosample, assay) pair")
        start, end = self._check_range(start, end)
        b_idx = np.array([self._biosample_index(b) for b, _ in experiments])
        a_idx = np.array([self._assay_index(a) for _, a in experiments])
        return self._predict_indices(self.network, b_idx, a_idx, start, end)

    # ------------------------------------------------------------------ embeddings
    def biosample_embedding(self) -> np.ndarray:
        """Learned biosample factors.

        Returns
        -------
        numpy.ndarray, shape=(n_biosamples, n_biosample_factors), dtype=float32
        """
        return self.network.biosample_embedding.weight.detach().cpu().numpy().copy()

    def celltype_embedding(self) -> np.ndarray:
        """Alias of :meth:`biosample_embedding`."""
        return self.biosample_embedding()

    def assay_embedding(self) -> np.ndarray:
        """Learned assay factors.

        Returns
        -------
        numpy.ndarray, shape=(n_assays, n_assay_factors), dtype=float32
        """
        return self.network.assay_embedding.weight.detach().cpu().numpy().copy()

    def genome_factors(self, resolution: str) -> np.ndarray:
        """One raw genome table.

        Parameters
        ----------
        resolution: str
            ``"25bp"`` (one row per position), ``"250bp"`` (row ``i // 10``) or ``"5kbp"``
            (row ``i // 200``).

        Returns
        -------
        numpy.ndarray, shape=(n_rows, n_factors), dtype=float32
        """
        if resolution not in GENOME_RESOLUTIONS:
            raise AvocadoKeyError(
                f"unknown resolution {resolution!r}; expected one of "
                f"{', '.join(GENOME_RESOLUTIONS)}"
            )
        return self.network.genome_tables[resolution].weight.detach().cpu().numpy().copy()

    def genome_embedding(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """Genome factors of positions ``[start, end)``, the coarse ones repeated per position.

        Returns
        -------
        numpy.ndarray, shape=(end - start, n_25bp + n_250bp + n_5kbp factors), dtype=float32
        """
        start, end = self._check_range(start, end)
        with torch.no_grad():
            pos = torch.arange(start, end, device=self.device)
            return self.network.genome_factors(pos).cpu().numpy()

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Save to a directory: ``config.json`` and a safetensors weights file.

        The save is atomic: the weights go to a new file and ``config.json``, which names it,
        is replaced last, so an interrupted save leaves the previous model intact.

        Parameters
        ----------
        path: path-like
            The model directory (created if missing).
        """
        meta = {
            "format": _FORMAT,
            "version": __version__,
            "config": self.config,
            "history": self.history,
        }
        tensors = {k: v for k, v in self.network.state_dict().items()}
        write_tensors_dir(path, meta, tensors, _CONFIG_FILE)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> Avocado:
        """Load a model saved with :meth:`save`.

        Parameters
        ----------
        path: path-like
            The model directory.
        device: str or torch.device or None, optional
            Where to put it. Default is None: CUDA when available, else CPU.

        Returns
        -------
        Avocado

        Raises
        ------
        AvocadoValueError
            The directory is missing, is not a saved model, or is corrupted.
        """
        meta, tensors = read_tensors_dir(path, _CONFIG_FILE)
        if meta.get("format") != _FORMAT or "config" not in meta:
            raise AvocadoValueError(f"{path}: {_CONFIG_FILE} is not an Avocado model config")
        try:
            model = cls(**meta["config"], device=device)
            model.network.load_state_dict(
                {k: v.to(model.device) for k, v in tensors.items()}, strict=True
            )
        except (TypeError, ValueError, RuntimeError, KeyError, OverflowError) as exc:
            # a config field of the wrong type or range is a corrupted model too
            raise AvocadoValueError(
                f"{Path(path) / _CONFIG_FILE}: corrupted model ({exc})") from None
        model.history = {k: list(v) for k, v in meta.get("history", {}).items()}
        for p in model.network.parameters():
            p.requires_grad_(False)
        return model
