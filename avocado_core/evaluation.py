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

from . import _io
from . import baselines as _baselines
from . import metrics as _metrics
from .errors import AvocadoKeyError, AvocadoValueError, short_list
from .metrics import HIGHER_IS_BETTER, score_track

__all__ = [
    "BASELINES",
    "SELECTION_METRICS",
    "make_folds",
    "candidates",
    "select_hyperparameters",
    "cross_validate",
    "nested_selection",
    "summarize_selection",
    "summarize",
    "plot_evaluation",
    "evaluate_to_dir",
]

Experiment = tuple[str, str]

#: Baselines scored next to the model: name -> f(training tracks, biosample, assay).
BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "average_activity": _baselines.average_activity,
    "smoothed_average_activity": _baselines.smoothed_average_activity,
    "assay_mean": _baselines.assay_mean,
}

#: Name of the model's rows in the results.
MODEL = "avocado"

#: Selectable ``Avocado.fit`` settings (the other selectable names are ``n_epochs`` and
#: keyword arguments of ``Avocado(...)``).
FIT_SETTINGS = ("average_from", "sampling", "epoch_size")

#: Metrics a nested selection can choose by (``select_by``) and their labels: the mean over
#: validation tracks of a function of ``avocado_core.metrics``, the error everywhere
#: (``"mse"``), the correlation, or the error and the overlap on the top 1% of observed bins
#: (the peaks).
SELECTION_METRICS: dict[str, str] = {"mse": "MSE", "pearson": "Pearson", "mse1obs": "MSE1obs",
                                     "match1": "Match1"}


def make_folds(
    experiments: Iterable[Experiment],
    n_folds: int | None = 5,
    seed: int = 0,
    max_tries: int = 200,
) -> list[list[Experiment]]:
    """Split experiments into held-out folds that never hide a whole biosample or assay.

    Parameters
    ----------
    experiments: iterable of (biosample, assay)
        The observed experiments.
    n_folds: int or None, optional
        Number of folds; None (or at least the number of experiments) means leave one
        experiment out. Default is 5.
    seed: int, optional
        Seed of the assignment. Default is 0.
    max_tries: int, optional
        Random restarts of the greedy assignment before giving up. Default is 200.

    Returns
    -------
    folds: list of list of (biosample, assay)
        Every experiment is in exactly one fold; within a fold, every biosample and every
        assay keeps at least one experiment outside the fold. Folds are as even in size as the
        greedy assignment allows, and each spreads its experiments over different biosamples
        and assays (a Latin square on a complete grid).
    """
    exps = sorted({(str(b), str(a)) for b, a in experiments})
    if not exps:
        raise AvocadoValueError("no experiments to split into folds")
    bios = sorted({b for b, _ in exps})
    assays = sorted({a for _, a in exps})
    bi = np.array([bios.index(b) for b, _ in exps])
    ai = np.array([assays.index(a) for _, a in exps])
    n_b = np.bincount(bi, minlength=len(bios))
    n_a = np.bincount(ai, minlength=len(assays))
    lonely = [e for e, b, a in zip(exps, bi, ai) if n_b[b] < 2 or n_a[a] < 2]
    if lonely:
        raise AvocadoValueError(
            f"{len(lonely)} experiment(s) cannot be held out without leaving their biosample or "
            f"assay with no training experiment: {lonely[:10]}; every biosample and assay "
            "needs at least two observed experiments"
        )
    if n_folds is None or n_folds >= len(exps):
        return [[e] for e in exps]
    if n_folds < 2:
        raise AvocadoValueError(f"n_folds={n_folds}; expected at least 2 (or None for LOO)")
    rng = np.random.default_rng(seed)
    # ideal spread: no fold holds out more of a biosample / assay than its share
    cap_b = -(-n_b // n_folds)
    cap_a = -(-n_a // n_folds)
    best, best_penalty = None, np.inf
    for _ in range(max_tries):  # restarts of a greedy assignment; a loop over experiments
        held_b = np.zeros((n_folds, len(bios)), dtype=int)
        held_a = np.zeros((n_folds, len(assays)), dtype=int)
        size = np.zeros(n_folds, dtype=int)
        fold_of = np.full(len(exps), -1)
        for i in rng.permutation(len(exps)):
            b, a = bi[i], ai[i]
            allowed = (held_b[:, b] < n_b[b] - 1) & (held_a[:, a] < n_a[a] - 1)
            if not allowed.any():
                break
            # prefer folds where this biosample and assay are not yet held out, then small ones
            cost = (held_b[:, b] + held_a[:, a]) * len(exps) + size + rng.random(n_folds) * 0.5
            f = int(np.argmin(np.where(allowed, cost, np.inf)))
            fold_of[i] = f
            held_b[f, b] += 1
            held_a[f, a] += 1
            size[f] += 1
        if not ((fold_of >= 0).all() and (size > 0).all()):
            continue
        penalty = (np.clip(held_b - cap_b, 0, None).sum() + np.clip(held_a - cap_a, 0, None).sum()
                   + max(0, size.max() - size.min() - 1))
        if penalty < best_penalty:
            best, best_penalty = fold_of.copy(), penalty
            if penalty == 0:
                break
    if best is not None:
        return [[exps[i] for i in np.flatnonzero(best == f)] for f in range(n_folds)]
    raise AvocadoValueError(
        f"could not split {len(exps)} experiments into {n_folds} folds that leave every "
        f"biosample and assay a training experiment; try fewer folds (biosamples with fewest "
        f"experiments: {min(n_b)}, assays: {min(n_a)})"
    )


def _model_settings() -> set[str]:
    from .model import Avocado

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


def _apply(config: str | Mapping[str, Any], n_epochs: int, fit_kwargs: Mapping[str, Any],
           params: Mapping[str, Any]) -> tuple[Any, int, dict[str, Any]]:
    """The (config, n_epochs, fit kwargs) of a run with the candidate ``params`` set."""
    fit = dict(fit_kwargs)
    model = {k: v for k, v in params.items() if k != "n_epochs" and k not in FIT_SETTINGS}
    fit.update({k: v for k, v in params.items() if k in FIT_SETTINGS})
    if model:
        config = {"preset": config, **model} if isinstance(config, str) else {**config, **model}
    return config, int(params.get("n_epochs", n_epochs)), fit


def _fit_fold(train, config, n_epochs, fit_kwargs, n_models, seed, experiments, device,
              progress):
    """A model (or ensemble) over ``experiments`` trained on ``train``, and its seconds."""
    from .ensemble import AvocadoEnsemble
    from .model import Avocado

    n_positions = len(next(iter(train.values())))
    t0 = time.perf_counter()
    model = AvocadoEnsemble.fit(
        lambda s: Avocado.from_preset(config, experiments, n_positions, seed=s, device=device),
        train, n_models, seed=seed, n_epochs=n_epochs, progress=progress, **fit_kwargs,
    )
    return model, time.perf_counter() - t0


def _inner_splits(experiments: Iterable[Experiment], inner_folds: int, inner_splits: int,
                  seed: int) -> list[list[Experiment]]:
    """The validation folds of nested selection, or a clear error when there are none."""
    if isinstance(inner_splits, bool) or int(inner_splits) != inner_splits or not (
            1 <= inner_splits <= inner_folds):
        raise AvocadoValueError(
            f"inner_splits={inner_splits!r}; expected an integer in [1, inner_folds={inner_folds}]"
        )
    try:
        return make_folds(experiments, inner_folds, seed=seed)[: int(inner_splits)]
    except AvocadoValueError as exc:
        raise AvocadoValueError(f"nested selection: a fold's training tracks cannot be split "
                                f"into validation folds: {exc}") from None


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
    from .model import PREDICTION_SETTINGS

    score = _selection_metric(select_by)
    grid = candidates(select)
    if per_biosample and not set(PREDICTION_SETTINGS) & set(select):
        raise AvocadoValueError(
            f"per_biosample chooses {' and '.join(PREDICTION_SETTINGS)} per biosample; select "
            f"candidate values of at least one (got {sorted(select)})")
    experiments = list(train if experiments is None else experiments)
    splits = _inner_splits(train.keys(), inner_folds, inner_splits, seed)
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
        cfg, epochs, fit = _apply(config, n_epochs, dict(fit_kwargs or {}),
                                  _trained_part(grid[members[0]]))
        for val in splits:  # a loop over inner splits, each a model
            held = set(val)
            inner = {k: v for k, v in train.items() if k not in held}
            model, _ = _fit_fold(inner, cfg, epochs, fit, 1, seed, experiments, device,
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
    return _chosen(scores, per_biosample, select_by), scores


def _selection_metric(select_by: str) -> Callable[[np.ndarray, np.ndarray], float] | None:
    """The per-track function of a ``select_by`` name (None for MSE, computed anyway)."""
    if select_by not in SELECTION_METRICS:
        raise AvocadoValueError(
            f"select_by={select_by!r}; expected one of {', '.join(SELECTION_METRICS)}")
    return None if select_by == "mse" else getattr(_metrics, select_by)


def _criterion(columns: Iterable[str]) -> str:
    """The column a selection chose by: ``val_<select_by>`` (``val_mse`` unless another)."""
    named = [c for c in columns if c.startswith("val_") and c not in ("val_mse", "val_tracks")
             and not c.endswith("_by_biosample")]
    return named[0] if named else "val_mse"


def _sign(column: str) -> int:
    """+1 where lower is better for a ``val_<metric>`` column, -1 where higher is."""
    return -1 if column.removeprefix("val_") in HIGHER_IS_BETTER else 1


def _label(column: str) -> str:
    """``"val_mse1obs"`` -> ``"MSE1obs"``."""
    return SELECTION_METRICS[column.removeprefix("val_")]


def _best_score(scores: pd.DataFrame) -> float:
    """The best candidate's validation score, in the metric the selection chose by."""
    column = _criterion(scores.columns)
    return float(scores[column].max() if _sign(column) < 0 else scores[column].min())


def _trained_part(params: Mapping[str, Any]) -> dict[str, Any]:
    """What of a candidate's settings trains a model: all but the prediction settings."""
    from .model import PREDICTION_SETTINGS

    return {k: v for k, v in params.items() if k not in PREDICTION_SETTINGS}


def _trained_key(params: Mapping[str, Any]) -> str:
    """:func:`_trained_part` as JSON (candidates with one key share a trained model)."""
    return json.dumps(_trained_part(params), sort_keys=True, default=str)


def _chosen(scores: pd.DataFrame, per_biosample: bool, select_by: str = "mse"
            ) -> dict[str, Any]:
    """The choice of a selection (``select_hyperparameters``) from its scores.

    The candidate with the best validation ``select_by`` (the first on ties); with
    ``per_biosample``, also each biosample's prediction settings: those of the candidate,
    among the ones that train the same model, with the best ``select_by`` on the biosample's
    validation tracks.
    """
    from .model import PREDICTION_SETTINGS

    column = f"val_{select_by}"
    sign = _sign(column)
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


def _fold_key(fold: Sequence[Experiment], settings: Mapping[str, Any]) -> str:
    text = json.dumps({"held_out": sorted(map(list, fold)), **settings}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cross_validate(
    data,
    n_folds: int | None = 5,
    config: str | Mapping[str, Any] = "small",
    n_epochs: int = 10,
    epoch_size: int | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    n_models: int = 1,
    baselines: Sequence[str] = ("average_activity", "assay_mean"),
    masks: Mapping[str, np.ndarray] | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    select: Mapping[str, Sequence[Any]] | None = None,
    inner_folds: int = 5,
    inner_splits: int = 1,
    per_biosample: bool = False,
    select_by: str = "mse",
) -> pd.DataFrame:
    """Held-out evaluation of Avocado and baselines, fold by fold (resumable).

    Parameters
    ----------
    data: TrackStore or Mapping[(biosample, assay)] -> numpy.ndarray
        Observed tracks, all of one length (positions).
    n_folds: int or None, optional
        Number of folds (see ``make_folds``); None = leave one experiment out. Default is 5.
    config: "small", "paper" or dict, optional
        Model configuration, as :meth:`Avocado.from_preset <avocado_core.model.Avocado.from_preset>`
        takes it: a preset, or keyword arguments of ``Avocado(...)`` (a key
        ``"preset": "small"`` starts from ``Avocado.small``). Default is "small".
    n_epochs: int, optional
        Training epochs per fold. Default is 10.
    epoch_size: int, optional
        Batches per epoch (``Avocado.fit``'s default when None).
    fit_kwargs: dict, optional
        Further keyword arguments of ``Avocado.fit`` (e.g. ``sampling``). Default is None.
    seed: int, optional
        Seed of the folds, the model and its training (fold i trains from ``seed + i``).
        Default is 0.
    n_models: int, optional
        Models trained per fold; the model's imputation is the mean of theirs (an
        :class:`~avocado_core.ensemble.AvocadoEnsemble`, member k seeded with
        ``seed + i + 100 k``). Default is 1.
    baselines: sequence of str, optional
        Names in ``BASELINES`` to score next to the model. Default is both.
    masks: dict[str, numpy.ndarray], optional
        Bin masks for ``score_track`` (``"promoter"``, ``"gene"``, ``"enhancer"``).
    cache_dir: str or PathLike, optional
        Folder of per-fold results; a rerun with the same settings reuses finished folds.
        Default is None (no caching).
    device: str, optional
        Torch device of the models. Default is the model's default.
    progress: bool, optional
        Show fold and epoch progress. Default is True.
    select: dict[str, sequence], optional
        Nested model selection: candidate values of settings (``n_epochs``, ``average_from``,
        ``biosample_decay``, ``average_activity``, ...; see ``candidates``). Each fold chooses
        the combination with the best validation score (``select_by``) on its own training
        tracks (``select_hyperparameters``, one model per candidate, not an ensemble) and
        trains the fold's model with it; the values given as ``config`` / ``n_epochs`` /
        ``fit_kwargs`` are the defaults of what is not selected. Default is None (no
        selection).
    inner_folds, inner_splits: int, optional
        The inner split of each fold's training tracks, and how many inner folds validate
        (see ``select_hyperparameters``). Defaults are 5 and 1.
    per_biosample: bool, optional
        With ``select``: choose the prediction settings (``activity_blend``, ``smoothing``)
        per biosample on its own validation tracks (see ``select_hyperparameters``; use
        ``inner_splits=inner_folds``). Default is False.
    select_by: str, optional
        With ``select``: the validation metric that chooses (see ``select_hyperparameters``
        and :data:`SELECTION_METRICS`). Default is "mse".

    Returns
    -------
    results: pandas.DataFrame
        One row per (held-out experiment, method): fold, biosample, assay, method, the metrics,
        and train_seconds (the fold's model training time, all members together; NaN for
        baselines). With ``select``, also ``selected`` (the chosen settings, JSON) and
        ``val_<select_by>`` (the best candidate's validation score) on the model's rows, and
        ``results.attrs["selection"]``: every candidate's validation scores per fold.
    """
    from tqdm.auto import tqdm

    from .ensemble import check_n_models

    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise AvocadoKeyError(f"unknown baseline(s) {unknown}; expected some of {list(BASELINES)}")
    tracks = _tracks_of_one_length(data)
    folds = make_folds(tracks.keys(), n_folds, seed=seed)
    # the selection (one model per candidate) does not depend on n_models, the baselines or
    # the masks: an ensemble run, or one with other baselines, reuses a run's selection
    sel_settings = _selection_settings(tracks, folds, config, n_epochs, epoch_size, fit_kwargs,
                                       seed, select, inner_folds, inner_splits, per_biosample,
                                       select_by)
    settings = {**sel_settings, "baselines": list(baselines), "masks": sorted(masks or {})}
    if check_n_models(n_models) > 1:  # one model keeps the cache keys of earlier folds
        settings["n_models"] = int(n_models)
    cache = None if cache_dir is None else Path(cache_dir)

    frames, selections = [], []
    bar = tqdm(folds, desc="folds", unit="fold", disable=not progress)
    for i, fold in enumerate(bar):
        bar.set_description(f"fold {i + 1}/{len(folds)}")
        file = None if cache is None else cache / f"fold{i:03d}-{_fold_key(fold, settings)}.tsv"
        sel_file = None if cache is None else _selection_file(cache, i, fold, sel_settings)
        if file is not None and file.is_file():
            frames.append(pd.read_csv(file, sep="\t"))
            if sel_file.is_file():
                selections.append(pd.read_csv(sel_file, sep="\t"))
            continue
        held = set(fold)
        train = {k: v for k, v in tracks.items() if k not in held}
        kw = _fold_fit_kwargs(fit_kwargs, epoch_size)
        fold_config, fold_epochs, chosen = config, n_epochs, None
        if select:
            chosen, scores = _fold_selection(i, train, tracks.keys(), sel_file, select, config,
                                             n_epochs, kw, seed, inner_folds, inner_splits,
                                             per_biosample, select_by, device)
            fold_config, fold_epochs, kw = _apply(config, n_epochs, kw, chosen)
            selections.append(scores)
            if progress:
                tqdm.write(f"fold {i + 1}/{len(folds)}: chose {json.dumps(chosen)} "
                           f"(validation {SELECTION_METRICS[select_by]} {_best_score(scores):.4f})")
        model, seconds = _fit_fold(train, fold_config, fold_epochs, kw, n_models, seed + i,
                                   tracks.keys(), device, progress)
        rows = []
        for b, a in fold:
            y = np.asarray(tracks[b, a])
            preds = {MODEL: model.predict(b, a)}
            for name in baselines:
                preds[name] = BASELINES[name](train, b, a)
            for method, x in preds.items():
                row = {"fold": i, "biosample": b, "assay": a, "method": method,
                       **score_track(y, x, masks),
                       "train_seconds": seconds if method == MODEL else np.nan}
                if chosen is not None:
                    row["selected"] = json.dumps(chosen, sort_keys=True) if method == MODEL else ""
                    row[f"val_{select_by}"] = _best_score(scores) if method == MODEL else np.nan
                rows.append(row)
        frame = pd.DataFrame(rows)
        if file is not None:
            _io.write_text(file, frame.to_csv(sep="\t", index=False))
        frames.append(frame)
        if progress:
            m = frame[frame["method"] == MODEL]
            tqdm.write(f"fold {i + 1}/{len(folds)}: {len(fold)} held out, model mean MSE "
                       f"{m['mse'].mean():.4f}, r {m['pearson'].mean():.3f}, "
                       f"trained in {seconds:.0f} s")
    results = pd.concat(frames, ignore_index=True)
    if selections:
        results.attrs["selection"] = pd.concat(selections, ignore_index=True)
    return results


def _tracks_of_one_length(data) -> dict[Experiment, np.ndarray]:
    tracks = _baselines.as_track_mapping(data)
    lengths = {len(v) for v in tracks.values()}
    if len(lengths) != 1:
        raise AvocadoValueError(f"tracks have lengths {sorted(lengths)}; expected one length")
    return tracks


def _selection_settings(tracks, folds, config, n_epochs, epoch_size, fit_kwargs, seed, select,
                        inner_folds, inner_splits, per_biosample, select_by) -> dict[str, Any]:
    """The settings a fold's selection depends on (its cache key), checked before training."""
    settings = {
        "config": config, "n_epochs": n_epochs, "epoch_size": epoch_size,
        "fit_kwargs": dict(fit_kwargs or {}), "seed": seed,
        "n_positions": len(next(iter(tracks.values()))),
        "experiments": sorted(map(list, tracks.keys())),
    }
    if select:  # no selection keeps the cache keys of earlier folds
        candidates(select)  # bad names fail before any training
        _selection_metric(select_by)
        for i, fold in enumerate(folds):  # every fold's inner split exists
            _inner_splits(set(tracks) - set(fold), inner_folds, inner_splits, seed + i)
        settings.update(select=dict(select), inner_folds=inner_folds, inner_splits=inner_splits)
        if per_biosample:  # without it, the cache keys of earlier selections
            settings["per_biosample"] = True
        if select_by != "mse":  # the same
            settings["select_by"] = select_by
    return settings


def _selection_file(cache: Path, i: int, fold: Sequence[Experiment],
                    sel_settings: Mapping[str, Any]) -> Path:
    return cache / f"fold{i:03d}-{_fold_key(fold, sel_settings)}.selection.tsv"


def _fold_fit_kwargs(fit_kwargs: Mapping[str, Any] | None, epoch_size: int | None
                     ) -> dict[str, Any]:
    kw = dict(fit_kwargs or {})
    if epoch_size is not None:
        kw["epoch_size"] = epoch_size
    return kw


def _fold_selection(i, train, experiments, sel_file, select, config, n_epochs, kw, seed,
                    inner_folds, inner_splits, per_biosample, select_by, device
                    ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fold ``i``'s choice and every candidate's validation scores (cached in ``sel_file``)."""
    if sel_file is not None and sel_file.is_file():
        scores = pd.read_csv(sel_file, sep="\t")
        return _chosen(scores, per_biosample, select_by), scores
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
    tracks = _tracks_of_one_length(data)
    folds = make_folds(tracks.keys(), n_folds, seed=seed)
    sel_settings = _selection_settings(tracks, folds, config, n_epochs, epoch_size, fit_kwargs,
                                       seed, select, inner_folds, inner_splits, per_biosample,
                                       select_by)
    cache = None if cache_dir is None else Path(cache_dir)
    kw = _fold_fit_kwargs(fit_kwargs, epoch_size)
    frames, per_fold = [], {}
    for i, fold in enumerate(tqdm(folds, desc="selection", unit="fold", disable=not progress)):
        sel_file = None if cache is None else _selection_file(cache, i, fold, sel_settings)
        held = set(fold)
        train = {k: v for k, v in tracks.items() if k not in held}
        chosen, scores = _fold_selection(i, train, tracks.keys(), sel_file, select, config,
                                         n_epochs, kw, seed, inner_folds, inner_splits,
                                         per_biosample, select_by, device)
        if progress:
            tqdm.write(f"fold {i + 1}/{len(folds)}: best {json.dumps(chosen)} "
                       f"(validation {SELECTION_METRICS[select_by]} {_best_score(scores):.4f})")
        frames.append(scores)
        if per_biosample:
            per_fold[i] = chosen["biosample_settings"]
    scores = pd.concat(frames, ignore_index=True)
    if per_biosample:
        scores.attrs["biosample_settings"] = per_fold
    return scores


def summarize_selection(scores: pd.DataFrame, command: str | None = None) -> str:
    """Markdown of :func:`nested_selection`: each fold's best, and every candidate by mean.

    Parameters
    ----------
    scores: pandas.DataFrame
        Output of ``nested_selection``.
    command: str, optional
        The command that produced it, written as a comment at the top.

    Returns
    -------
    markdown: str
    """
    column = _criterion(scores.columns)
    label, sign = _label(column), _sign(column)
    wide = _candidate_table(scores)
    wide.insert(0, f"mean val {label}", wide.mean(axis=1))
    wide = wide.sort_values(f"mean val {label}", ascending=sign > 0, kind="stable")
    best = scores.loc[(sign * scores[column]).groupby(scores["fold"]).idxmin(),
                      ["fold", "params", column]]
    out = [f"<!-- {command} -->\n"] if command else []
    out += ["Nested selection only: every candidate scored on validation tracks split off each "
            "fold's training tracks. No final model was trained and no held-out track was "
            "read.\n",
            "### Each fold's best\n",
            _md_table(best.rename(columns={"params": "best", column: f"validation {label}"})),
            f"\n### Every candidate, by mean validation {label} over the folds\n",
            _md_table(wide.reset_index())]
    per_fold = scores.attrs.get("biosample_settings")
    if per_fold:
        rows = [{"fold": i, "biosample": b, "settings": json.dumps(s, sort_keys=True)}
                for i, chosen in per_fold.items() for b, s in chosen.items()]
        out += ["\n### Prediction settings chosen per biosample (on its own validation "
                "tracks)\n", _md_table(pd.DataFrame(rows))]
    return "\n".join(out)


def _wins(results: pd.DataFrame, baseline: str, metric: str) -> tuple[int, int]:
    """Tracks where the model beats a baseline on a metric, and the number compared."""
    wide = results.pivot_table(
        index=["biosample", "assay"], columns="method", values=metric, dropna=False
    )
    both = wide[[MODEL, baseline]].dropna()
    if metric in HIGHER_IS_BETTER:
        return int((both[MODEL] > both[baseline]).sum()), len(both)
    return int((both[MODEL] < both[baseline]).sum()), len(both)


def summarize(results: pd.DataFrame, command: str | None = None,
              notes: str | None = None) -> str:
    """Markdown summary of ``cross_validate`` results.

    Parameters
    ----------
    results: pandas.DataFrame
        Output of ``cross_validate``.
    command: str, optional
        The command that produced the results, written as a comment at the top.
    notes: str, optional
        A paragraph to add after the header (settings, caveats).

    Returns
    -------
    markdown: str
        Means per method (every metric), mean MSE and Pearson per assay and method, the
        number of tracks where the model beats each baseline per metric, and a per-track
        table of MSE and Pearson.
    """
    metrics = [c for c in results.columns if c not in (
        "fold", "biosample", "assay", "method", "train_seconds", "selected")
        and not c.startswith("val_")]
    methods = list(dict.fromkeys(results["method"]))
    n_tracks = results[["biosample", "assay"]].drop_duplicates().shape[0]
    out = []
    if command:
        out.append(f"<!-- {command} -->\n")
    out.append(f"Held-out evaluation: {n_tracks} tracks, {results['fold'].nunique()} folds; "
               "every track was held out once and scored against a model trained on the "
               "other folds' tracks. Lower is better for the MSE metrics, higher for the "
               "others.\n")
    if notes:
        out.append(notes.strip() + "\n")
    if "selected" in results:
        out.append(_selection_section(results))

    means = results.groupby("method", sort=False)[metrics].mean().loc[methods]
    out.append("### Mean over held-out tracks\n")
    out.append(_md_table(means.reset_index(), float_format="{:.4f}"))

    out.append("\n### Tracks where the model wins, per baseline\n")
    rows = []
    for base in methods:
        if base == MODEL:
            continue
        row = {"baseline": base}
        for m in metrics:
            w, n = _wins(results, base, m)
            row[m] = f"{w}/{n}" if n else "n/a"  # n = 0: the baseline's metric is undefined
        rows.append(row)
    out.append(_md_table(pd.DataFrame(rows)))

    out.append("\n### Mean per assay\n")
    per_assay = results.groupby(["assay", "method"], sort=True)[["mse", "pearson"]].mean()
    wide = per_assay.unstack("method")
    wide.columns = [f"{m} {metric}" for metric, m in wide.columns]
    cols = [f"{m} {metric}" for metric in ("mse", "pearson") for m in methods]
    out.append(_md_table(wide.reindex(columns=cols).reset_index(), float_format="{:.4f}"))

    top = [m for m in ("mse1obs", "match1") if m in results]
    if top:
        out.append("\n### Top 1% of bins per assay\n")
        out.append("MSE over the top 1% of observed bins (mse1obs, lower is better) and the share "
                   "of them that are also in the top 1% of imputed bins (match1, higher is "
                   "better): where average activity is hardest to beat.\n")
        per_assay = results.groupby(["assay", "method"], sort=True)[top].mean()
        wide = per_assay.unstack("method")
        wide.columns = [f"{m} {metric}" for metric, m in wide.columns]
        cols = [f"{m} {metric}" for metric in top for m in methods]
        out.append(_md_table(wide.reindex(columns=cols).reset_index(), float_format="{:.4f}"))

    cols = [f"{m} {metric}" for metric in ("mse", "pearson") for m in methods]
    out.append("\n### Per track\n")
    per_track = results.pivot_table(index=["biosample", "assay"], columns="method",
                                    values=["mse", "pearson"], dropna=False)
    per_track.columns = [f"{m} {metric}" for metric, m in per_track.columns]
    out.append(_md_table(per_track.reindex(columns=cols).reset_index(), float_format="{:.4f}"))
    if "train_seconds" in results:
        t = results.drop_duplicates("fold")["train_seconds"].dropna()
        if len(t):
            out.append(f"\nModel training time per fold: {t.mean():.0f} s on average "
                       f"({t.sum() / 60:.1f} min in all).\n")
    return "\n".join(out)


def _selection_section(results: pd.DataFrame) -> str:
    """Markdown of the nested selection: each fold's choice, and every candidate's score."""
    chosen = results[results["method"] == MODEL].drop_duplicates("fold")
    column = _criterion(results.columns)
    label = _label(column)
    out = ["### Nested model selection\n",
           f"Each fold chose its settings by the mean {label} on validation tracks split off "
           "its own training tracks; its held-out tracks chose nothing.\n",
           _md_table(chosen[["fold", "selected", column]].rename(
               columns={"selected": "chosen", column: f"validation {label}"}))]
    grid = results.attrs.get("selection")
    if grid is not None and len(grid):
        out.append(f"\nValidation {label} of every candidate:\n")
        out.append(_md_table(_candidate_table(grid).reset_index()))
    return "\n".join(out)


def _candidate_table(grid: pd.DataFrame) -> pd.DataFrame:
    """Validation score of every candidate (rows, index "candidate") in every fold (columns),
    in the metric the selection chose by."""
    column = _criterion(grid.columns)
    wide = grid.pivot_table(index="params", columns="fold", values=column, sort=False)
    wide.columns = [f"fold {c} val {_label(column)}" for c in wide.columns]
    return wide.rename_axis("candidate")


def _md_table(df: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "n/a" if np.isnan(v) else float_format.format(v)
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(df[c]) else "---"
                         for c in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def plot_evaluation(results: pd.DataFrame, path: str | os.PathLike,
                    baseline: str = "average_activity") -> Path:
    """Per-track scatter of model vs a baseline (MSE and Pearson), coloured by assay (PNG).

    Parameters
    ----------
    results: pandas.DataFrame
        Output of ``cross_validate``.
    path: str or PathLike
        Where to write the PNG (atomically).
    baseline: str, optional
        The baseline on the x axis. Default is "average_activity".

    Returns
    -------
    path: pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if baseline not in set(results["method"]):
        raise AvocadoKeyError(
            f"baseline {baseline!r} not in the results; expected one of "
            f"{sorted(set(results['method']) - {MODEL})}"
        )
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    assays = sorted(set(results["assay"]))
    colors = dict(zip(assays, plt.cm.tab10(np.arange(len(assays)) % 10)))
    for ax, metric, label in zip(axes, ("mse", "pearson"), ("MSE (lower is better)",
                                                            "Pearson r (higher is better)")):
        wide = results.pivot_table(index=["biosample", "assay"], columns="method",
                                   values=metric, dropna=False).reset_index()
        for assay in assays:
            t = wide[wide["assay"] == assay]
            ax.scatter(t[baseline], t[MODEL], s=36, color=colors[assay], label=assay,
                       edgecolor="black", linewidth=0.4)
        lo = float(np.nanmin(wide[[baseline, MODEL]].to_numpy()))
        hi = float(np.nanmax(wide[[baseline, MODEL]].to_numpy()))
        pad = 0.05 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", lw=1, ls="--")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        w, n = _wins(results, baseline, metric)
        ax.set_title(f"{label}: model wins {w}/{n}")
        ax.set_xlabel(baseline.replace("_", " "))
        ax.set_ylabel("Avocado (held out)")
    axes[1].legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    try:
        with _io.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return path


def evaluate_to_dir(
    data,
    out_dir: str | os.PathLike,
    prefix: str = "evaluation",
    command: str | None = None,
    notes: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Run ``cross_validate`` and write ``<prefix>.tsv``, ``<prefix>.md`` and ``<prefix>.png``.

    Parameters
    ----------
    data: TrackStore or Mapping
        Observed tracks.
    out_dir: str or PathLike
        Output folder (created if needed).
    prefix: str, optional
        File name stem. Default is "evaluation".
    command: str, optional
        Command line recorded at the top of the summary.
    notes: str, optional
        Extra paragraph for the summary.
    **kwargs
        Passed to ``cross_validate`` (n_folds, config, n_epochs, cache_dir, ...).

    Returns
    -------
    results: pandas.DataFrame
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = cross_validate(data, **kwargs)
    _io.write_text(out / f"{prefix}.tsv", results.to_csv(sep="\t", index=False,
                                                        float_format="%.6g"))
    if "selection" in results.attrs:
        _io.write_text(out / f"{prefix}-selection.tsv",
                      results.attrs["selection"].to_csv(sep="\t", index=False,
                                                        float_format="%.6g"))
    _io.write_text(out / f"{prefix}.md", summarize(results, command=command, notes=notes))
    if "average_activity" in set(results["method"]):
        plot_evaluation(results, out / f"{prefix}.png")
    return results
