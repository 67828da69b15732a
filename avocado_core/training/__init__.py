"""Training machinery: sampling, data sources, catch-up Adam, the trainer, the loop, checkpoints.

Nothing here knows about biosample names or genomic coordinates: training data arrives as a
:class:`TrackSource` (experiment index x position -> value), the network as an
:class:`~avocado_core.network.AvocadoNetwork`, and the caller decides which tables train.

Modules: :mod:`.sampling` (:class:`Sampler`), :mod:`.sources` (:class:`TrackSource`),
:mod:`.optimizer` (:class:`CatchUpAdam`), :mod:`.trainer` (:class:`Trainer`), :mod:`.loop`
(:func:`train`), :mod:`.checkpoints` (:class:`Checkpointer`), :mod:`.options`
(:class:`FitOptions`, :func:`training_scope`) and :mod:`.state` (the checks of a saved optimizer
state, :func:`check_train_state`). The files a checkpoint is written to share the
saved model's format, :mod:`avocado_core.model_format`.
"""

from ..model_format import read_tensors_dir, write_tensors_dir
from .checkpoints import Checkpointer
from .loop import check_schedule, train
from .optimizer import CatchUpAdam
from .options import FitKwargs, FitOptions, shows_fit_options, training_scope
from .sampling import SAMPLINGS, Sampler
from .sources import TrackSource
from .state import OptimizerStateWarning, check_train_state, check_trainer_state
from .trainer import GROUPS, Trainer, tune_malloc

__all__ = [
    "GROUPS",
    "SAMPLINGS",
    "CatchUpAdam",
    "Checkpointer",
    "FitKwargs",
    "FitOptions",
    "OptimizerStateWarning",
    "Sampler",
    "TrackSource",
    "Trainer",
    "check_schedule",
    "check_train_state",
    "check_trainer_state",
    "shows_fit_options",
    "read_tensors_dir",
    "train",
    "training_scope",
    "tune_malloc",
    "write_tensors_dir",
]
