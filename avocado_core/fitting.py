"""Training a model: the ``fit`` entry points of :class:`~avocado_core.model.Avocado`.

:class:`FittingMixin` validates the training tracks, hands them with the model's settings to
the trainer of :mod:`avocado_core.training` and keeps the optimizer state a later call of the
same method continues: ``fit`` (every parameter), ``fit_biosamples`` / ``fit_assays`` (new
embedding rows only) and ``fit_positions`` (the genome-wide phase: new genome factors under a
frozen network). Their keyword arguments are :class:`~avocado_core.training.FitOptions`'
fields, documented there once and shown in each signature.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .choice import choose_fit_settings, describe_choice
from .errors import AvocadoKeyError, AvocadoValueError, short_list
from .network import GENOME_RESOLUTIONS, AvocadoNetwork
from .residual import AverageActivity, ResidualSource
from .training import (
    SAMPLINGS,
    Checkpointer,
    FitKwargs,
    FitOptions,
    Trainer,
    check_schedule,
    shows_fit_options,
    train,
)
from .training.state import OptimizerStateWarning

if TYPE_CHECKING:  # Python 3.10 has neither in typing; annotations here are never evaluated
    from typing_extensions import Self, Unpack

__all__ = ["FittingMixin"]

#: Largest finiteness check read at once from a (memory-mapped) track.
_CHECK_CHUNK = 1 << 22


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


class FittingMixin:
    """The training entry points of :class:`~avocado_core.model.Avocado` (which holds the
    network, the names and the settings they train with)."""

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
            epoch_size = math.ceil(options.n_trained_positions(n_positions) / self.batch_size)
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
        # Kept in host memory: a GPU holds the optimizer state only while it trains, and the
        # next fit builds its own state before this one is copied into it (no two at once).
        state["tensors"] = {k: v.cpu() for k, v in trainer.state_tensors().items()}
        return history, state

    @shows_fit_options
    def fit(
        self, data: Any, *, options: FitOptions | None = None, **kwargs: Unpack[FitKwargs]
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
            ``average_from``, ``reset_optimizer``, ``choose_settings``, ``source``,
            ``trainer``), replacing those of ``options``; the signature lists them with their
            defaults.

        Returns
        -------
        dict
            ``{"loss": [...], "val_mse": [...]}`` of this call, one value per epoch (of the
            final training on all tracks, after the settings were chosen).
        """
        options = FitOptions.of(options, **kwargs)
        keys, arrays = self._experiments(data, self.n_positions)
        fresh = self._train_state is None or self._train_state["phase"] != "fit" or (
            options.reset_optimizer)
        if options.choose_settings and fresh:
            options = self._choose_settings(dict(zip(keys, arrays)), options)
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

    def _choose_settings(self, tracks: dict[tuple[str, str], np.ndarray], options: FitOptions
                         ) -> FitOptions:
        """Choose the averaging window and each biosample's prediction settings on validation
        tracks split off ``tracks`` (:func:`avocado_core.choice.choose_fit_settings`), set them
        and record the choice; the options the final training runs with."""
        seed = options.seed if options.seed is not None else (self.seed or 0)
        try:
            if options.positions is not None:  # validation scores would read unfitted bins
                raise AvocadoValueError("it scores every position, and positions= trains on "
                                        "some")
            chosen = choose_fit_settings(self, tracks, options, seed)
        except AvocadoValueError as exc:  # e.g. too few tracks to split off validation tracks
            warnings.warn(f"choose_settings: {exc}; training with the settings as given "
                          "(pass choose_settings=False to skip the choice)", stacklevel=4)
            return dataclasses.replace(options, choose_settings=False)
        self.biosample_settings = chosen["biosample_settings"]
        self.choice = {**chosen, "seed": seed}
        if options.progress:
            tqdm.write(f"chosen on validation tracks: {describe_choice(self.choice)}",
                       file=sys.stderr)
        return dataclasses.replace(options, average_from=chosen["average_from"],
                                   choose_settings=False)

    def _activity_of(self, keys: list[tuple[str, str]], arrays: list[np.ndarray],
                     assays: Sequence[str]) -> AverageActivity:
        """The average activity of ``assays`` from the tracks ``keys`` / ``arrays``."""
        return AverageActivity.from_tracks(
            [assays.index(a) for _, a in keys], arrays, len(assays), len(arrays[0])
        )

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
        names = self._check_names(f"new {kind}s", names)
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

    @shows_fit_options
    def fit_biosamples(
        self,
        data: Any,
        *,
        biosamples: Sequence[str] | None = None,
        options: FitOptions | None = None,
        **kwargs: Unpack[FitKwargs],
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

    @shows_fit_options
    def fit_assays(
        self,
        data: Any,
        *,
        assays: Sequence[str] | None = None,
        options: FitOptions | None = None,
        **kwargs: Unpack[FitKwargs],
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

    @shows_fit_options
    def fit_positions(
        self,
        data: Any,
        n_positions: int,
        *,
        options: FitOptions | None = None,
        **kwargs: Unpack[FitKwargs],
    ) -> Self:
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
        other = type(self)(**config)
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
        other.choice = self.choice
        other._record_training(keys)
        return other
