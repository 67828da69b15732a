"""How one ``fit`` trains: the options shared by ``Avocado.fit`` and its variants.

:class:`FitOptions` documents, once, the keyword arguments of
:meth:`~avocado_core.model.Avocado.fit`, :meth:`~avocado_core.model.Avocado.fit_biosamples`,
:meth:`~avocado_core.model.Avocado.fit_assays` and
:meth:`~avocado_core.model.Avocado.fit_positions`. The data source and the trainer are options
like the others: pass them explicitly, or set them for a block of code with
:func:`training_scope` (what ``memory_budget`` and ``data_parallel`` do). The scope is a
:mod:`contextvars` variable, local to the ``with`` block and to the thread or task running it;
nothing process-wide changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TypedDict, TypeVar

import numpy as np

from ..errors import AvocadoValueError
from .sampling import position_subset
from .sources import TrackSource
from .trainer import Trainer

__all__ = ["FitKwargs", "FitOptions", "shows_fit_options", "training_scope"]

#: The data source and trainer factories of the innermost :func:`training_scope`.
_SCOPE: ContextVar[dict[str, Callable[..., Any]]] = ContextVar("avocado_training_scope")


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Keyword arguments of ``fit``, ``fit_biosamples``, ``fit_assays`` and ``fit_positions``.

    Parameters
    ----------
    n_epochs: int, optional
        Epochs to train. Default is 30 (with the ``"small"`` preset and the settings chosen
        below, the best measured on the pilot's validation tracks).
    epoch_size: int or None, optional
        Batches per epoch. Default is None: one pass over the positions (those of
        ``positions`` when given).
    sampling: str, optional
        ``"sequential"`` (a scan over positions, one random observed experiment per
        position), ``"permuted"`` (a scan over a random permutation) or ``"random"``
        (independently drawn random positions). Default is ``"sequential"``.
    validation: Mapping or None, optional
        Tracks to compute the validation MSE on after every epoch. Default is None.
    seed: int or None, optional
        Seed of the sampling. Default is None: the model's seed.
    early_stopping: int or None, optional
        Stop after this many epochs without a better validation MSE within this call.
        Default is None.
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
        stopping see each epoch's own parameters. A fit that continues an earlier one counts
        epochs from the start of the continued run. Default is None: the last epoch's.
    reset_optimizer: bool, optional
        Start a fresh Adam optimizer instead of continuing the model's. Default is False: a
        fit continues the optimizer state its model kept from the last call of the same method
        (Adam's moments and step count, the catch-up rows' bookkeeping, the weight-averaging
        sums, and the sequence of batches when ``seed``, ``sampling`` and the experiments are
        the same), so ten calls of one epoch train like one call of ten epochs (see "Calling
        fit again" in the README for what differs).
    choose_settings: bool, optional
        Choose the settings that depend on the data on validation tracks split off the
        training tracks before training on all of them (:mod:`avocado_core.choice`): the
        averaging window (``average_from``, unless given) and each biosample's blend towards
        average activity and smoothing (``biosample_settings``, replaced). It trains a copy of
        the model per candidate window and validation fold (10 by default) before the final
        training, and runs on a fit that starts fresh (not on one that continues the
        optimizer state of an earlier ``fit``); what it chose is kept in ``model.choice``,
        saved with the model. Too few tracks to split (a biosample or assay with one track)
        skip it with a warning. False trains with the settings as given. Default is True.
    source: callable or None, optional
        Builds the training data source from the list of validated track arrays, e.g.
        ``functools.partial(avocado_core.streaming.make_source, max_memory="4G")``.
        Default is None: the innermost :func:`training_scope`'s, else
        :class:`~avocado_core.training.TrackSource`.
    trainer: callable or None, optional
        Builds the trainer; takes :class:`~avocado_core.training.Trainer`'s arguments, e.g.
        :class:`~avocado_core.distributed.DistributedTrainer`. Default is None: the innermost
        :func:`training_scope`'s, else :class:`~avocado_core.training.Trainer`.
    positions: array-like or None, optional
        Train on these positions only: bin indices or a boolean mask with one value per
        position (:func:`~avocado_core.training.sampling.position_subset`), e.g. the bins a
        new biosample's partial track covers, so that positions it did not measure are not
        fitted as zero signal. Not with ``checkpoint_dir`` (a checkpoint does not record
        them). Default is None: every position.
    """

    n_epochs: int = 30
    epoch_size: int | None = None
    sampling: str = "sequential"
    validation: Any = None
    seed: int | None = None
    early_stopping: int | None = None
    checkpoint_dir: str | os.PathLike | None = None
    checkpoint_every: int | None = None
    progress: bool = True
    resume: bool = True
    average_from: int | None = None
    reset_optimizer: bool = False
    choose_settings: bool = True
    source: Callable[[Sequence[np.ndarray]], Any] | None = None
    trainer: Callable[..., Trainer] | None = None
    # compare=False: a mask of a million positions has no cheap exact comparison.
    positions: Any = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.positions is not None and self.checkpoint_dir is not None:
            raise AvocadoValueError(
                "positions and checkpoint_dir cannot be combined: a checkpoint does not record "
                "the positions it trained on"
            )

    @classmethod
    def of(cls, options: FitOptions | None = None, **kwargs: Any) -> FitOptions:
        """``options`` (default: all defaults) with the fields in ``kwargs`` replaced.

        Raises
        ------
        TypeError
            A keyword is not a field of :class:`FitOptions`.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(
                f"unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"fit takes: {', '.join(names)}"
            )
        return dataclasses.replace(options or cls(), **kwargs)

    def make_source(self, tracks: Sequence[np.ndarray]) -> Any:
        """The training data source of ``tracks`` (see ``source``)."""
        factory = self.source or _SCOPE.get({}).get("source", TrackSource)
        return factory(tracks)

    def make_trainer(self, *args: Any, **kwargs: Any) -> Trainer:
        """The trainer, built with :class:`~avocado_core.training.Trainer`'s arguments."""
        factory = self.trainer or _SCOPE.get({}).get("trainer", Trainer)
        if self.positions is not None:
            kwargs["positions"] = self.positions
        return factory(*args, **kwargs)

    def n_trained_positions(self, n_positions: int) -> int:
        """How many of a model's ``n_positions`` positions a fit trains on."""
        if self.positions is None:
            return int(n_positions)
        return len(position_subset(self.positions, n_positions))


class FitKwargs(TypedDict, total=False):
    """The fields of :class:`FitOptions` as keyword arguments (``**kwargs: Unpack[FitKwargs]``
    lets editors complete and check them; :func:`shows_fit_options` shows them to ``help()``)."""

    n_epochs: int
    epoch_size: int | None
    sampling: str
    validation: Any
    seed: int | None
    early_stopping: int | None
    checkpoint_dir: str | os.PathLike | None
    checkpoint_every: int | None
    progress: bool
    resume: bool
    average_from: int | None
    reset_optimizer: bool
    choose_settings: bool
    source: Callable[[Sequence[np.ndarray]], Any] | None
    trainer: Callable[..., Trainer] | None
    positions: Any


_Method = TypeVar("_Method", bound=Callable[..., Any])


def shows_fit_options(method: _Method) -> _Method:
    """Decorate a method that takes ``**kwargs`` of :class:`FitOptions`: its signature (what
    ``help()``, ``inspect.signature`` and interactive editors show) lists every field of
    :class:`FitOptions` as a keyword-only parameter with its default, in place of ``**kwargs``.
    """
    signature = inspect.signature(method)
    given = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    fields = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                annotation=f.type) for f in dataclasses.fields(FitOptions)]
    method.__signature__ = signature.replace(parameters=[*given, *fields])
    return method


@contextlib.contextmanager
def training_scope(
    *,
    source: Callable[[Sequence[np.ndarray]], Any] | None = None,
    trainer: Callable[..., Trainer] | None = None,
) -> Iterator[None]:
    """Within the block, fits whose options leave ``source`` / ``trainer`` unset use these.

    Scopes nest (an inner one keeps what it does not set of the outer one) and are local to
    the thread or task that enters them.

    Parameters
    ----------
    source, trainer: callable or None, optional
        As in :class:`FitOptions`. Default is None: the enclosing scope's.
    """
    given = {k: v for k, v in (("source", source), ("trainer", trainer)) if v is not None}
    token = _SCOPE.set({**_SCOPE.get({}), **given})
    try:
        yield
    finally:
        _SCOPE.reset(token)
