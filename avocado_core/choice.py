"""Settings chosen on validation tracks split off the training tracks.

Some settings depend on the data more than on anything a user knows in advance: how many
epochs' weights to average, and how far each biosample's imputations should lean towards
average activity and be smoothed (:data:`~avocado_core.prediction.PREDICTION_SETTINGS`).
They are chosen the one way that does not read the tracks being predicted: the training
tracks are split into validation folds (:func:`~avocado_core.folds.validation_folds`), a model
per candidate trains on the rest of each split, and every candidate is scored on the split's
validation tracks (the prediction settings of one trained model from one network pass).

:func:`score_candidates` and :func:`choose` are that procedure for any grid
(:mod:`avocado_core.evaluation.nested` uses them for a user's grid); :func:`choose_fit_settings`
is what ``Avocado.fit`` runs by default (``choose_settings=True``): the averaging window over
:data:`AVERAGING_CANDIDATES`, and per biosample the blend over :data:`BLEND_CANDIDATES` and the
smoothing over :data:`SMOOTHING_CANDIDATES`, on all :data:`VALIDATION_FOLDS` validation folds
(so every training track validates once), by mean MSE.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import metrics
from .errors import AvocadoValueError, short_list
from .folds import Experiment, validation_folds
from .metrics import HIGHER_IS_BETTER
from .prediction import PREDICTION_SETTINGS

__all__ = [
    "AVERAGING_CANDIDATES",
    "BLEND_CANDIDATES",
    "SELECTION_METRICS",
    "SMOOTHING_CANDIDATES",
    "VALIDATION_FOLDS",
    "choose",
    "choose_fit_settings",
    "describe_choice",
    "fit_grid",
    "score_candidates",
    "scored_blocks",
]

#: Candidate averaging windows of a fit that chooses its settings: the weights are averaged
#: over the epochs after the 2nd or the 5th (on the pilot's validation tracks every outer fold
#: chose after the 2nd over 30 epochs, against the 5th, the 10th and the last epoch alone).
AVERAGING_CANDIDATES = (2, 5)
#: Candidate blends towards average activity, chosen per biosample (models with
#: ``average_activity`` only).
BLEND_CANDIDATES = (0.25, 0.5, 0.75)
#: Candidate moving-mean widths in 25 bp bins, chosen per biosample.
SMOOTHING_CANDIDATES = (5, 9, 13)
#: Validation folds of the training tracks; all of them validate in turn, so each biosample
#: has validation tracks to choose its own settings on.
VALIDATION_FOLDS = 5
#: The validation bins a fit's choice scores, in track lengths, at most: with more training
#: tracks than this, every track is scored on the same sample of positions (blocks of
#: :data:`SCORED_BLOCK` bins), so that the choice costs a fixed multiple of one training
#: however many tracks a compendium has (a training epoch is one pass over the positions).
SCORED_TRACKS = 25
#: Bins per block of the sample of positions (much wider than any moving mean).
SCORED_BLOCK = 2000

#: Metrics a nested selection can choose by (``select_by``) and their labels: the mean over
#: validation tracks of a function of ``avocado_core.metrics``, the error everywhere
#: (``"mse"``), the correlation, or the error and the overlap on the top 1% of observed bins
#: (the peaks).
SELECTION_METRICS: dict[str, str] = {"mse": "MSE", "pearson": "Pearson", "mse1obs": "MSE1obs",
                                     "match1": "Match1"}


def selection_metric(select_by: str) -> Callable[[np.ndarray, np.ndarray], float] | None:
    """The per-track function of a ``select_by`` name (None for MSE, computed anyway)."""
    if select_by not in SELECTION_METRICS:
        raise AvocadoValueError(
            f"select_by={select_by!r}; expected one of {', '.join(SELECTION_METRICS)}")
    return None if select_by == "mse" else getattr(metrics, select_by)


def criterion_of(columns: Iterable[str]) -> str:
    """The column a selection chose by: ``val_<select_by>`` (``val_mse`` unless another)."""
    named = [c for c in columns if c.startswith("val_") and c not in ("val_mse", "val_tracks")
             and not c.endswith("_by_biosample")]
    return named[0] if named else "val_mse"


def sign_of(column: str) -> int:
    """+1 where lower is better for a ``val_<metric>`` column, -1 where higher is."""
    return -1 if column.removeprefix("val_") in HIGHER_IS_BETTER else 1


def label_of(column: str) -> str:
    """``"val_mse1obs"`` -> ``"MSE1obs"``."""
    return SELECTION_METRICS[column.removeprefix("val_")]


def best_score(scores: pd.DataFrame) -> float:
    """The best candidate's validation score, in the metric the selection chose by."""
    column = criterion_of(scores.columns)
    return float(scores[column].max() if sign_of(column) < 0 else scores[column].min())


def trained_part(params: Mapping[str, Any]) -> dict[str, Any]:
    """What of a candidate's settings trains a model: all but the prediction settings."""
    return {k: v for k, v in params.items() if k not in PREDICTION_SETTINGS}


def trained_key(params: Mapping[str, Any]) -> str:
    """:func:`trained_part` as JSON (candidates with one key share a trained model)."""
    return json.dumps(trained_part(params), sort_keys=True, default=str)


def choose(scores: pd.DataFrame, per_biosample: bool, select_by: str = "mse"
            ) -> dict[str, Any]:
    """The choice of a selection (``select_hyperparameters``) from its scores.

    The candidate with the best validation ``select_by`` (the first on ties); with
    ``per_biosample``, also each biosample's prediction settings: those of the candidate,
    among the ones that train the same model, with the best ``select_by`` on the biosample's
    validation tracks.
    """
    column = f"val_{select_by}"
    sign = sign_of(column)
    best = json.loads(scores.loc[(sign * scores[column]).idxmin(), "params"])
    if not per_biosample:
        return best
    same = [(params, json.loads(by)) for params, by in
            zip(map(json.loads, scores["params"]), scores[f"{column}_by_biosample"])
            if trained_key(params) == trained_key(best)]
    settings = {}
    for biosample in sorted({b for _, by in same for b in by}):
        params, _ = min(((p, by) for p, by in same if biosample in by),
                        key=lambda p_by: sign * p_by[1][biosample])
        settings[biosample] = {k: params[k] for k in PREDICTION_SETTINGS if k in params}
    return {**best, "biosample_settings": settings}


def score_candidates(
    train: Mapping[Experiment, np.ndarray],
    grid: Sequence[Mapping[str, Any]],
    splits: Sequence[Sequence[Experiment]],
    fit_candidate: Callable[[Mapping[Experiment, np.ndarray], dict[str, Any]], Any],
    select_by: str = "mse",
    progress: bool = False,
    blocks: Sequence[tuple[int, int]] | None = None,
) -> pd.DataFrame:
    """Every candidate's validation scores: one model per trained candidate and split.

    Parameters
    ----------
    train: Mapping[(biosample, assay)] -> numpy.ndarray
        The tracks to choose on.
    grid: sequence of dict
        The candidates. Those that differ only in prediction settings share a trained model.
    splits: sequence of sequences of (biosample, assay)
        Validation folds of ``train``; each validates a model trained on the rest of ``train``.
    fit_candidate: callable
        ``fit_candidate(tracks, trained)`` returns a model trained on ``tracks`` with the
        trained part of a candidate (:func:`trained_part`), with ``predict_settings``.
    select_by: str, optional
        A metric of :data:`SELECTION_METRICS` scored beside the MSE. Default is ``"mse"``.
    progress: bool, optional
        Count the trained models in a progress bar. Default is False.
    blocks: sequence of (start, end) or None, optional
        Score every validation track on these position ranges only. Default is None: on
        every position.

    Returns
    -------
    scores: pandas.DataFrame
        One row per candidate: ``params`` (JSON), ``val_mse`` (mean over every validation
        track of the splits), ``val_tracks``, ``val_mse_by_biosample`` (JSON: biosample -> mean
        MSE over its validation tracks); with another ``select_by``, also
        ``val_<select_by>`` and ``val_<select_by>_by_biosample``.
    """
    from tqdm.auto import tqdm

    score = selection_metric(select_by)
    # (biosample, MSE, the select_by score) per validation track, per candidate
    errors: list[list[tuple[str, float, float]]] = [[] for _ in grid]
    groups: dict[str, list[int]] = {}  # candidates that train the same model
    for c, params in enumerate(grid):
        groups.setdefault(trained_key(params), []).append(c)
    bar = tqdm(total=len(groups) * len(splits), desc="choosing settings", unit="model",
               disable=not progress, file=sys.stderr)
    for members in groups.values():
        trained = trained_part(grid[members[0]])
        for val in splits:  # a loop over validation splits, each a model
            held = set(val)
            model = fit_candidate({k: v for k, v in train.items() if k not in held}, trained)
            bar.update()
            # the candidates of one model differ in prediction settings only: one network
            # pass per validation track scores them all
            settings = [{n: grid[c][n] for n in PREDICTION_SETTINGS if n in grid[c]}
                        for c in members]
            for k in val:
                ranges = blocks or [(0, len(train[k]))]
                y = np.concatenate([np.asarray(train[k][lo:hi], np.float64)
                                    for lo, hi in ranges])
                preds = np.concatenate([model.predict_settings(*k, settings, lo, hi)
                                        for lo, hi in ranges], axis=1)
                for c, pred in zip(members, preds):
                    d = pred.astype(np.float64) - y
                    mse = float(np.dot(d, d) / d.size)
                    errors[c].append((k[0], mse, mse if score is None else score(y, pred)))
    bar.close()
    frames = [pd.DataFrame(e, columns=["biosample", "mse", "score"]) for e in errors]

    def by_biosample(column: str) -> list[str]:
        return [json.dumps(f.groupby("biosample")[column].mean().to_dict(), sort_keys=True)
                for f in frames]

    scores = pd.DataFrame({"params": [json.dumps(p, sort_keys=True) for p in grid],
                           "val_mse": [f["mse"].mean() for f in frames],
                           "val_tracks": [len(f) for f in frames],
                           "val_mse_by_biosample": by_biosample("mse")})
    if score is not None:
        scores[f"val_{select_by}"] = [f["score"].mean() for f in frames]
        scores[f"val_{select_by}_by_biosample"] = by_biosample("score")
    return scores


def warn_unvalidated(train: Iterable[Experiment], splits: Sequence[Sequence[Experiment]],
                     what: str) -> None:
    """Warn about biosamples with no validation track in ``splits`` (they keep the overall
    choice instead of their own)."""
    unvalidated = sorted({b for b, _ in train} - {b for val in splits for b, _ in val})
    if unvalidated:
        warnings.warn(f"{what}: {short_list(unvalidated)} have no validation track and keep "
                      "the overall choice of the prediction settings", stacklevel=3)


def scored_blocks(n_positions: int, n_tracks: int, seed: int
                  ) -> list[tuple[int, int]] | None:
    """The positions a choice over ``n_tracks`` training tracks scores: all of them (None)
    up to :data:`SCORED_TRACKS` tracks, else blocks of :data:`SCORED_BLOCK` bins drawn at
    random (``seed``) that hold ``SCORED_TRACKS / n_tracks`` of the positions."""
    share = n_positions * SCORED_TRACKS // max(n_tracks, 1)
    n_blocks = -(-n_positions // SCORED_BLOCK)
    wanted = -(-share // SCORED_BLOCK)
    if wanted >= n_blocks:
        return None
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(n_blocks, wanted, replace=False)) * SCORED_BLOCK
    return [(int(lo), int(min(lo + SCORED_BLOCK, n_positions))) for lo in starts]


def fit_grid(n_epochs: int, average_from: int | None, with_activity: bool
             ) -> list[dict[str, Any]]:
    """The candidates a fit chooses among (see the module docstring).

    The averaging window is chosen among :data:`AVERAGING_CANDIDATES` that average some of
    ``n_epochs`` epochs, unless ``average_from`` fixes it; the blend only for a model with
    average activity.
    """
    windows = ([average_from] if average_from is not None
               else [w for w in AVERAGING_CANDIDATES if w < n_epochs] or [None])
    names = {"average_from": windows, "smoothing": list(SMOOTHING_CANDIDATES)}
    if with_activity:
        names["activity_blend"] = list(BLEND_CANDIDATES)
    return [dict(zip(names, combo)) for combo in itertools.product(*names.values())]


def choose_fit_settings(
    model: Any,
    train: Mapping[Experiment, np.ndarray],
    options: Any,
    seed: int,
) -> dict[str, Any]:
    """The averaging window and each biosample's prediction settings for ``model.fit``.

    Parameters
    ----------
    model: Avocado
        The model about to be fitted; each candidate trains a fresh copy of its configuration
        (the same initialization).
    train: Mapping[(biosample, assay)] -> numpy.ndarray
        The training tracks.
    options: FitOptions
        The fit's options; the copies train with them but for the averaging window (and
        without validation, checkpoints or a choice of their own).
    seed: int
        Seed of the validation folds (the fit's seed).

    Returns
    -------
    choice: dict
        ``average_from`` (chosen or as given), ``biosample_settings``, and the record saved
        with the model: ``validation_folds``, ``validation_tracks`` (every training track but
        the only one of its biosample or assay, each validated once by a copy that did not
        train on it), ``candidates``, ``scored_bins``
        (None: every position; else the size of the sample of positions scored, see
        :func:`scored_blocks`) and ``val_mse`` (the chosen candidate's mean validation MSE).
    """
    splits = validation_folds(train.keys(), VALIDATION_FOLDS, VALIDATION_FOLDS, seed)
    warn_unvalidated(train, splits, "choose_settings")
    grid = fit_grid(options.n_epochs, options.average_from, model.average_activity is not None)
    inner = dataclasses.replace(options, choose_settings=False, validation=None,
                                early_stopping=None, checkpoint_dir=None, progress=False,
                                seed=seed)

    def fit_candidate(tracks, trained):
        copy = type(model)(**{**model.config, "device": model.device})
        copy.fit(tracks, options=dataclasses.replace(inner, **trained))
        return copy

    blocks = scored_blocks(len(next(iter(train.values()))), len(train), seed)
    scores = score_candidates(train, grid, splits, fit_candidate, progress=options.progress,
                              blocks=blocks)
    chosen = choose(scores, per_biosample=True)
    return {
        "average_from": chosen["average_from"],
        "biosample_settings": chosen["biosample_settings"],
        "validation_folds": VALIDATION_FOLDS,
        "validation_tracks": sorted(list(k) for val in splits for k in val),
        "candidates": len(grid),
        "scored_bins": None if blocks is None else sum(hi - lo for lo, hi in blocks),
        "val_mse": float(scores["val_mse"].min()),
    }


def describe_choice(record: Mapping[str, Any]) -> str:
    """One line that says what a fit chose, and on what (the record of
    :func:`choose_fit_settings`, as saved with the model)."""
    window = record.get("average_from")
    averaged = ("the last epoch's weights" if window is None
                else f"weights averaged from epoch {window + 1} on")
    short = {"activity_blend": "blend", "smoothing": "smoothing"}
    per = "; ".join(f"{b} " + ", ".join(f"{short[k]} {v:g}" for k, v in sorted(s.items()))
                    for b, s in sorted((record.get("biosample_settings") or {}).items()))
    n = len(record.get("validation_tracks", []))
    sample = record.get("scored_bins")
    where = "" if sample is None else f" (a sample of {sample:,} bins each)"
    return (f"{averaged}; per biosample: {per or 'none'}; on {n} validation tracks{where} "
            f"({record.get('validation_folds')} folds of the training tracks, each validated "
            f"once), validation MSE {record.get('val_mse', float('nan')):.4f}")
