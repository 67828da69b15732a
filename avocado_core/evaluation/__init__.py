"""Held-out evaluation: train on some experiments, score model and baselines on the rest.

``cross_validate`` splits the observed experiments of a store into folds (leave-one-experiment-
out, or k folds chosen so that every biosample and every assay keeps at least one training
experiment in every fold), trains a fresh ``Avocado`` on each fold's training experiments,
and scores the model and each baseline on the held-out tracks with every metric of
``avocado_core.metrics``. Each finished fold is cached (atomically) in ``cache_dir`` under a
key of its experiments and settings, so a rerun resumes after the last finished fold.

With ``select`` (candidate values of hyperparameters: model settings such as
``biosample_decay``, ``fit`` settings such as ``average_from``, and ``n_epochs``) the
evaluation is nested: inside each fold, the fold's *training* tracks are split again
(``make_folds``), a model per candidate is trained on the inner training tracks and scored
on the inner validation tracks (mean MSE, or another metric: ``select_by``), and the best
candidate is then trained on all of the fold's training tracks and scored on its held-out
tracks. The held-out tracks choose nothing.
``nested_selection`` runs that selection alone (``avocado evaluate --selection-only``), to
study a grid without reading the held-out tracks; ``summarize_selection`` ranks its candidates.

``summarize`` writes the markdown summary (means per method and per assay, and for each
baseline how many tracks the model wins), ``plot_evaluation`` the per-track figure, and
``evaluate_to_dir`` all three plus the TSV. ``avocado evaluate`` runs it from the shell.
"""

from ..choice import SELECTION_METRICS
from ..folds import make_folds
from .cross_validation import BASELINES, MODEL, cross_validate
from .nested import FIT_SETTINGS, candidates, nested_selection, select_hyperparameters
from .reports import evaluate_to_dir, plot_evaluation, summarize, summarize_selection

__all__ = [
    "BASELINES",
    "FIT_SETTINGS",
    "MODEL",
    "SELECTION_METRICS",
    "candidates",
    "cross_validate",
    "evaluate_to_dir",
    "make_folds",
    "nested_selection",
    "plot_evaluation",
    "select_hyperparameters",
    "summarize",
    "summarize_selection",
]
