"""Folds of experiments: held out for a test, or split off the training tracks to validate.

``make_folds`` splits observed experiments into folds that never hide a whole biosample or
assay (a Latin square on a complete grid); ``validation_folds`` splits a fold's training
tracks again into validation folds (nested selection, and the settings a fit chooses
itself: :mod:`avocado_core.choice`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .errors import AvocadoValueError

__all__ = ["Experiment", "make_folds", "validation_folds"]

Experiment = tuple[str, str]


def make_folds(
    experiments: Iterable[Experiment],
    n_folds: int | None = 5,
    seed: int = 0,
    max_tries: int = 200,
    keep_lonely: bool = False,
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
    keep_lonely: bool, optional
        Leave the experiments that cannot be held out (the only one of their biosample or
        assay) out of every fold, so that they always train, instead of refusing them.
        Default is False: every experiment is held out once (an evaluation scores them all).

    Returns
    -------
    folds: list of list of (biosample, assay)
        Every experiment (but, with ``keep_lonely``, the lonely ones) is in exactly one fold;
        within a fold, every biosample and every assay keeps at least one experiment outside
        the fold. Folds are as even in size as the greedy assignment allows, and each spreads
        its experiments over different biosamples and assays (a Latin square on a complete
        grid).
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
    holdable = (n_b[bi] >= 2) & (n_a[ai] >= 2)
    if not holdable.all() and not keep_lonely:
        lonely = [e for e, ok in zip(exps, holdable) if not ok]
        raise AvocadoValueError(
            f"{len(lonely)} experiment(s) cannot be held out without leaving their biosample or "
            f"assay with no training experiment: {lonely[:10]}; every biosample and assay "
            "needs at least two observed experiments"
        )
    n_held = int(holdable.sum())
    if n_held == 0:
        raise AvocadoValueError("no experiment can be held out: every biosample or assay has "
                                "only one")
    if n_folds is None or n_folds >= n_held:
        return [[e] for e, ok in zip(exps, holdable) if ok]
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
            if not holdable[i]:
                continue
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
        if not ((fold_of[holdable] >= 0).all() and (size > 0).all()):
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


def validation_folds(experiments: Iterable[Experiment], inner_folds: int, inner_splits: int,
                  seed: int) -> list[list[Experiment]]:
    """The validation folds of nested selection (the experiments that are the only one of
    their biosample or assay in none: they always train), or a clear error when there are
    none."""
    if isinstance(inner_splits, bool) or int(inner_splits) != inner_splits or not (
            1 <= inner_splits <= inner_folds):
        raise AvocadoValueError(
            f"inner_splits={inner_splits!r}; expected an integer in [1, inner_folds={inner_folds}]"
        )
    try:  # an experiment that is the only one of its biosample or assay always trains
        return make_folds(experiments, inner_folds, seed=seed,
                          keep_lonely=True)[: int(inner_splits)]
    except AvocadoValueError as exc:
        raise AvocadoValueError(f"the training tracks cannot be split into validation folds: "
                                f"{exc}") from None
