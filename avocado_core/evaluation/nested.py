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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import _io
from ..choice import (
    SELECTION_METRICS,
    best_score,
    choose,
    score_candidates,
    selection_metric,
    warn_unvalidated,
)
from ..errors import AvocadoKeyError, AvocadoValueError
from ..folds import Experiment, make_folds, validation_folds
from .inputs import data_fingerprint, tracks_of_one_length

__all__ = [
    "FIT_SETTINGS",
    "candidates",
    "nested_selection",
    "select_hyperparameters",
]

#: Selectable ``Avocado.fit`` settings (the other selectable names are ``n_epochs`` and
#: keyword arguments of ``Avocado(...)``).
FIT_SETTINGS = ("average_from", "sampling", "epoch_size")



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

    selection_metric(select_by)  # a bad name fails before any training
    grid = candidates(select)
    if per_biosample and not set(PREDICTION_SETTINGS) & set(select):
        raise AvocadoValueError(
            f"per_biosample chooses {' and '.join(PREDICTION_SETTINGS)} per biosample; select "
            f"candidate values of at least one (got {sorted(select)})")
    experiments = list(train if experiments is None else experiments)
    splits = validation_folds(train.keys(), inner_folds, inner_splits, seed)
    if per_biosample:
        warn_unvalidated(train, splits, f"per_biosample ({inner_splits} of {inner_folds} "
                                        f"inner splits validate; all: inner_splits={inner_folds})")

    def fit_candidate(inner, trained):
        cfg, epochs, fit = apply_candidate(config, n_epochs, dict(fit_kwargs or {}), trained)
        model, _ = fit_models(inner, cfg, epochs, {**fit, "choose_settings": False}, 1, seed,
                              experiments, device, progress)
        return model.models[0]

    scores = score_candidates(train, grid, splits, fit_candidate, select_by)
    return choose(scores, per_biosample, select_by), scores


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
