"""Imputation metrics of the ENCODE Imputation Challenge and the Avocado papers.

Every metric compares an observed track ``y_true`` with an imputed track ``y_pred`` (arcsinh
signal, one value per 25 bp bin) and returns a float. All metrics are NaN-safe: a bin where
either value is NaN is dropped before anything else is computed (so "top 1%" means the top 1%
of the bins where both values are known). A metric that is undefined on the remaining bins
(no bins at all, a constant track for a correlation or as the ranking of a top-1% metric,
fewer than 100 bins for a top-1% metric) returns NaN rather than a made-up number.

Top-k sets include ties: with ``n = int(N * fraction)`` the threshold is the n-th largest value
and every bin at or above it belongs to the set, as in the challenge's ``mse1obs``. The same
rule is used by ``match1``, ``catch1obs``, ``catch1imp``, ``aucobs1`` and ``aucimp1`` so that
the result does not depend on how a sort breaks ties. The "top 5%" set of ``catch1obs`` /
``catch1imp`` is sized as the challenge's scoring code sizes it (ENCODE-DCC/imputation_challenge,
``score.py``): ``5 * int(N * 0.01)`` bins, not ``int(N * 0.05)`` (they differ whenever
``N * 0.01`` is not a whole number, e.g. 56,320 against 56,323 bins for the pilot's 1,126,469).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable

import numpy as np
from scipy.stats import rankdata

from .errors import AvocadoKeyError, AvocadoValueError

__all__ = [
    "METRICS",
    "HIGHER_IS_BETTER",
    "MASK_METRICS",
    "mse",
    "pearson",
    "spearman",
    "mse1obs",
    "mse1imp",
    "mse_masked",
    "mseprom",
    "msegene",
    "mseenh",
    "match1",
    "catch1obs",
    "catch1imp",
    "aucobs1",
    "aucimp1",
    "top_count",
    "top_mask",
    "score_track",
]

def _known(y_true, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate two tracks: both as float64 vectors, and the mask of bins where both are known."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    x = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != x.shape:
        raise AvocadoValueError(
            f"y_true has {y.size} values but y_pred has {x.size}; expected the same length"
        )
    return y, x, ~(np.isnan(y) | np.isnan(x))


def _pairs(y_true, y_pred, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Validate two tracks and return the float64 pairs where both are finite (and mask)."""
    y, x, keep = _known(y_true, y_pred)
    if mask is not None:
        keep &= _as_mask(mask, y.size)
    if keep.all():
        return y, x
    return y[keep], x[keep]


def _as_mask(mask, n: int) -> np.ndarray:
    """A boolean mask of length n from a boolean array or an array of bin indices."""
    m = np.asarray(mask)
    if m.dtype == bool:
        if m.shape != (n,):
            raise AvocadoValueError(
                f"mask has shape {m.shape}; expected a boolean array of shape ({n},)"
            )
        return m
    if m.dtype.kind in "iu":
        if m.size and (m.min() < 0 or m.max() >= n):
            raise AvocadoValueError(
                f"mask bin indices span [{m.min()}, {m.max()}]; expected indices in [0, {n})"
            )
        out = np.zeros(n, dtype=bool)
        out[m] = True
        return out
    raise AvocadoValueError(
        f"mask has dtype {m.dtype}; expected a boolean mask or integer bin indices"
    )


def top_count(n: int, fraction: float = 0.01, multiple: int = 1) -> int:
    """Size of a top set of ``n`` bins as the challenge's scoring code computes it.

    Parameters
    ----------
    n: int
        Number of bins.
    fraction: float, optional
        Fraction of the bins in the base set. Default is 0.01.
    multiple: int, optional
        The set is this many times the base set: ``multiple * int(n * fraction)`` (the
        challenge's "top 5%" is ``5 * int(n * 0.01)``). Default is 1.

    Returns
    -------
    k: int
    """
    if not 0 < fraction <= 1:
        raise AvocadoValueError(f"fraction={fraction!r}; expected a number in (0, 1]")
    if isinstance(multiple, bool) or int(multiple) != multiple or multiple < 1:
        raise AvocadoValueError(f"multiple={multiple!r}; expected an integer >= 1")
    return int(multiple) * int(n * fraction)


def top_mask(values, fraction: float = 0.01, multiple: int = 1) -> np.ndarray | None:
    """Boolean mask of the top ``multiple * int(n * fraction)`` of ``values``, ties included.

    Parameters
    ----------
    values: numpy.ndarray, shape=(n,)
        Finite values.
    fraction: float, optional
        Fraction of bins in the base set. Default is 0.01.
    multiple: int, optional
        Size of the set in base sets (see ``top_count``); the threshold is the k-th largest
        value for ``k = top_count(n, fraction, multiple)``. Default is 1.

    Returns
    -------
    mask: numpy.ndarray of bool, shape=(n,), or None
        ``values >= threshold``; None when ``k`` is 0 or every value is the same (a constant
        track has no top set: with ties included it would be every bin).
    """
    v = np.asarray(values)
    k = top_count(v.size, fraction, multiple)
    if k < 1 or v.min() == v.max():
        return None
    threshold = np.partition(v, v.size - k)[v.size - k]
    return v >= threshold


def _mse(y: np.ndarray, x: np.ndarray) -> float:
    if y.size == 0:
        return float("nan")
    d = y - x
    return float(np.dot(d, d) / d.size)


def _pearson(y: np.ndarray, x: np.ndarray) -> float:
    if y.size < 2:
        return float("nan")
    yc = y - y.mean()
    xc = x - x.mean()
    denom = np.sqrt(np.dot(yc, yc) * np.dot(xc, xc))
    if denom == 0:
        return float("nan")
    return float(np.clip(np.dot(yc, xc) / denom, -1.0, 1.0))


def _auc(labels: np.ndarray, ranks: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney rank sum of the scores' average ranks (ties count one
    half)."""
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _overlap(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Fraction of the bins of set a that are also in set b."""
    if a is None or b is None:
        return float("nan")
    return float(np.count_nonzero(a & b) / np.count_nonzero(a))


def mse(y_true, y_pred) -> float:
    """Mean squared error, mean((y - x)^2), over the bins where both are known.

    Parameters
    ----------
    y_true: array-like, shape=(n,)
        Observed signal.
    y_pred: array-like, shape=(n,)
        Imputed signal.

    Returns
    -------
    mse: float
        NaN when no bin has both values.
    """
    return _mse(*_pairs(y_true, y_pred))


def pearson(y_true, y_pred) -> float:
    """Pearson correlation between observed and imputed signal (NaN if either is constant).

    Parameters as :func:`mse`.
    """
    return _pearson(*_pairs(y_true, y_pred))


def spearman(y_true, y_pred) -> float:
    """Spearman rank correlation (Pearson of average ranks; NaN if either track is constant).

    Parameters as :func:`mse`.
    """
    y, x = _pairs(y_true, y_pred)
    if y.size < 2:
        return float("nan")
    return _pearson(rankdata(y), rankdata(x))


def mse1obs(y_true, y_pred, fraction: float = 0.01) -> float:
    """MSE over the bins whose observed value is in the top 1% (ties included).

    Parameters
    ----------
    y_true, y_pred: array-like, shape=(n,)
        Observed and imputed signal.
    fraction: float, optional
        Size of the top set as a fraction of the bins. Default is 0.01.

    Returns
    -------
    mse: float
        NaN when ``int(fraction * n) == 0``.
    """
    y, x = _pairs(y_true, y_pred)
    top = top_mask(y, fraction)
    return float("nan") if top is None else _mse(y[top], x[top])


def mse1imp(y_true, y_pred, fraction: float = 0.01) -> float:
    """MSE over the bins whose imputed value is in the top 1% (ties included).

    Parameters and result as :func:`mse1obs`, the top set taken from ``y_pred``.
    """
    y, x = _pairs(y_true, y_pred)
    top = top_mask(x, fraction)
    return float("nan") if top is None else _mse(y[top], x[top])


def mse_masked(y_true, y_pred, mask) -> float:
    """MSE pooled over the bins selected by a mask.

    Parameters
    ----------
    y_true, y_pred: array-like, shape=(n,)
        Observed and imputed signal.
    mask: array-like of bool, shape=(n,), or array of int
        The bins to score (a boolean mask, or bin indices).

    Returns
    -------
    mse: float
        NaN when the mask selects no bin with both values known.
    """
    return _mse(*_pairs(y_true, y_pred, mask))


def mseprom(y_true, y_pred, promoter_mask) -> float:
    """MSE pooled over promoter bins.

    A promoter of a + strand gene is the 80 bins before its start bin, of a - strand gene the 80
    bins after its end bin; ``Annotations.promoter_bins(regions)`` builds this mask. Parameters
    and result as :func:`mse_masked`, with the promoter bins as the mask.
    """
    return mse_masked(y_true, y_pred, promoter_mask)


def msegene(y_true, y_pred, gene_mask) -> float:
    """MSE pooled over gene-body bins (``Annotations.gene_body_bins(regions)``).

    Parameters and result as :func:`mse_masked`, with the gene-body bins as the mask.
    """
    return mse_masked(y_true, y_pred, gene_mask)


def mseenh(y_true, y_pred, enhancer_mask) -> float:
    """MSE pooled over enhancer bins (e.g. ``Annotations.interval_mask(enhancers, regions)``).

    Parameters and result as :func:`mse_masked`, with the enhancer bins as the mask.
    """
    return mse_masked(y_true, y_pred, enhancer_mask)


def match1(y_true, y_pred, fraction: float = 0.01) -> float:
    """Fraction of the top-1% observed bins that are also top-1% imputed bins.

    Parameters as :func:`mse1obs`, with ``fraction`` sizing both top sets.
    """
    y, x = _pairs(y_true, y_pred)
    return _overlap(top_mask(y, fraction), top_mask(x, fraction))


def catch1obs(y_true, y_pred, fraction: float = 0.01, wide: int = 5) -> float:
    """Fraction of the top-1% observed bins that lie within the top-5% imputed bins.

    Parameters as :func:`mse1obs` (``fraction`` sizes the observed top set), plus ``wide``:
    the imputed top set holds ``wide * int(n * fraction)`` bins (the challenge's sizing).
    Default is 5.
    """
    y, x = _pairs(y_true, y_pred)
    return _overlap(top_mask(y, fraction), top_mask(x, fraction, wide))


def catch1imp(y_true, y_pred, fraction: float = 0.01, wide: int = 5) -> float:
    """Fraction of the top-1% imputed bins that lie within the top-5% observed bins.

    Parameters as :func:`catch1obs`, with the roles of the two tracks swapped (``fraction``
    sizes the imputed top set, ``wide`` the observed one).
    """
    y, x = _pairs(y_true, y_pred)
    return _overlap(top_mask(x, fraction), top_mask(y, fraction, wide))


def aucobs1(y_true, y_pred, fraction: float = 0.01) -> float:
    """ROC AUC of the imputed signal for telling the top-1% observed bins from the rest.

    Parameters as :func:`mse1obs`, with ``fraction`` sizing the positive set.
    """
    y, x = _pairs(y_true, y_pred)
    top = top_mask(y, fraction)
    return float("nan") if top is None else _auc(top, rankdata(x))


def aucimp1(y_true, y_pred, fraction: float = 0.01) -> float:
    """ROC AUC of the observed signal for telling the top-1% imputed bins from the rest.

    Parameters as :func:`aucobs1`, with the roles of the two tracks swapped.
    """
    y, x = _pairs(y_true, y_pred)
    top = top_mask(x, fraction)
    return float("nan") if top is None else _auc(top, rankdata(y))


#: Metrics computed on the whole track, in the order of ``score_track``'s output.
METRICS: dict[str, Callable[..., float]] = {
    "mse": mse,
    "pearson": pearson,
    "spearman": spearman,
    "mse1obs": mse1obs,
    "mse1imp": mse1imp,
    "match1": match1,
    "catch1obs": catch1obs,
    "catch1imp": catch1imp,
    "aucobs1": aucobs1,
    "aucimp1": aucimp1,
}

#: Mask names accepted by ``score_track`` and the metric each one gives.
MASK_METRICS: dict[str, str] = {
    "promoter": "mseprom",
    "gene": "msegene",
    "enhancer": "mseenh",
}

#: Metrics where larger is better (the others are errors: smaller is better).
HIGHER_IS_BETTER = frozenset(
    {"pearson", "spearman", "match1", "catch1obs", "catch1imp", "aucobs1", "aucimp1"}
)


def score_track(
    y_true,
    y_pred,
    masks: Mapping[str, np.ndarray] | None = None,
    fraction: float = 0.01,
) -> dict[str, float]:
    """Compute every metric for one track at once (NaN pairs dropped, ranks shared).

    Parameters
    ----------
    y_true, y_pred:
        As in :func:`mse`.
    masks: dict[str, numpy.ndarray], optional
        Boolean masks (or bin indices) over the n bins, keyed by ``"promoter"``, ``"gene"``
        and / or ``"enhancer"``; each adds ``mseprom``, ``msegene`` or ``mseenh``. Default is
        None (no annotation metrics).
    fraction: float, optional
        Size of the top sets of the top-1% metrics. Default is 0.01.

    Returns
    -------
    scores: dict[str, float]
        Keys of ``METRICS`` in order, then the mask metrics that were asked for.
    """
    masks = dict(masks or {})
    unknown = sorted(set(masks) - set(MASK_METRICS))
    if unknown:
        raise AvocadoKeyError(
            f"unknown mask name(s) {unknown}; expected some of {sorted(MASK_METRICS)}"
        )
    y0, x0, keep = _known(y_true, y_pred)
    y, x = (y0, x0) if keep.all() else (y0[keep], x0[keep])

    top1_y, top1_x = top_mask(y, fraction), top_mask(x, fraction)
    top5_y, top5_x = top_mask(y, fraction, 5), top_mask(x, fraction, 5)
    ranks_y = rankdata(y) if y.size else y
    ranks_x = rankdata(x) if x.size else x

    scores = {
        "mse": _mse(y, x),
        "pearson": _pearson(y, x),
        "spearman": _pearson(ranks_y, ranks_x) if y.size >= 2 else float("nan"),
        "mse1obs": float("nan") if top1_y is None else _mse(y[top1_y], x[top1_y]),
        "mse1imp": float("nan") if top1_x is None else _mse(y[top1_x], x[top1_x]),
        "match1": _overlap(top1_y, top1_x),
        "catch1obs": _overlap(top1_y, top5_x),
        "catch1imp": _overlap(top1_x, top5_y),
        # x's ranks score the observed top set and vice versa.
        "aucobs1": float("nan") if top1_y is None else _auc(top1_y, ranks_x),
        "aucimp1": float("nan") if top1_x is None else _auc(top1_x, ranks_y),
    }
    for name, metric in MASK_METRICS.items():
        if name in masks:
            m = _as_mask(masks[name], y0.size)
            m = m if keep.all() else m[keep]
            scores[metric] = _mse(y[m], x[m])
    return scores
