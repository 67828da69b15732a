"""Training machinery: sampling, data sources, catch-up Adam, the trainer, the loop, checkpoints.

Nothing here knows about biosample names or genomic coordinates: training data arrives as a
:class:`TrackSource` (experiment index x position -> value), the network as an
:class:`~avocado_core.network.AvocadoNetwork`, and the caller decides which tables train.

Modules: :mod:`.sampling` (:class:`Sampler`), :mod:`.sources` (:class:`TrackSource`),
:mod:`.optimizer` (:class:`CatchUpAdam`), :mod:`.trainer` (:class:`Trainer`), :mod:`.loop`
(:func:`train`), :mod:`.checkpoints` (:class:`Checkpointer`) and :mod:`.options`
(:class:`FitOptions`, :func:`training_scope`). The files a checkpoint is written to share the
saved model's format, :mod:`avocado_core.model_format`.
"""

from ..model_format import read_tensors_dir, write_tensors_dir
from .checkpoints import Checkpointer
from .loop import check_schedule, train
from .optimizer import CatchUpAdam
from .options import FitKwargs, FitOptions, shows_fit_options, training_scope
from .sampling import SAMPLINGS, Sampler
from .sources import TrackSource
from .trainer import GROUPS, Trainer, tune_malloc

__all__ = [
    "GROUPS",
    "SAMPLINGS",
    "CatchUpAdam",
    "Checkpointer",
    "FitKwargs",
    "FitOptions",
    "Sampler",
    "TrackSource",
    "Trainer",
    "check_schedule",
    "shows_fit_options",
    "read_tensors_dir",
    "train",
    "training_scope",
    "tune_malloc",
    "write_tensors_dir",
]
