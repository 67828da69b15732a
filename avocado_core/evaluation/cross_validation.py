"""Held-out scores: train on each fold's training tracks, score model and baselines on the rest.

``cross_validate`` trains a fresh model (or ensemble) per fold, optionally with the settings
that fold's nested selection chose (:mod:`avocado_core.evaluation.nested`), and scores the
model and the baselines on the fold's held-out tracks with every metric of
:mod:`avocado_core.metrics`. Each finished fold is cached (atomically) under a key of its
experiments and settings, so a rerun resumes after the last finished fold.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import _io
from .. import baselines as _baselines
from ..choice import SELECTION_METRICS, best_score
from ..errors import AvocadoKeyError
from ..folds import make_folds
from ..metrics import score_track
from .inputs import tracks_of_one_length
from .nested import (
    apply_candidate,
    fit_models,
    fold_fit_kwargs,
    fold_key,
    fold_selection,
    selection_file,
    selection_settings,
)

__all__ = [
    "BASELINES",
    "MODEL",
    "cross_validate",
]

#: Baselines scored next to the model: name -> f(training tracks, biosample, assay).
BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "average_activity": _baselines.average_activity,
    "smoothed_average_activity": _baselines.smoothed_average_activity,
    "assay_mean": _baselines.assay_mean,
}

#: Name of the model's rows in the results.
MODEL = "avocado"


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
        baselines). Where the fold's training chose its settings (``choose_settings``, the
        default without ``select``), ``chosen`` (JSON: the averaging window and each
        biosample's prediction settings) on the model's rows. With ``select``, ``selected``
        (the chosen settings, JSON) and ``val_<select_by>`` (the best candidate's validation
        score) on the model's rows, and ``results.attrs["selection"]``: every candidate's
        validation scores per fold.
    """
    from tqdm.auto import tqdm

    from ..ensemble import check_n_models

    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise AvocadoKeyError(f"unknown baseline(s) {unknown}; expected some of {list(BASELINES)}")
    tracks = tracks_of_one_length(data)
    folds = make_folds(tracks.keys(), n_folds, seed=seed)
    # the selection (one model per candidate) does not depend on n_models, the baselines or
    # the masks: an ensemble run, or one with other baselines, reuses a run's selection
    sel_settings = selection_settings(tracks, folds, config, n_epochs, epoch_size, fit_kwargs,
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
        file = None if cache is None else cache / f"fold{i:03d}-{fold_key(fold, settings)}.tsv"
        sel_file = None if cache is None else selection_file(cache, i, fold, sel_settings)
        if file is not None and file.is_file():
            frames.append(pd.read_csv(file, sep="\t"))
            if sel_file.is_file():
                selections.append(pd.read_csv(sel_file, sep="\t"))
            continue
        held = set(fold)
        train = {k: v for k, v in tracks.items() if k not in held}
        kw = fold_fit_kwargs(fit_kwargs, epoch_size)
        fold_config, fold_epochs, chosen = config, n_epochs, None
        if select:
            chosen, scores = fold_selection(i, train, tracks.keys(), sel_file, select, config,
                                             n_epochs, kw, seed, inner_folds, inner_splits,
                                             per_biosample, select_by, device)
            fold_config, fold_epochs, kw = apply_candidate(config, n_epochs, kw, chosen)
            kw["choose_settings"] = False  # the selection chose
            selections.append(scores)
            if progress:
                tqdm.write(f"fold {i + 1}/{len(folds)}: chose {json.dumps(chosen)} "
                           f"(validation {SELECTION_METRICS[select_by]} {best_score(scores):.4f})")
        model, seconds = fit_models(train, fold_config, fold_epochs, kw, n_models, seed + i,
                                   tracks.keys(), device, progress)
        rows = []
        choice = model.models[0].choice  # what the fold's training chose on validation tracks
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
                    row[f"val_{select_by}"] = best_score(scores) if method == MODEL else np.nan
                if choice is not None:
                    row["chosen"] = json.dumps(
                        {k: choice[k] for k in ("average_from", "biosample_settings")},
                        sort_keys=True) if method == MODEL else np.nan
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
