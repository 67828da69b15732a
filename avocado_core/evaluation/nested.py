"""Nested model selection: settings chosen on validation tracks split off the training tracks.

``candidates`` expands a grid of settings; ``select_hyperparameters`` trains a model per trained
candidate on inner folds of the training tracks and scores every candidate (the prediction
settings from one network pass) on the inner validation tracks; ``nested_selection`` runs that
selection for every outer fold of :func:`~avocado_core.evaluation.cross_validate` (same folds,
seeds and cache files) without training a final model or reading a held-out track.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import _io
from .. import metrics as _metrics
from ..errors import AvocadoKeyError, AvocadoValueError, short_list
from ..metrics import HIGHER_IS_BETTER
from .folds import (
    Experiment,
    data_fingerprint,
    make_folds,
    tracks_of_one_length,
    validation_folds,
)

__all__ = [
    "FIT_SETTINGS",
    "SELECTION_METRICS",
    "candidates",
    "nested_selection",
    "select_hyperparameters",
]

#: Selectable ``Avocado.fit`` settings (the other selectable names are ``n_epochs`` and
#: keyword arguments of ``Avocado(...)``).
FIT_SETTINGS = ("average_from", "sampling", "epoch_size")

#: Metrics a nested selection can choose by (``select_by``) and their labels: the mean over
#: validation tracks of a function of ``avocado_core.metrics``, the error everywhere
#: (``"mse"``), the correlation, or the error and the overlap on the top 1% of observed bins
#: (the peaks).
SELECTION_METRICS: dict[str, str] = {"mse": "MSE", "pearson": "Pearson", "mse1obs": "MSE1obs",
                                     "match1": "Match1"}


def _model_settings() -> set[str]:
    from ..model import Avocado

    skip = {"self", "biosamples", "assays", "n_positions", "celltypes", "device", "seed"}
    return set(inspect.signature(Avocado.__init__).parameters) - skip


def candidates(select: Mapping[str, Sequence[Any]] | None) -> list[dict[str, Any]]:
    """Every combination of the candidate values of ``select`` (a grid), in order.

    Parameters
    ----------
    select: dict[str, sequence] or None
        Name -> candidate values. Names are ``"n_epochs"``, ``Avocado.fit`` settings
        (``FIT_SETTINGS``) or keyword arguments of ``Avocado(...)`` (e.g.
        ``"biosample_decay"``, ``"average_activity"``).

    Returns
    -------
    grid: list of dict
        One dict per combination; ``[{}]`` when ``select`` is empty or None.
    """
    select = dict(select or {})
    allowed = {"n_epochs", *FIT_SETTINGS, *_model_settings()}
    unknown = sorted(set(select) - allowed)
    if unknown:
        raise AvocadoKeyError(
            f"cannot select {unknown}; selectable settings: {sorted(allowed)}"
        )
    for name, values in select.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise AvocadoValueError(
                f"select[{name!r}] = {values!r}; expected a non-empty list of candidate values"
            )
    names = list(select)
    return [dict(zip(names, combo)) for combo in itertools.product(*select.values())]


def apply_candidate(config: str | Mapping[str, Any], n_epochs: int, fit_kwargs: Mapping[str, Any],
           params: Mapping[str, Any]) -> tuple[Any, int, dict[str, Any]]:
    """The (config, n_epochs, fit kwargs) of a run with the candidate ``params`` set."""
    fit = dict(fit_kwargs)
    model = {k: v for k, v in params.items() if k != "n_epochs" and k not in FIT_SETTINGS}
    fit.update({k: v for k, v in params.items() if k in FIT_SETTINGS})
    if model:
        config = {"preset": config, **model} if isinstance(config, str) else {**config, **model}
    return config, int(params.get("n_epochs", n_epochs)), fit


def fit_models(train, config, n_epochs, fit_kwargs, n_models, seed, experiments, device,
              progress):
    """A model (or ensemble) over ``experiments`` trained on ``train``, and its seconds."""
    from ..ensemble import AvocadoEnsemble
    from ..model import Avocado

    n_positions = len(next(iter(train.values())))
    t0 = time.perf_counter()
    model = AvocadoEnsemble.fit(
        lambda s: Avocado.from_preset(config, experiments, n_positions, seed=s, device=device),
        train, n_models, seed=seed, n_epochs=n_epochs, progress=progress, **fit_kwargs,
    )
    return model, time.perf_counter() - t0


def select_hyperparameters(
    train: Mapping[Experiment, np.ndarray],
    select: Mapping[str, Sequence[Any]],
    config: str | Mapping[str, Any] = "small",
    n_epochs: int = 10,
    fit_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    inner_folds: int = 5,
    inner_splits: int = 1,
    experiments: Iterable[Experiment] | None = None,
    device: str | None = None,
    progress: bool = False,
    per_biosample: bool = False,
    select_by: str = "mse",
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Choose hyperparameters on validation tracks split off ``train`` (inner folds).

    Parameters
    ----------
    train: Mapping[(biosample, assay)] -> numpy.ndarray
        The tracks to choose on (in ``cross_validate``, one fold's training tracks).
    select: dict[str, sequence]
        Candidate values (see ``candidates``); every combination is tried.
    config, n_epochs, fit_kwargs:
        The settings a candidate starts from (as in ``cross_validate``).
    seed: int, optional
        Seed of the inner split and of the models. Default is 0.
    inner_folds: int, optional
        ``train`` is split into this many folds (``make_folds``). Default is 5.
    inner_splits: int, optional
        How many of them serve, in turn, as validation tracks (each costs one model per
        candidate). Default is 1.
    experiments: iterable of (biosample, assay), optional
        The models know the biosamples and assays of these. Default: those of ``train``.
    device: str, optional
        Torch device of the models.
    progress: bool, optional
        Show training progress. Default is False.
    per_biosample: bool, optional
        Also choose the prediction settings (``activity_blend``, ``smoothing``) per biosample:
        among the candidates that train the best candidate's model, each biosample with
        validation tracks gets the settings with the lowest MSE on its own validation tracks
        (``best["biosample_settings"]``; see ``Avocado(biosample_settings=...)``). Use enough
        inner splits that every biosample has some (all of them: ``inner_splits =
        inner_folds``). Default is False.
    select_by: str, optional
        The metric that chooses, one of :data:`SELECTION_METRICS`: ``"mse"`` (the default),
        ``"pearson"``, or the top 1% of observed bins, ``"mse1obs"`` / ``"match1"``, for a
        user who cares most about the peaks. The per-biosample choice uses it too.

    Returns
    -------
    best: dict
        The candidate with the best mean validation ``select_by`` (the first on ties), with
        ``per_biosample`` also its ``"biosample_settings"``.
    scores: pandas.DataFrame
        One row per candidate: ``params`` (JSON), ``val_mse`` (mean over every validation
        track of the used splits), ``val_tracks`` and ``val_mse_by_biosample`` (JSON:
        biosample -> mean MSE over its validation tracks); with another ``select_by``, also
        ``val_<select_by>`` and ``val_<select_by>_by_biosample``.
    """
    from ..prediction import PREDICTION_SETTINGS

    score = selection_metric(select_by)
    grid = candidates(select)
    if per_biosample and not set(PREDICTION_SETTINGS) & set(select):
        raise AvocadoValueError(
            f"per_biosample chooses {' and '.join(PREDICTION_SETTINGS)} per biosample; select "
            f"candidate values of at least one (got {sorted(select)})")
    experiments = list(train if experiments is None else experiments)
    splits = validation_folds(train.keys(), inner_folds, inner_splits, seed)
    unvalidated = sorted({b for b, _ in train} - {b for val in splits for b, _ in val})
    if per_biosample and unvalidated:
        warnings.warn(f"per_biosample: {short_list(unvalidated)} have no validation track in "
                      f"{inner_splits} of {inner_folds} inner splits and keep the overall "
                      f"choice; validate on all of them (inner_splits={inner_folds})",
                      stacklevel=2)
    # (biosample, MSE, the select_by score) per validation track, per candidate
    errors: list[list[tuple[str, float, float]]] = [[] for _ in grid]
    groups: dict[str, list[int]] = {}  # candidates that train the same model
    for c, params in enumerate(grid):
        groups.setdefault(_trained_key(params), []).append(c)
    for members in groups.values():
        cfg, epochs, fit = apply_candidate(config, n_epochs, dict(fit_kwargs or {}),
                                  _trained_part(grid[members[0]]))
        for val in splits:  # a loop over inner splits, each a model
            held = set(val)
            inner = {k: v for k, v in train.items() if k not in held}
            model, _ = fit_models(inner, cfg, epochs, fit, 1, seed, experiments, device,
                                 progress)
            # the candidates of one model differ in prediction settings only: one network
            # pass per validation track scores them all
            settings = [{n: grid[c][n] for n in PREDICTION_SETTINGS if n in grid[c]}
                        for c in members]
            (member,) = model.models
            for k in val:
                y = np.asarray(train[k], np.float64)
                for c, pred in zip(members, member.predict_settings(*k, settings)):
                    d = pred.astype(np.float64) - y
                    mse = float(np.dot(d, d) / d.size)
                    errors[c].append((k[0], mse, mse if score is None else score(y, pred)))
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
    return choose(scores, per_biosample, select_by), scores


def selection_metric(select_by: str) -> Callable[[np.ndarray, np.ndarray], float] | None:
    """The per-track function of a ``select_by`` name (None for MSE, computed anyway)."""
    if select_by not in SELECTION_METRICS:
        raise AvocadoValueError(
            f"select_by={select_by!r}; expected one of {', '.join(SELECTION_METRICS)}")
    return None if select_by == "mse" else getattr(_metrics, select_by)


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


def _trained_part(params: Mapping[str, Any]) -> dict[str, Any]:
    """What of a candidate's settings trains a model: all but the prediction settings."""
    from ..prediction import PREDICTION_SETTINGS

    return {k: v for k, v in params.items() if k not in PREDICTION_SETTINGS}


def _trained_key(params: Mapping[str, Any]) -> str:
    """:func:`_trained_part` as JSON (candidates with one key share a trained model)."""
    return json.dumps(_trained_part(params), sort_keys=True, default=str)


def choose(scores: pd.DataFrame, per_biosample: bool, select_by: str = "mse"
            ) -> dict[str, Any]:
    """The choice of a selection (``select_hyperparameters``) from its scores.

    The candidate with the best validation ``select_by`` (the first on ties); with
    ``per_biosample``, also each biosample's prediction settings: those of the candidate,
    among the ones that train the same model, with the best ``select_by`` on the biosample's
    validation tracks.
    """
    from ..prediction import PREDICTION_SETTINGS

    column = f"val_{select_by}"
    sign = sign_of(column)
    best = json.loads(scores.loc[(sign * scores[column]).idxmin(), "params"])
    if not per_biosample:
        return best
    same = [(params, json.loads(by)) for params, by in
            zip(map(json.loads, scores["params"]), scores[f"{column}_by_biosample"])
            if _trained_key(params) == _trained_key(best)]
    settings = {}
    for biosample in sorted({b for _, by in same for b in by}):
        params, _ = min(((p, by) for p, by in same if biosample in by),
                        key=lambda p_by: sign * p_by[1][biosample])
        settings[biosample] = {k: params[k] for k in PREDICTION_SETTINGS if k in params}
    return {**best, "biosample_settings": settings}


def fold_key(fold: Sequence[Experiment], settings: Mapping[str, Any]) -> str:
    text = json.dumps({"held_out": sorted(map(list, fold)), **settings}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def selection_settings(tracks, folds, config, n_epochs, epoch_size, fit_kwargs, seed, select,
                        inner_folds, inner_splits, per_biosample, select_by) -> dict[str, Any]:
    """The settings a fold's selection depends on (its cache key), checked before training."""
    settings = {
        "config": config, "n_epochs": n_epochs, "epoch_size": epoch_size,
        "fit_kwargs": dict(fit_kwargs or {}), "seed": seed,
        "n_positions": len(next(iter(tracks.values()))),
        "experiments": sorted(map(list, tracks.keys())),
        "data": data_fingerprint(tracks),
    }
    if select:  # no selection keeps the cache keys of earlier folds
        candidates(select)  # bad names fail before any training
        selection_metric(select_by)
        for i, fold in enumerate(folds):  # every fold's inner split exists
            validation_folds(set(tracks) - set(fold), inner_folds, inner_splits, seed + i)
        settings.update(select=dict(select), inner_folds=inner_folds, inner_splits=inner_splits)
        if per_biosample:  # without it, the cache keys of earlier selections
            settings["per_biosample"] = True
        if select_by != "mse":  # the same
            settings["select_by"] = select_by
    return settings


def selection_file(cache: Path, i: int, fold: Sequence[Experiment],
                    sel_settings: Mapping[str, Any]) -> Path:
    return cache / f"fold{i:03d}-{fold_key(fold, sel_settings)}.selection.tsv"


def fold_fit_kwargs(fit_kwargs: Mapping[str, Any] | None, epoch_size: int | None
                     ) -> dict[str, Any]:
    kw = dict(fit_kwargs or {})
    if epoch_size is not None:
        kw["epoch_size"] = epoch_size
    return kw


def fold_selection(i, train, experiments, sel_file, select, config, n_epochs, kw, seed,
                    inner_folds, inner_splits, per_biosample, select_by, device
                    ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fold ``i``'s choice and every candidate's validation scores (cached in ``sel_file``)."""
    if sel_file is not None and sel_file.is_file():
        scores = pd.read_csv(sel_file, sep="\t")
        return choose(scores, per_biosample, select_by), scores
    chosen, scores = select_hyperparameters(
        train, select, config, n_epochs, kw, seed=seed + i, inner_folds=inner_folds,
        inner_splits=inner_splits, experiments=experiments, device=device, progress=False,
        per_biosample=per_biosample, select_by=select_by)
    scores.insert(0, "fold", i)
    if sel_file is not None:
        _io.write_text(sel_file, scores.to_csv(sep="\t", index=False))
    return chosen, scores


def nested_selection(
    data,
    select: Mapping[str, Sequence[Any]],
    n_folds: int | None = 5,
    config: str | Mapping[str, Any] = "small",
    n_epochs: int = 10,
    epoch_size: int | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    inner_folds: int = 5,
    inner_splits: int = 1,
    per_biosample: bool = False,
    select_by: str = "mse",
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Only the nested selection of :func:`cross_validate`: study a grid without its test.

    For each outer fold, every candidate of ``select`` is scored on validation tracks split
    off the fold's *training* tracks, exactly as ``cross_validate(select=...)`` does (same
    folds, seeds and cache files); no final model is trained and the held-out tracks are
    never read. A later ``cross_validate`` with the same settings and ``cache_dir`` reuses
    these selections and trains only the final models.

    Parameters
    ----------
    data: TrackStore or Mapping[(biosample, assay)] -> numpy.ndarray
        Observed tracks, all of one length.
    select: dict[str, sequence]
        Candidate values (see ``candidates``).
    n_folds, config, n_epochs, epoch_size, fit_kwargs, seed, inner_folds, inner_splits,
    per_biosample, select_by, cache_dir, device:
        As in :func:`cross_validate`.
    progress: bool, optional
        Show one line per fold. Default is True.

    Returns
    -------
    scores: pandas.DataFrame
        One row per (fold, candidate): ``fold``, ``params`` (JSON), ``val_mse`` (mean over
        the fold's validation tracks), ``val_tracks``, ``val_mse_by_biosample`` (JSON), and
        with another ``select_by`` its ``val_<select_by>`` columns. With
        ``per_biosample``, ``scores.attrs["biosample_settings"]`` holds each fold's
        per-biosample choice (fold -> biosample -> settings).
    """
    from tqdm.auto import tqdm

    if not select:
        raise AvocadoValueError("nested_selection needs candidate values (select)")
    tracks = tracks_of_one_length(data)
    folds = make_folds(tracks.keys(), n_folds, seed=seed)
    sel_settings = selection_settings(tracks, folds, config, n_epochs, epoch_size, fit_kwargs,
                                       seed, select, inner_folds, inner_splits, per_biosample,
                                       select_by)
    cache = None if cache_dir is None else Path(cache_dir)
    kw = fold_fit_kwargs(fit_kwargs, epoch_size)
    frames, per_fold = [], {}
    for i, fold in enumerate(tqdm(folds, desc="selection", unit="fold", disable=not progress)):
        sel_file = None if cache is None else selection_file(cache, i, fold, sel_settings)
        held = set(fold)
        train = {k: v for k, v in tracks.items() if k not in held}
        chosen, scores = fold_selection(i, train, tracks.keys(), sel_file, select, config,
                                         n_epochs, kw, seed, inner_folds, inner_splits,
                                         per_biosample, select_by, device)
        if progress:
            tqdm.write(f"fold {i + 1}/{len(folds)}: best {json.dumps(chosen)} "
                       f"(validation {SELECTION_METRICS[select_by]} {best_score(scores):.4f})")
        frames.append(scores)
        if per_biosample:
            per_fold[i] = chosen["biosample_settings"]
    scores = pd.concat(frames, ignore_index=True)
    if per_biosample:
        scores.attrs["biosample_settings"] = per_fold
    return scores
