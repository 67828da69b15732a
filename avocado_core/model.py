"""The user-facing Avocado model.

:class:`Avocado` holds the names of the biosamples and assays, the configuration and a trained
:class:`~avocado_core.network.AvocadoNetwork`; it validates training data, runs the trainer of
:mod:`avocado_core.training`, imputes tracks, exposes the learned factors and saves / loads
itself as a directory (JSON configuration + safetensors weights, no pickle).
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, kernels
from .baselines import windowed_mean
from .errors import AvocadoKeyError, AvocadoValueError, short_list
from .model_format import CONFIG_FILE, FORMAT, read_tensors_dir, write_tensors_dir
from .network import GENOME_RESOLUTIONS, AvocadoNetwork
from .precision import PRECISIONS, resolve_precision
from .residual import AVERAGE_ACTIVITY_MODES, AverageActivity, ResidualSource
from .training import SAMPLINGS, Checkpointer, FitOptions, Trainer, check_schedule, train
from .training.state import OptimizerStateWarning, check_train_state

__all__ = ["Avocado", "PREDICTION_SETTINGS", "PRESETS"]

#: Key of the optimizer state in a saved model (JSON) and prefix of its tensors.
_OPTIMIZER = "optimizer"
#: Named configurations: keyword arguments of :class:`Avocado` over its defaults. ``"paper"`` is
#: the published architecture (the defaults); ``"small"`` the original tutorial's CPU model.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": dict(
        n_layers=1,
        n_nodes=128,
        n_biosample_factors=32,
        n_assay_factors=24,
        n_25bp_factors=10,
        n_250bp_factors=20,
        n_5kbp_factors=30,
        batch_size=10000,
    ),
}
#: Settings that change predictions only (chosen after training, per biosample if wished).
PREDICTION_SETTINGS = ("activity_blend", "smoothing")
#: Bytes of first-layer activations one prediction chunk may hold (on an accelerator).
_PREDICT_BUDGET = 128 * 2**20
#: The same on the CPU: chunks whose activations stay in cache (a 2 x 64 network predicts a
#: chromosome about 3x faster than with 128 MiB chunks; benchmarks/bench_chromosome.py).
_PREDICT_BUDGET_CPU = 2 * 2**20
#: Widest hidden layers that the CPU predicts with the compiled kernel (kernels.py) when the
#: network has two or more: wider products run faster in torch's GEMM (one hidden layer has no
#: product between hidden layers: the kernel for every width; benchmarks/bench_predict.py).
_KERNEL_MAX_WIDTH = 128
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


def _fits(carry: dict[str, Any], trainer: Trainer, phase: str,
          train_groups: Sequence[str]) -> bool:
    """Whether the optimizer state ``carry`` of an earlier call can continue in ``trainer``.

    One that does not fit (of another kind of fit, other shapes, trained groups or mode) is
    dropped with one OptimizerStateWarning.
    """
    if carry["phase"] != phase:
        warnings.warn(OptimizerStateWarning(phase, f"it is of {carry['phase']}"), stacklevel=4)
        return False
    mine = {"groups": list(train_groups), "shapes": trainer.trained_shapes(),
            "mode": trainer.mode}
    theirs = {"groups": carry["groups"], "shapes": carry["shapes"],
              "mode": carry["trainer"].get("mode")}
    if mine != theirs:
        differ = ", ".join(k for k in mine if mine[k] != theirs[k])
        warnings.warn(OptimizerStateWarning(phase, f"different {differ}"), stacklevel=4)
        return False
    return True


def _continue(trainer: Trainer, carry: dict[str, Any], sampler_key: dict[str, Any],
              average_from: int | None) -> None:
    """Load the optimizer state ``carry`` of an earlier call into ``trainer``.

    The sampler continues only for the same seed, sampling and experiments; the running
    mean of weight averaging only when this call averages too.
    """
    meta, tensors = dict(carry["trainer"]), carry["tensors"]
    if carry["sampler_key"] != json.loads(json.dumps(sampler_key)):
        del meta["sampler"]  # a new seed or data: a new sequence of batches
    if average_from is None:
        meta["n_averaged"] = 0
        tensors = {k: v for k, v in tensors.items() if not k.startswith("average.")}
    trainer.load_state(meta, tensors)


def _kernel_fits(network: AvocadoNetwork) -> bool:
    """Whether the CPU predicts ``network`` with the compiled kernel (see _KERNEL_MAX_WIDTH)."""
    return len(network.hidden) == 1 or (
        len(network.hidden) > 1 and network.hidden[0].out_features <= _KERNEL_MAX_WIDTH)


def _blend_and_smooth(out: np.ndarray, mean: np.ndarray | None, blend: float,
                      smoothing: int) -> np.ndarray:
    """``(1 - blend) out + blend mean``, then its moving mean over ``smoothing`` bins (a new
    array where either applies; ``out`` is left as it is)."""
    if blend:
        out = out * (1.0 - blend)
        out += blend * mean
    if smoothing > 1:
        out = windowed_mean(out, smoothing)
    return out


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
    average_activity: str or None, optional
        Make the model aware of average activity: it keeps the mean of every assay's
        training tracks at each position (recomputed by every ``fit``, saved with the model;
        a training track's own value is left out of what it is trained with). With
        ``"input"`` that mean is one more input of the network's first layer; with
        ``"residual"`` the network learns the residual ``y - mean`` and the model predicts
        mean + network. New biosamples (``fit_biosamples``) use the same per-assay means;
        new assays (``fit_assays``) and new positions (``fit_positions``) get the means of
        their training tracks; an assay with no training track cannot be predicted (a clear
        error). See :mod:`avocado_core.residual`. Default is None (the original model).
    activity_blend: float, optional
        With ``average_activity``: predict ``(1 - activity_blend) * model + activity_blend *
        mean``, shrinking the imputation towards average activity (0: none). It changes
        predictions only, so it can be chosen after training. Default is 0.0.
    smoothing: int, optional
        Imputations are a centred moving mean over this many 25 bp bins of what the model
        computes (1: none). Observed signal at 25 bp is noisy beyond what any model predicts,
        and a few bins of smoothing lower the imputation's error against it (on the pilot's
        validation tracks, a window of 5-9 bins by 1-2%); within ``smoothing // 2`` bins of
        the ends of the model's positions the mean is over the bins present. It changes
        predictions only, so it can be chosen after training. Default is 1.
    biosample_settings: dict, optional
        Per-biosample values of the prediction settings, ``{biosample: {"activity_blend": s,
        "smoothing": n}}`` (either key or both), overriding ``activity_blend`` and
        ``smoothing`` for that biosample's imputations. Biosamples differ in how closely they
        follow the other biosamples' mean, and so in the best blend (``avocado evaluate
        --per-biosample`` chooses them on each biosample's own validation tracks). Biosamples
        not named use the model's settings. Default is None (the same for every biosample).
    device: str or torch.device, optional
        Where to compute. Default is None: CUDA when available, else CPU.
    precision: str, optional
        ``"fp32"``, ``"bf16"`` (training keeps the MLP's activations, their gradients and its
        matrix products in bfloat16, accumulating in fp32; parameters, Adam and the loss stay
        fp32) or ``"auto"``: bf16 for a wide network (two or more hidden layers of 1024 nodes
        or more) on a CPU with native bfloat16 (AMX or AVX512-BF16), fp32 otherwise (see
        :func:`avocado_core.precision.resolve_precision`). Default is ``"auto"``.
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
    optimizer_steps: int or None
        Adam steps of the optimizer state the next fit continues (None: it starts a fresh
        one).
    """

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
        average_activity: str | None = None,
        activity_blend: float = 0.0,
        smoothing: int = 1,
        biosample_settings: Mapping[str, Mapping[str, float]] | None = None,
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
        if average_activity is not None and average_activity not in AVERAGE_ACTIVITY_MODES:
            raise AvocadoValueError(
                f"unknown average_activity {average_activity!r}; expected None or one of "
                f"{', '.join(map(repr, AVERAGE_ACTIVITY_MODES))}"
            )
        if precision not in PRECISIONS:
            raise AvocadoValueError(
                f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}"
            )
        self._sizes = {k: int(v) for k, v in sizes.items()}
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.biosample_decay = float(biosample_decay)
        self.average_activity = average_activity
        self.activity_blend = activity_blend
        self.smoothing = smoothing
        self.biosample_settings = biosample_settings
        #: The per-assay means (with ``average_activity``), set by ``fit``.
        self.activity: AverageActivity | None = None
        self.precision = precision
        self.seed = seed
        self.device = torch.device(device) if device is not None else _default_device()
        self.history: dict[str, list[float]] = {"loss": [], "val_mse": []}
        #: The experiments (biosample, assay) whose tracks any fit of this model trained on
        #: (saved with the model); their imputations are training fit, not held-out quality.
        self.trained_on: list[tuple[str, str]] = []
        # The optimizer state the next fit of the same kind continues (see FitOptions).
        self._train_state: dict[str, Any] | None = None
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.network = AvocadoNetwork(
            len(self.biosamples), len(self.assays), self.n_positions, generator=generator,
            n_activity_inputs=int(average_activity == "input"), **self._sizes,
        ).to(self.device)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def small(
        cls, biosamples: Sequence[str], assays: Sequence[str], n_positions: int, **kwargs: Any
    ) -> Avocado:
        """The original tutorial's small configuration (:data:`PRESETS` ``["small"]``).

        One hidden layer of 128 nodes, 32 biosample / 24 assay factors, 10 / 20 / 30 genome
        factors and batches of 10,000; any keyword overrides.

        Returns
        -------
        Avocado
        """
        return cls(biosamples, assays, n_positions, **{**PRESETS["small"], **kwargs})

    @classmethod
    def from_preset(
        cls,
        config: str | Mapping[str, Any],
        experiments: Iterable[tuple[str, str]],
        n_positions: int,
        **kwargs: Any,
    ) -> Avocado:
        """A new model over the biosamples and assays of some experiments, from a preset.

        The one constructor that the command line, the evaluation, the workspace builder and
        the data-parallel trainer use. Its rule for the order of names: **biosamples and assays
        are sorted by name**, so a model (which embedding row each name gets, and with it the
        initialization a seed gives) does not depend on the order the tracks were ingested in.

        Parameters
        ----------
        config: str or mapping
            A name in :data:`PRESETS` (``"small"`` or ``"paper"``), or keyword arguments of
            :class:`Avocado` with an optional ``"preset"`` key (default ``"paper"``) they
            override, e.g. ``{"preset": "small", "batch_size": 40000}``.
        experiments: iterable of (str, str)
            ``(biosample, assay)`` pairs the model is trained on.
        n_positions: int
            Number of positions (bins).
        **kwargs
            Further keyword arguments of :class:`Avocado` (``seed``, ``device``, ...); they
            override ``config``.

        Returns
        -------
        Avocado

        Raises
        ------
        AvocadoValueError
            An unknown preset, or no experiments.
        """
        options = {"preset": config} if isinstance(config, str) else dict(config)
        preset = options.pop("preset", "paper")
        if preset not in PRESETS:
            raise AvocadoValueError(
                f"config={preset!r}; expected one of {', '.join(map(repr, PRESETS))} or a dict "
                "of Avocado arguments"
            )
        experiments = list(experiments)
        if not experiments:
            raise AvocadoValueError("no experiments to build a model over")
        biosamples = sorted({b for b, _ in experiments})
        assays = sorted({a for _, a in experiments})
        return cls(biosamples, assays, n_positions, **{**PRESETS[preset], **options, **kwargs})

    @classmethod
    def from_original(cls, json_path_or_prefix: str | os.PathLike,
                      device: str | torch.device | None = None) -> Avocado:
        """Read a model saved by the original Avocado package (``NAME.json`` + ``NAME.h5``).

        See :func:`avocado_core.original.read_original` (h5py only, no Keras).

        Returns
        -------
        Avocado
        """
        from .original import read_original

        return read_original(json_path_or_prefix, device=device)

    # ------------------------------------------------------------------ properties
    @property
    def activity_blend(self) -> float:
        """Weight of average activity in the prediction (see the class parameters)."""
        return self._activity_blend

    @activity_blend.setter
    def activity_blend(self, value: float) -> None:
        self._activity_blend = self._checked_setting("activity_blend", value)

    @property
    def smoothing(self) -> int:
        """Width in bins of the moving mean applied to imputations (see the class parameters)."""
        return self._smoothing

    @smoothing.setter
    def smoothing(self, value: int) -> None:
        self._smoothing = self._checked_setting("smoothing", value)

    @property
    def biosample_settings(self) -> dict[str, dict[str, float | int]]:
        """Per-biosample prediction settings (a copy; see the class parameters)."""
        return {b: dict(s) for b, s in self._biosample_settings.items()}

    @biosample_settings.setter
    def biosample_settings(self, value: Mapping[str, Mapping[str, float]] | None) -> None:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise AvocadoValueError(
                f"biosample_settings must be a dict of biosample -> settings, got {value!r}")
        checked = {}
        for biosample, settings in value.items():
            if biosample not in self.biosamples:
                raise AvocadoKeyError(
                    f"biosample_settings: unknown biosample {biosample!r}; the model's "
                    f"biosamples are {short_list(self.biosamples)}")
            checked[biosample] = self._checked_settings(
                f"biosample_settings[{biosample!r}]", settings, allow_empty=False)
        self._biosample_settings = checked

    def _checked_settings(self, label: str, settings: Any, allow_empty: bool
                          ) -> dict[str, float | int]:
        """A dict of prediction settings, each value checked (``label`` names it in errors)."""
        if not isinstance(settings, Mapping) or not (settings or allow_empty) or (
                set(settings) - set(PREDICTION_SETTINGS)):
            raise AvocadoValueError(f"{label} = {settings!r}; expected a dict with some of "
                                    f"{', '.join(PREDICTION_SETTINGS)}")
        return {name: self._checked_setting(name, v) for name, v in settings.items()}

    def _checked_setting(self, name: str, value: Any) -> float | int:
        """A prediction setting's value, checked (``activity_blend`` or ``smoothing``)."""
        if name == "smoothing":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise AvocadoValueError(
                    f"smoothing must be a whole number of bins >= 1, got {value!r}")
            return int(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise AvocadoValueError(f"activity_blend must be in [0, 1], got {value!r}")
        if value and self.average_activity is None:
            raise AvocadoValueError(
                f"activity_blend={value!r} needs average_activity ('input' or 'residual')"
            )
        return float(value)

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
            "average_activity": self.average_activity,
            "activity_blend": self.activity_blend,
            "smoothing": self.smoothing,
            "biosample_settings": self.biosample_settings,
            "precision": self.precision,
            "seed": self.seed,
        }

    @property
    def train_precision(self) -> str:
        """The precision training actually uses (``"auto"`` resolved on this machine)."""
        return resolve_precision(
            self.precision, self._sizes["n_layers"], self._sizes["n_nodes"], self.device
        )

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
                f"unknown biosample {name!r}; the model knows: {short_list(self.biosamples)}"
            ) from None

    def _assay_index(self, name: str) -> int:
        try:
            return self.assays.index(name)
        except ValueError:
            raise AvocadoKeyError(
                f"unknown assay {name!r}; the model knows: {short_list(self.assays)}"
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
                    f"the model's biosamples: {short_list(self.biosamples)}"
                )
            if a not in self.assays:
                raise AvocadoKeyError(
                    f"{what} has assay {a!r} (track {key!r}) that the model does not know; "
                    f"the model's assays: {short_list(self.assays)}"
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
        options: FitOptions,
        *,
        train_groups: Sequence[str],
        trainable_rows: dict[str, np.ndarray] | None,
        phase: str,
        carry: dict[str, Any] | None,
        activity_in_mean: bool = True,
    ) -> tuple[dict[str, list[float]], dict[str, Any]]:
        """Train ``network``, continuing the optimizer state ``carry`` when it fits.

        Returns the history and the optimizer state to carry into the next call.
        """
        sampling, average_from = options.sampling, options.average_from
        if sampling not in SAMPLINGS:
            raise AvocadoValueError(
                f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}"
            )
        for name, optional in (("n_epochs", False), ("epoch_size", True),
                               ("checkpoint_every", True), ("early_stopping", True)):
            value = getattr(options, name)
            if (value is None and optional) or (isinstance(value, (int, np.integer))
                                                and not isinstance(value, bool) and value >= 1):
                continue  # an untrained model would be saved as if trained: refuse
            raise AvocadoValueError(f"{name} must be a positive integer, got {value!r}")
        n_positions = network.n_positions
        epoch_size = options.epoch_size
        if epoch_size is None:
            epoch_size = math.ceil(n_positions / self.batch_size)
        seed = self.seed if options.seed is None else options.seed
        val_keys: list[tuple[str, str]] = []
        val_arrays: list[np.ndarray] = []
        if options.validation is not None:
            val_keys, val_arrays = self._experiments(options.validation, n_positions,
                                                     "validation")
        source = options.make_source(arrays)
        extra: dict[str, Any] = {}
        if self.average_activity is not None:
            a_idx = [self.assays.index(a) for _, a in keys]
            wrapped = ResidualSource(source, self._require_activity(), a_idx,
                                     [activity_in_mean] * len(keys))
            if self.average_activity == "residual":
                source = wrapped
            else:
                extra["activity_input"] = wrapped
        trainer = options.make_trainer(
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
            **extra,
        )
        sampler_key = {"seed": seed, "sampling": sampling, "experiments": [list(k) for k in keys]}
        carry = carry if carry is not None and not options.reset_optimizer else None
        if carry is not None and not _fits(carry, trainer, phase, train_groups):
            carry = None
        first_epoch = 0 if carry is None else int(carry["epochs"])
        check_schedule(options.n_epochs, epoch_size, options.early_stopping,
                       options.validation is not None, average_from, first_epoch)
        if carry is not None:
            _continue(trainer, carry, sampler_key, average_from)
            carry = None  # (the trainer holds its own copy)
        if network is self.network:  # trained in place from here: a failure leaves no state
            self._train_state = None
        start_step = trainer.step_count

        def validate() -> float:
            return self._validation_mse(network, val_keys, val_arrays)

        checkpointer = None
        if options.checkpoint_dir is not None:
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
            if start_step:
                fingerprint["continues_from_step"] = start_step
            checkpointer = Checkpointer(options.checkpoint_dir, fingerprint)
        try:
            history = train(
                trainer,
                options.n_epochs,
                epoch_size,
                validate=validate if options.validation is not None else None,
                early_stopping=options.early_stopping,
                checkpointer=checkpointer,
                checkpoint_every=options.checkpoint_every,
                resume=options.resume,
                progress=options.progress,
                average_from=average_from,
                first_epoch=first_epoch,
            )
        finally:
            for p in network.parameters():
                p.requires_grad_(False)
        state = {
            "phase": phase,
            "groups": list(train_groups),
            "shapes": trainer.trained_shapes(),
            "sampler_key": sampler_key,
            "epochs": first_epoch + len(history["loss"]),
            "trainer": trainer.state_meta(),
        }
        state = json.loads(json.dumps(state))  # as it reads back from a saved model
        state["tensors"] = trainer.state_tensors()
        return history, state

    def fit(
        self, data: Any, *, options: FitOptions | None = None, **kwargs: Any
    ) -> dict[str, list[float]]:
        """Train every parameter on observed tracks.

        A call continues the optimizer state the model's last ``fit`` left (Adam's moments and
        steps, the sequence of batches for the same seed): ten calls of one epoch train like
        one call of ten epochs. ``reset_optimizer=True`` starts a fresh one.

        Parameters
        ----------
        data: Mapping or TrackStore
            ``(biosample, assay) -> 1-D array`` of length ``n_positions`` (in memory or
            memory-mapped), or a TrackStore (its observed tracks are used).
        options: FitOptions or None, optional
            How to train. Default is None: :class:`~avocado_core.training.FitOptions`'
            defaults.
        **kwargs:
            Fields of :class:`~avocado_core.training.FitOptions` (``n_epochs``,
            ``epoch_size``, ``sampling``, ``validation``, ``seed``, ``early_stopping``,
            ``checkpoint_dir``, ``checkpoint_every``, ``progress``, ``resume``,
            ``average_from``, ``reset_optimizer``, ``source``, ``trainer``), replacing those
            of ``options``.

        Returns
        -------
        dict
            ``{"loss": [...], "val_mse": [...]}`` of this call, one value per epoch.
        """
        options = FitOptions.of(options, **kwargs)
        keys, arrays = self._experiments(data, self.n_positions)
        if self.average_activity is not None:
            self.activity = self._activity_of(keys, arrays, self.assays)
        history, self._train_state = self._fit_network(
            self.network,
            keys,
            arrays,
            options,
            train_groups=("biosample", "assay", "25bp", "250bp", "5kbp", "network"),
            trainable_rows=None,
            phase="fit",
            carry=self._train_state,
        )
        self._extend_history(history)
        self._record_training(keys)
        return history

    def _activity_of(self, keys: list[tuple[str, str]], arrays: list[np.ndarray],
                     assays: Sequence[str]) -> AverageActivity:
        """The average activity of ``assays`` from the tracks ``keys`` / ``arrays``."""
        return AverageActivity.from_tracks(
            [assays.index(a) for _, a in keys], arrays, len(assays), len(arrays[0])
        )

    def _require_activity(self) -> AverageActivity:
        if self.activity is None:
            raise AvocadoValueError(
                f"this model uses average activity ({self.average_activity}) but has none yet: "
                "train it with fit() first"
            )
        return self.activity

    @property
    def optimizer_steps(self) -> int | None:
        """Adam steps of the optimizer state the next fit continues (None: none)."""
        state = self._train_state
        return None if state is None else int(state["trainer"]["step_count"])

    def reset_optimizer(self) -> None:
        """Forget the optimizer state: the next fit starts a fresh Adam optimizer.

        Same as passing ``reset_optimizer=True`` to the next fit; it also frees the state's
        memory (Adam's two moments of every trained parameter).
        """
        self._train_state = None

    def _extend_history(self, history: dict[str, list[float]]) -> None:
        for key, values in history.items():
            self.history.setdefault(key, []).extend(values)

    def _record_training(self, keys: Sequence[tuple[str, str]]) -> None:
        """Add the experiments a fit trained on to :attr:`trained_on` (sorted, no repeats)."""
        self.trained_on = sorted(set(self.trained_on) | {(str(b), str(a)) for b, a in keys})

    def _fit_new_rows(
        self, kind: str, data: Any, names: Sequence[str] | None, options: FitOptions
    ) -> dict[str, list[float]]:
        data = self._as_mapping(data)
        known = self.biosamples if kind == "biosample" else self.assays
        pos = 0 if kind == "biosample" else 1
        phase = f"fit_{kind}s"
        # The rows the last call of this method added continue training with its state.
        state = self._train_state
        last = state["names"] if state is not None and state["phase"] == phase else None
        if options.reset_optimizer:
            last = None
        if names is None:
            names = list(dict.fromkeys(k[pos] for k in data.keys() if k[pos] not in known))
            if not names and last is not None:
                names = last
        names = _check_names(f"new {kind}s", names)
        continuing = list(names) == last
        old = [n for n in names if n in known]
        if old and not continuing:
            raise AvocadoValueError(
                f"{kind}s {old} are already in the model; fit_{kind}s only adds new ones "
                "(or continues training the ones its last call added)"
            )
        missing = [n for n in names if all(k[pos] != n for k in data.keys())]
        if missing:
            raise AvocadoValueError(f"no tracks in data for the new {kind}s {missing}")
        # Grow the table on a copy so that a failure leaves the model unchanged.
        network = copy.deepcopy(self.network)
        if not continuing:
            table = network.embedding_parameters()[kind]
            seed = self.seed if options.seed is None else options.seed
            gen = torch.Generator().manual_seed(seed + 1) if seed is not None else None
            new_rows = torch.empty(len(names), table.shape[1]).uniform_(-0.05, 0.05,
                                                                        generator=gen)
            grown = torch.nn.Embedding(table.shape[0] + len(names), table.shape[1]).to(
                self.device)
            with torch.no_grad():
                grown.weight[: table.shape[0]] = table
                grown.weight[table.shape[0] :] = new_rows.to(self.device)
            if kind == "biosample":
                network.biosample_embedding = grown
            else:
                network.assay_embedding = grown
        saved = list(known)
        saved_activity = self.activity
        if self.average_activity is not None:
            self._require_activity()
        all_names = saved if continuing else saved + list(names)
        try:
            if kind == "biosample":
                self.biosamples = all_names
                keys, arrays = self._experiments(data, self.n_positions, only_biosamples=names)
            else:
                self.assays = all_names
                keys, arrays = self._experiments(data, self.n_positions, only_assays=names)
                if self.average_activity is not None:  # the new assays' rows: their tracks
                    new = self._activity_of(keys, arrays, list(names))
                    self.activity = (saved_activity.with_rows(
                        [all_names.index(n) for n in names], new) if continuing
                        else saved_activity.extended(new))
            rows = np.array([all_names.index(n) for n in names])
            history, new_state = self._fit_network(
                network,
                keys,
                arrays,
                options,
                train_groups=(kind,),
                trainable_rows={kind: rows},
                phase=phase,
                carry=state if continuing else None,
                activity_in_mean=kind == "assay",
            )
        except BaseException:
            self.activity = saved_activity
            if kind == "biosample":
                self.biosamples = saved
            else:
                self.assays = saved
            raise
        self.network = network
        self._record_training(keys)
        self._train_state = dict(new_state, names=list(names))
        return history

    def fit_biosamples(
        self,
        data: Any,
        *,
        biosamples: Sequence[str] | None = None,
        options: FitOptions | None = None,
        **kwargs: Any,
    ) -> dict[str, list[float]]:
        """Add new biosamples to a trained model, learning only their embedding rows.

        Every other parameter (network, assay and genome factors, the existing biosample rows)
        stays bit-for-bit unchanged.

        Parameters
        ----------
        data: Mapping or TrackStore
            Tracks of the new biosamples (with assays the model knows); tracks of biosamples
            the model already has are ignored.
        biosamples: sequence of str or None, optional
            The new biosamples, in the order their rows are added. Default is None: every
            biosample of ``data`` the model does not know, in order of appearance.
        options, **kwargs:
            As in :meth:`fit`.

        Returns
        -------
        dict
            The history of this call.
        """
        return self._fit_new_rows("biosample", data, biosamples, FitOptions.of(options, **kwargs))

    def fit_celltypes(self, data: Any, *args: Any, celltypes: Sequence[str] | None = None,
                      **kwargs: Any) -> dict[str, list[float]]:
        """Alias of :meth:`fit_biosamples` (the original package's name)."""
        if celltypes is not None:
            kwargs["biosamples"] = celltypes
        return self.fit_biosamples(data, *args, **kwargs)

    def fit_assays(
        self,
        data: Any,
        *,
        assays: Sequence[str] | None = None,
        options: FitOptions | None = None,
        **kwargs: Any,
    ) -> dict[str, list[float]]:
        """Add new assays to a trained model, learning only their embedding rows.

        Parameters
        ----------
        data: Mapping or TrackStore
            Tracks of the new assays (in biosamples the model knows).
        assays: sequence of str or None, optional
            The new assays. Default is None: every assay of ``data`` the model does not know.
        options, **kwargs:
            As in :meth:`fit`.

        Returns
        -------
        dict
            The history of this call.
        """
        return self._fit_new_rows("assay", data, assays, FitOptions.of(options, **kwargs))

    def fit_positions(
        self,
        data: Any,
        n_positions: int,
        *,
        options: FitOptions | None = None,
        **kwargs: Any,
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
        options, **kwargs:
            As in :meth:`fit`.

        Returns
        -------
        Avocado
            A new model over the new positions (this one is unchanged).
        """
        options = FitOptions.of(options, **kwargs)
        config = self.config
        config.update(n_positions=n_positions, device=self.device)
        if options.seed is not None:
            config["seed"] = options.seed
        other = Avocado(**config)
        # A model that fit_positions made continues training its own genome factors.
        state = self._train_state
        continuing = (state is not None and state["phase"] == "fit_positions"
                      and n_positions == self.n_positions and not options.reset_optimizer)
        with torch.no_grad():
            other.network.biosample_embedding.weight.copy_(self.network.biosample_embedding.weight)
            other.network.assay_embedding.weight.copy_(self.network.assay_embedding.weight)
            for mine, theirs in zip(self.network.dense_parameters(),
                                    other.network.dense_parameters()):
                theirs.copy_(mine)
            if continuing:
                for res in GENOME_RESOLUTIONS:
                    other.network.genome_tables[res].weight.copy_(
                        self.network.genome_tables[res].weight)
        other.seed = self.seed
        other.history = {k: list(v) for k, v in self.history.items()} if continuing else {
            "loss": [], "val_mse": []}
        keys, arrays = other._experiments(data, other.n_positions)
        if other.average_activity is not None:
            other.activity = other._activity_of(keys, arrays, other.assays)
        history, other._train_state = other._fit_network(
            other.network,
            keys,
            arrays,
            options,
            train_groups=("25bp", "250bp", "5kbp"),
            trainable_rows=None,
            phase="fit_positions",
            carry=state if continuing else None,
        )
        other._extend_history(history)
        other.trained_on = list(self.trained_on)
        other._record_training(keys)
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
        groups = self._setting_groups(b_idx)
        if len(groups) == 1:
            blend, smoothing, _ = groups[0]
            return self._predict_rows(network, b_idx, a_idx, start, end, blend, smoothing)
        out = None
        for blend, smoothing, rows in groups:
            part = self._predict_rows(network, b_idx[rows], a_idx[rows], start, end, blend,
                                      smoothing)
            if out is None:
                out = np.empty((len(b_idx), part.shape[1]), part.dtype)
            out[rows] = part
        return out

    def _setting_groups(self, b_idx: np.ndarray) -> list[tuple[float, int, np.ndarray]]:
        """The rows of ``b_idx`` that share prediction settings: (blend, smoothing, rows)."""
        if not self._biosample_settings:
            return [(self.activity_blend, self.smoothing, np.arange(len(b_idx)))]
        groups: dict[tuple[float, int], list[int]] = {}
        for row, index in enumerate(b_idx):
            groups.setdefault(self._own_settings(int(index)), []).append(row)
        return [(blend, smoothing, np.array(rows)) for (blend, smoothing), rows in groups.items()]

    def _own_settings(self, index: int) -> tuple[float, int]:
        """The blend and smoothing of biosample ``index``'s imputations."""
        own = self._biosample_settings.get(self.biosamples[index], {})
        return (own.get("activity_blend", self.activity_blend),
                own.get("smoothing", self.smoothing))

    def _predict_rows(
        self,
        network: AvocadoNetwork,
        b_idx: np.ndarray,
        a_idx: np.ndarray,
        start: int,
        end: int,
        blend: float,
        smoothing: int,
    ) -> np.ndarray:
        """Imputations of rows that share the blend and the smoothing.

        A moving mean reads the model half a window past each end of the range (as far as
        there are positions), so a range gives the values of a whole prediction.
        """
        lo = max(0, start - smoothing // 2)
        hi = min(network.n_positions, end + (smoothing - 1) // 2)
        out, mean = self._network_rows(network, b_idx, a_idx, lo, hi, bool(blend))
        return _blend_and_smooth(out, mean, blend, smoothing)[:, start - lo : end - lo]

    def _network_rows(
        self,
        network: AvocadoNetwork,
        b_idx: np.ndarray,
        a_idx: np.ndarray,
        lo: int,
        hi: int,
        with_mean: bool,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's output before any blend or smoothing, and (if ``with_mean``) the rows'
        average activity."""
        if self.device.type == "cpu" and _kernel_fits(network):
            out = self._predict_kernel(network, b_idx, a_idx, lo, hi)
        else:
            out = self._predict_torch(network, b_idx, a_idx, lo, hi)
        mean = None
        if self.average_activity == "residual" or with_mean:
            mean = self._require_activity().rows(a_idx, lo, hi, self.assays)
            if self.average_activity == "residual":
                out += mean
        return out, mean

    def _predict_kernel(
        self, network: AvocadoNetwork, b_idx: np.ndarray, a_idx: np.ndarray, start: int, end: int
    ) -> np.ndarray:
        """The network's output by :func:`kernels.predict_positions` (CPU: one compiled call
        per thread that holds no GIL; as many threads as torch uses)."""
        activity = None
        if self.average_activity == "input":
            activity = self._require_activity().rows(a_idx, start, end, self.assays)
        return kernels.predict_positions(
            [t.weight.detach().numpy() for t in network.genome_tables.values()],
            [network.biosample_embedding.weight.detach().numpy(),
             network.assay_embedding.weight.detach().numpy()],
            (b_idx, a_idx),
            [(layer.weight.detach().numpy(), layer.bias.detach().numpy())
             for layer in [*network.hidden, network.output]],
            start, end, activity,
            threads=torch.get_num_threads(),
        )

    def _predict_torch(
        self, network: AvocadoNetwork, b_idx: np.ndarray, a_idx: np.ndarray, start: int, end: int
    ) -> np.ndarray:
        """The network's output by torch, chunk by chunk (an accelerator, or wide layers)."""
        n_exp = len(b_idx)
        out = np.empty((n_exp, end - start), dtype=np.float32)
        width = network.hidden[0].out_features if network.hidden else 1
        dev = self.device
        budget = _PREDICT_BUDGET_CPU if dev.type == "cpu" else _PREDICT_BUDGET
        chunk = max(1, budget // (4 * width * max(n_exp, 1)))
        with torch.no_grad():
            exp_term = network.experiment_term(
                torch.as_tensor(b_idx, dtype=torch.long, device=dev),
                torch.as_tensor(a_idx, dtype=torch.long, device=dev),
            )
            for lo in range(start, end, chunk):  # chunks of positions, vectorized inside
                hi = min(end, lo + chunk)
                pos = torch.arange(lo, hi, device=dev)
                pre = network.genome_term(pos).unsqueeze(0) + exp_term.unsqueeze(1)
                if self.average_activity == "input":
                    mean = self._require_activity().rows(a_idx, lo, hi, self.assays)
                    pre += torch.from_numpy(mean).to(dev)[:, :, None] * network.activity_weight()
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

    def predict_settings(
        self, biosample: str, assay: str, settings: Sequence[Mapping[str, Any]]
    ) -> np.ndarray:
        """One experiment's imputation under several prediction settings, from one network pass.

        What :meth:`predict` returns with ``activity_blend`` and ``smoothing`` set to each
        entry's values in turn (the same numbers), at the cost of one prediction and a blend
        and a moving mean per entry: model selection scores a grid of these settings this way.

        Parameters
        ----------
        biosample, assay: str
            The experiment.
        settings: sequence of dict
            Each a dict with some of ``activity_blend`` and ``smoothing``
            (:data:`PREDICTION_SETTINGS`); what an entry leaves out is the biosample's own
            setting (``biosample_settings``, else the model's).

        Returns
        -------
        numpy.ndarray, shape=(len(settings), n_positions), dtype=float32
        """
        b_idx = np.array([self._biosample_index(biosample)])
        a_idx = np.array([self._assay_index(assay)])
        own_blend, own_smoothing = self._own_settings(int(b_idx[0]))
        chosen = []
        for entry in settings:
            entry = self._checked_settings("settings entry", entry, allow_empty=True)
            chosen.append((entry.get("activity_blend", own_blend),
                           entry.get("smoothing", own_smoothing)))
        if not chosen:
            raise AvocadoValueError("predict_settings needs at least one settings entry")
        out, mean = self._network_rows(self.network, b_idx, a_idx, 0, self.n_positions,
                                       any(blend for blend, _ in chosen))
        return np.concatenate([_blend_and_smooth(out, mean, blend, smoothing)
                               for blend, smoothing in chosen])

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
    def save(self, path: str | os.PathLike, optimizer: bool = False) -> None:
        """Save to a directory: ``config.json`` and a safetensors weights file.

        The save is atomic: the weights go to a new file and ``config.json``, which names it,
        is replaced last, so an interrupted save leaves the previous model intact.

        Parameters
        ----------
        path: path-like
            The model directory (created if missing).
        optimizer: bool, optional
            Also store the optimizer state (the trainer's checkpoint state: Adam's moments and
            steps, the sampler, the weight-averaging sums; about twice the trained weights,
            four times with weight averaging), so that
            :meth:`load` followed by the same ``fit`` continues the same trajectory.
            Default is False.

        Raises
        ------
        AvocadoValueError
            ``optimizer=True`` but the model has no optimizer state.
        """
        meta = {
            "format": FORMAT,
            "version": __version__,
            "config": self.config,
            "history": self.history,
            "trained_on": [list(k) for k in self.trained_on],
        }
        tensors = {k: v for k, v in self.network.state_dict().items()}
        if self.activity is not None:
            tensors.update(self.activity.tensors())
        if optimizer:
            if self._train_state is None:
                raise AvocadoValueError(
                    "no optimizer state to save: the model has not been trained since it was "
                    "created, loaded or reset_optimizer() was called; save without optimizer=True"
                )
            state = dict(self._train_state)
            tensors.update({f"{_OPTIMIZER}.{k}": v for k, v in state.pop("tensors").items()})
            meta[_OPTIMIZER] = state
        write_tensors_dir(path, meta, tensors, CONFIG_FILE)

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
            With the optimizer state when it was saved (``save(..., optimizer=True)``): the
            next fit of the same kind continues it.

        Raises
        ------
        AvocadoValueError
            The directory is missing, is not a saved model, or is corrupted.
        """
        meta, tensors = read_tensors_dir(path, CONFIG_FILE)
        if meta.get("format") != FORMAT or "config" not in meta:
            raise AvocadoValueError(f"{path}: {CONFIG_FILE} is not an Avocado model config")
        prefix = f"{_OPTIMIZER}."
        try:
            model = cls(**meta["config"], device=device)
            tensors = dict(tensors)
            model.activity = AverageActivity.from_tensors(tensors)
            model.network.load_state_dict(
                {k: v.to(model.device) for k, v in tensors.items() if not k.startswith(prefix)},
                strict=True,
            )
        except (TypeError, ValueError, RuntimeError, KeyError, OverflowError) as exc:
            # a config field of the wrong type or range is a corrupted model too
            raise AvocadoValueError(
                f"{Path(path) / CONFIG_FILE}: corrupted model ({exc})") from None
        model.history = {k: list(v) for k, v in meta.get("history", {}).items()}
        model.trained_on = [(str(b), str(a)) for b, a in meta.get("trained_on", [])]
        if _OPTIMIZER in meta:
            model._train_state = check_train_state(meta[_OPTIMIZER], {
                k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)},
                model.network, str(path))
        for p in model.network.parameters():
            p.requires_grad_(False)
        return model
