"""The user-facing Avocado model: building it and saving / loading it.

:class:`Avocado` holds the names of the biosamples and assays, the configuration, the
prediction settings and a :class:`~avocado_core.network.AvocadoNetwork`, and saves / loads
itself as a directory (JSON configuration + safetensors weights, no pickle). Its other jobs
live in one module each, mixed into the class: training (:mod:`avocado_core.fitting`),
imputation (:mod:`avocado_core.prediction`) and the learned factors
(:mod:`avocado_core.embeddings`). Models of the original Keras package are read by
:func:`avocado_core.original.read_original`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .devices import as_device
from .embeddings import EmbeddingMixin
from .errors import AvocadoKeyError, AvocadoValueError, short_list
from .fitting import FittingMixin
from .model_format import CONFIG_FILE, FORMAT, read_tensors_dir, write_tensors_dir
from .network import AvocadoNetwork
from .precision import PRECISIONS, resolve_precision
from .prediction import PREDICTION_SETTINGS, PredictionMixin
from .residual import AVERAGE_ACTIVITY_MODES, AverageActivity
from .training.state import check_train_state

__all__ = ["Avocado", "PRESETS"]

#: Key of the optimizer state in a saved model (JSON) and prefix of its tensors.
_OPTIMIZER = "optimizer"
#: The original tutorial's CPU-sized architecture (one hidden layer of 128 nodes).
_TUTORIAL = dict(n_layers=1, n_nodes=128, n_biosample_factors=32, n_assay_factors=24,
                 n_25bp_factors=10, n_250bp_factors=20, n_5kbp_factors=30)
#: Named configurations: keyword arguments of :class:`Avocado` over its defaults (the published
#: architecture). ``"small"`` is the best recipe measured here, on the pilot's validation
#: tracks: the tutorial's architecture, batches of 40,000 at a learning rate of 0.002, and
#: average activity as an input (with ``fit``'s defaults: 30 epochs and the settings chosen on
#: validation tracks). ``"paper"`` is the published configuration, and ``"original-small"``
#: the original tutorial's exactly (batches of 10,000 at 0.001, no average activity): with
#: ``choose_settings=False`` they train as the original package does.
PRESETS: dict[str, dict[str, Any]] = {
    "small": dict(_TUTORIAL, batch_size=40000, learning_rate=0.002, average_activity="input"),
    "paper": {},
    "original-small": dict(_TUTORIAL, batch_size=10000),
}


class Avocado(FittingMixin, PredictionMixin, EmbeddingMixin):
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
    n_layers, n_nodes: int, optional
        How many hidden ReLU layers, and their width. Defaults are 2 and 2,048.
    n_biosample_factors, n_assay_factors, n_25bp_factors, n_250bp_factors, n_5kbp_factors:
        Embedding widths (int), as in :class:`~avocado_core.network.AvocadoNetwork`. Defaults
        are the published architecture's: 32, 256, 25, 40 and 45.
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
        self.biosamples = self._check_names("biosamples", biosamples)
        self.assays = self._check_names("assays", assays)
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
        self.device = as_device(device)
        self.history: dict[str, list[float]] = {"loss": [], "val_mse": []}
        #: The experiments (biosample, assay) whose tracks any fit of this model trained on
        #: (saved with the model); their imputations are training fit, not held-out quality.
        self.trained_on: list[tuple[str, str]] = []
        #: What the last fresh ``fit`` chose on validation tracks (``choose_settings``; see
        #: :func:`avocado_core.choice.describe_choice`), saved with the model; None if nothing.
        self.choice: dict[str, Any] | None = None
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
        """The ``"small"`` preset (:data:`PRESETS`) over these names.

        The original tutorial's network (one hidden layer of 128 nodes, 32 biosample / 24
        assay factors, 10 / 20 / 30 genome factors) with the recipe measured best here:
        batches of 40,000 at a learning rate of 0.002 and average activity as an input; any
        keyword overrides.

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
    @staticmethod
    def _check_names(kind: str, names: Iterable[str] | None) -> list[str]:
        """``names`` as a list, or a clear error: missing, a lone string, empty, not non-empty
        strings, or repeated."""
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

    def _require_activity(self) -> AverageActivity:
        if self.activity is None:
            raise AvocadoValueError(
                f"this model uses average activity ({self.average_activity}) but has none yet: "
                "train it with fit() first"
            )
        return self.activity

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
            "choice": self.choice,
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
            target = as_device(device)
            # Built on the meta device (no values, no random initialization), given the
            # tensors as they were read, then moved once: the device never holds two copies.
            # (On the CPU they are copied once: the file's buffers lack the alignment of
            # torch's, and vectorized sums round differently at another alignment.)
            with torch.device("meta"):
                model = cls(**meta["config"], device="meta")
            tensors = dict(tensors)
            model.activity = AverageActivity.from_tensors(tensors)
            model.network.load_state_dict(
                {k: v.clone() if target.type == "cpu" else v
                 for k, v in tensors.items() if not k.startswith(prefix)},
                strict=True, assign=True,
            )
            model.network.to(target)
            model.device = target
        except (TypeError, ValueError, RuntimeError, KeyError, OverflowError) as exc:
            # a config field of the wrong type or range is a corrupted model too
            raise AvocadoValueError(
                f"{Path(path) / CONFIG_FILE}: corrupted model ({exc})") from None
        model.history = {k: list(v) for k, v in meta.get("history", {}).items()}
        model.trained_on = [(str(b), str(a)) for b, a in meta.get("trained_on", [])]
        model.choice = meta.get("choice")
        if _OPTIMIZER in meta:
            model._train_state = check_train_state(meta[_OPTIMIZER], {
                k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)},
                model.network, str(path))
        for p in model.network.parameters():
            p.requires_grad_(False)
        return model
