"""Ensembles: the mean imputation of several Avocado models of one tensor.

Models trained on the same data from different seeds make different errors where the data
leave the factors loosely determined (a held-out experiment is one such place); the mean of
their imputations keeps what they agree on. :class:`AvocadoEnsemble` offers the prediction
interface of :class:`~avocado_core.model.Avocado` (``biosamples``, ``assays``,
``n_positions``, ``predict``, ``predict_many``), so ``impute_experiments`` and
``cross_validate`` take it where they take one model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import _io
from .errors import AvocadoValueError, short_list
from .model import Avocado

__all__ = ["AvocadoEnsemble", "MEMBERS_DIR", "check_n_models", "load_model", "member_paths",
           "member_seed"]

#: Subfolder of a model folder that holds an ensemble's further members (``members/1``, ...):
#: the folder itself is member 0, an ordinary model that :meth:`Avocado.load` reads.
MEMBERS_DIR = "members"

#: Seed offset between the members of an ensemble (see :func:`member_seed`).
SEED_STRIDE = 100


def check_n_models(n_models: Any) -> int:
    """``n_models`` as an int, or a clear error if it is not a whole number >= 1."""
    if isinstance(n_models, bool) or int(n_models) != n_models or n_models < 1:
        raise AvocadoValueError(f"n_models must be an integer >= 1, got {n_models!r}")
    return int(n_models)


def member_seed(seed: int, member: int) -> int:
    """The seed of member ``member`` of an ensemble started from ``seed``.

    Member 0 uses ``seed`` itself, so a one-model ensemble is the plain model; member k uses
    ``seed + 100 k``.
    """
    return int(seed) + SEED_STRIDE * int(member)


class AvocadoEnsemble:
    """The mean imputation of several Avocado models over the same tensor.

    Parameters
    ----------
    models: sequence of Avocado
        At least one model; all must know the same biosamples and assays, in the same order,
        and cover the same number of positions.

    Examples
    --------
    >>> members = [Avocado.small(biosamples, assays, n, seed=s) for s in (0, 100, 200)]
    >>> for m, s in zip(members, (0, 100, 200)):
    ...     m.fit(tracks, n_epochs=45, seed=s, average_from=10)
    >>> AvocadoEnsemble(members).predict("E017", "H3K4me3")
    """

    def __init__(self, models: Sequence[Avocado]) -> None:
        models = list(models)
        if not models:
            raise AvocadoValueError("an ensemble needs at least one model, got none")
        first = models[0]
        for i, m in enumerate(models[1:], start=1):
            for what in ("biosamples", "assays", "n_positions"):
                if getattr(m, what) != getattr(first, what):
                    raise AvocadoValueError(
                        f"model {i} of the ensemble has {what} {_brief(getattr(m, what))}; "
                        f"expected those of model 0: {_brief(getattr(first, what))}"
                    )
        self.models = models

    @classmethod
    def fit(
        cls,
        make_model: Callable[[int], Avocado],
        data: Any,
        n_models: int,
        seed: int = 0,
        **fit_kwargs: Any,
    ) -> AvocadoEnsemble:
        """Train ``n_models`` models, each from its own seed (:func:`member_seed`).

        The settings that ``fit`` chooses on validation tracks (``choose_settings``) are
        chosen once, by member 0, and the other members train with them. With a
        ``checkpoint_dir``, member k checkpoints into its ``member-k`` subfolder.

        Parameters
        ----------
        make_model: callable
            ``make_model(seed)`` returns a new, untrained model initialized from ``seed``.
        data: Mapping or TrackStore
            Observed tracks, as for :meth:`Avocado.fit`.
        n_models: int
            Number of members (at least 1).
        seed: int, optional
            Seed of member 0. Default is 0.
        **fit_kwargs
            Further arguments of :meth:`Avocado.fit` (``n_epochs``, ``average_from``, ...).

        Returns
        -------
        AvocadoEnsemble
        """
        models: list[Avocado] = []
        n_models = check_n_models(n_models)
        checkpoints = fit_kwargs.pop("checkpoint_dir", None)
        for k in range(n_models):
            s = member_seed(seed, k)
            model = make_model(s)
            if checkpoints is not None:  # each member resumes its own run
                fit_kwargs["checkpoint_dir"] = (Path(checkpoints) / f"member-{k}"
                                                if n_models > 1 else checkpoints)
            first = models[0] if models else None
            if first is not None and first.choice is not None:  # member 0's choice, shared
                model.biosample_settings = first.biosample_settings
                model.choice = first.choice
                model.fit(data, seed=s, **{**fit_kwargs, "choose_settings": False,
                                           "average_from": first.choice["average_from"]})
            else:
                model.fit(data, seed=s, **fit_kwargs)
            models.append(model)
        return cls(models)

    @classmethod
    def load(
        cls, paths: str | os.PathLike | Sequence[str | os.PathLike],
        device: str | torch.device | None = None,
    ) -> AvocadoEnsemble:
        """Load an ensemble saved with :meth:`save` (one folder), or one model per path of a
        list (an ensemble of models saved apart; a folder with members adds all of them)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        return cls([Avocado.load(p, device=device) for path in paths
                    for p in member_paths(path)])

    def save(self, path: str | os.PathLike, optimizer: bool = False) -> None:
        """Save to one model folder: member 0 as an ordinary model (what :meth:`Avocado.load`
        reads), the others under ``members/1``, ``members/2``, ...; the folder is replaced
        as a whole, atomically. ``optimizer`` as in :meth:`Avocado.save`, for every member."""
        with _io.atomic_dir(path) as tmp:
            for k, model in enumerate(self.models):
                model.save(tmp / MEMBERS_DIR / str(k) if k else tmp, optimizer=optimizer)

    @property
    def biosamples(self) -> list[str]:
        """The biosamples of the members."""
        return self.models[0].biosamples

    @property
    def assays(self) -> list[str]:
        """The assays of the members."""
        return self.models[0].assays

    @property
    def n_positions(self) -> int:
        """The positions the members cover."""
        return self.models[0].n_positions

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        return f"AvocadoEnsemble({len(self.models)} models: {self.models[0]!r})"

    #: One experiment: :meth:`predict_many` of one pair (the same code as :meth:`Avocado.predict`).
    predict = Avocado.predict

    @property
    def predict_precision(self) -> str:
        """The precision the members predict in (see ``Avocado.predict_precision``)."""
        return self.models[0].predict_precision

    @property
    def trained_on(self) -> list[tuple[str, str]]:
        """The experiments any member trained on (see :attr:`Avocado.trained_on`)."""
        return sorted(set().union(*(m.trained_on for m in self.models)))

    def predict_many(
        self, experiments: Sequence[tuple[str, str]], start: int = 0, end: int | None = None
    ) -> np.ndarray:
        """The members' mean imputation of several experiments (see :meth:`Avocado.predict_many`).

        Returns
        -------
        numpy.ndarray, shape=(len(experiments), end - start), dtype=float32
        """
        return self._moments(experiments, start, end, spread=False)[0]

    def predict_spread(
        self, experiments: Sequence[tuple[str, str]], start: int = 0, end: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The members' mean imputation and their standard deviation around it.

        The spread says where the members disagree; it is not a calibrated error bar (members
        agree more than they are right): :mod:`avocado_core.uncertainty` turns it into a band
        calibrated on held-out tracks.

        Returns
        -------
        mean, spread: numpy.ndarray, shape=(len(experiments), end - start), dtype=float32
            ``spread`` is the population standard deviation across members (0 for one model).
        """
        return self._moments(experiments, start, end, spread=True)

    def _moments(self, experiments, start, end, spread: bool):
        total = self.models[0].predict_many(experiments, start, end).astype(np.float64)
        squares = total**2 if spread else None
        for model in self.models[1:]:
            values = model.predict_many(experiments, start, end).astype(np.float64)
            total += values
            if spread:
                squares += values**2
        mean = total / len(self.models)
        if not spread:
            return mean.astype(np.float32), None
        var = np.maximum(squares / len(self.models) - mean**2, 0.0)
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def member_paths(path: str | os.PathLike) -> list[Path]:
    """The model folders of the ensemble saved in ``path``: ``path`` itself (member 0) and its
    ``members/1``, ``members/2``, ... in order ([path] for a single model)."""
    path = Path(path)
    extra = [p for p in (path / MEMBERS_DIR).glob("*") if p.is_dir() and p.name.isdigit()]
    return [path, *sorted(extra, key=lambda p: int(p.name))]


def load_model(path: str | os.PathLike, device: str | torch.device | None = None
               ) -> Avocado | AvocadoEnsemble:
    """The model saved in ``path``: an :class:`AvocadoEnsemble` when the folder holds members
    (``avocado train`` saves 3 by default), else the one :class:`Avocado`."""
    paths = member_paths(path)
    if len(paths) == 1:
        return Avocado.load(path, device=device)
    return AvocadoEnsemble([Avocado.load(p, device=device) for p in paths])


def _brief(value: Any) -> str:
    """A list as its repr, shortened after 8 items; anything else as its repr."""
    if isinstance(value, list):
        return f"[{short_list(map(repr, value), 8)}]"
    return repr(value)
