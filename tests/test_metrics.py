"""Metrics against numbers computed by hand on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from avocado_core import metrics
from avocado_core.errors import AvocadoKeyError, AvocadoValueError


def test_mse_pearson_spearman_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    x = np.array([1.0, 3.0, 2.0, 6.0])
    # squared differences 0, 1, 1, 4
    assert metrics.mse(y, x) == pytest.approx(6 / 4)
    # centred y = (-1, 0, 1), centred x = (-1, 1, 0): dot 1, norms sqrt(2) * sqrt(2)
    assert metrics.pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    # ranks (1, 2, 3, 4) vs (1, 3, 2, 4): centred dot 4, sums of squares 5
    assert metrics.spearman([10, 20, 30, 40], [1, 3, 2, 100]) == pytest.approx(0.8)
    # ties get average ranks: (1.5, 1.5, 3, 4) vs (1, 2, 3, 4)
    # centred: (-1, -1, 0.5, 1.5) vs (-1.5, -0.5, 0.5, 1.5); dot 4.5; sq 4.5 and 5
    assert metrics.spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))


def test_nan_pairs_are_dropped():
    y = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    x = np.array([1.0, 3.0, 7.0, 6.0, np.nan])
    # pairs left: (1, 1), (2, 3), (4, 6) -> 0 + 1 + 4
    assert metrics.mse(y, x) == pytest.approx(5 / 3)
    # centred y (-4/3, -1/3, 5/3), centred x (-7/3, -1/3, 8/3)
    yc, xc = np.array([-4, -1, 5]) / 3, np.array([-7, -1, 8]) / 3
    assert metrics.pearson(y, x) == pytest.approx(yc @ xc / np.sqrt((yc @ yc) * (xc @ xc)))


def _top_example() -> tuple[np.ndarray, np.ndarray]:
    """200 bins: top 1% = 2 bins, top 5% = 10 bins."""
    y = np.zeros(200)
    y[0], y[1], y[2] = 5.0, 4.0, 4.0  # 2nd largest is 4 and tied: top-1% observed = {0, 1, 2}
    y[20:27] = 1.0  # top-5% observed = {0, 1, 2, 20..26}
    x = np.zeros(200)
    x[0], x[1], x[5] = 3.0, 1.0, 6.0  # top-1% imputed = {5, 0}
    x[10:17] = 0.5  # top-5% imputed = {0, 1, 5, 10..16}
    return y, x


def test_top_percent_metrics_by_hand():
    y, x = _top_example()
    # observed top {0, 1, 2}: (5-3)^2 + (4-1)^2 + (4-0)^2 = 29
    assert metrics.mse1obs(y, x) == pytest.approx(29 / 3)
    # imputed top {0, 5}: (5-3)^2 + (0-6)^2 = 40
    assert metrics.mse1imp(y, x) == pytest.approx(20.0)
    assert metrics.match1(y, x) == pytest.approx(1 / 3)  # {0,1,2} & {0,5} = {0}
    assert metrics.catch1obs(y, x) == pytest.approx(2 / 3)  # {0,1,2} & top-5% imputed = {0,1}
    assert metrics.catch1imp(y, x) == pytest.approx(1 / 2)  # {0,5} & top-5% observed = {0}
    # positives {0,1,2} scored by x (3, 1, 0) against 197 negatives: one 6, seven 0.5,
    # 189 zeros -> 196 + 196 + 189/2 wins
    assert metrics.aucobs1(y, x) == pytest.approx(486.5 / 591)
    # positives {0, 5} scored by y (5, 0) against 198 negatives: 4, 4, seven 1s, 189 zeros
    assert metrics.aucimp1(y, x) == pytest.approx(292.5 / 396)
    # cross-check the rank-sum AUC with scikit-learn
    assert metrics.aucobs1(y, x) == pytest.approx(roc_auc_score(y >= 4, x))
    # whole track: 4 + 9 + 16 + 36 + 7 * 0.25 + 7 * 1
    assert metrics.mse(y, x) == pytest.approx(73.75 / 200)


def test_score_track_matches_each_metric_and_ignores_nan():
    y, x = _top_example()
    masks = {"promoter": np.arange(200) < 3, "gene": np.array([5, 10]), "enhancer": y > 100}
    scores = metrics.score_track(y, x, masks)
    assert list(scores)[:10] == list(metrics.METRICS)
    for name, f in metrics.METRICS.items():
        assert scores[name] == pytest.approx(f(y, x)), name
    assert scores["mseprom"] == pytest.approx(29 / 3)
    assert scores["msegene"] == pytest.approx((36 + 0.25) / 2)
    assert math.isnan(scores["mseenh"])  # empty mask: undefined, not zero
    # a NaN bin on either side is dropped before the top-1% sets are formed
    y2, x2 = np.append(y, [np.nan, 9.0]), np.append(x, [9.0, np.nan])
    masks2 = {k: np.append(metrics._as_mask(v, 200), [True, True]) for k, v in masks.items()}
    scores2 = metrics.score_track(y2, x2, masks2)
    assert scores2.keys() == scores.keys()
    for name in scores:
        assert scores2[name] == pytest.approx(scores[name], nan_ok=True), name


def test_mask_metrics_by_hand():
    y = np.array([1.0, 2.0, 3.0, np.nan])
    x = np.zeros(4)
    assert metrics.mseprom(y, x, np.array([True, True, False, False])) == pytest.approx(2.5)
    assert metrics.msegene(y, x, np.array([2, 3])) == pytest.approx(9.0)  # NaN bin 3 dropped
    assert metrics.mseenh(y, x, np.array([False, False, True, True])) == pytest.approx(9.0)


def test_undefined_cases_are_nan_and_bad_input_raises():
    assert math.isnan(metrics.pearson([1, 1, 1], [1, 2, 3]))  # constant track
    assert math.isnan(metrics.mse1obs(np.arange(99.0), np.arange(99.0)))  # int(0.99) == 0
    assert math.isnan(metrics.mse([np.nan], [1.0]))
    # a constant imputation has no top 1%: overlap and ranking metrics are undefined
    y, _ = _top_example()
    flat = metrics.score_track(y, np.full(200, 0.3))
    for name in ("mse1imp", "match1", "catch1obs", "catch1imp", "aucimp1"):
        assert math.isnan(flat[name]), name
    assert flat["aucobs1"] == 0.5  # a constant score ties every pair
    assert flat["mse1obs"] == pytest.approx((4.7**2 + 2 * 3.7**2) / 3)
    with pytest.raises(AvocadoValueError, match="3 values but y_pred has 2"):
        metrics.mse([1, 2, 3], [1, 2])
    with pytest.raises(AvocadoKeyError, match="promoters"):
        metrics.score_track([1.0, 2.0], [1.0, 2.0], {"promoters": np.array([True, False])})
    with pytest.raises(AvocadoValueError, match="shape"):
        metrics.mseprom([1.0, 2.0], [1.0, 2.0], np.array([True]))


def test_perfect_prediction_and_large_track_is_fast():
    rng = np.random.default_rng(0)
    y = rng.gamma(0.5, 1.0, 1_000_000).astype(np.float32)
    s = metrics.score_track(y, y)
    assert s["mse"] == 0 and s["pearson"] == pytest.approx(1.0) and s["match1"] == 1.0
    assert s["aucobs1"] == pytest.approx(1.0) and s["catch1imp"] == 1.0


def test_top_sets_are_sized_as_the_challenge_scoring_code():
    # ENCODE-DCC/imputation_challenge score.py: n = int(N * 0.01); the top-1% threshold is
    # sorted[-n] and the "top 5%" threshold sorted[-5 * n], so 5 * int(0.01 N) bins, which is
    # not int(0.05 N) unless 0.01 N is whole (the pilot's 1,126,469 bins: 56,320 vs 56,323).
    assert metrics.top_count(1_126_469) == 11_264
    assert metrics.top_count(1_126_469, multiple=5) == 56_320
    assert metrics.top_count(250, multiple=5) == 10  # int(2.5) = 2 -> 10, not int(12.5) = 12
    assert metrics.top_count(199, multiple=5) == 5
    v = np.random.default_rng(0).permutation(1_126_469).astype(np.float64)
    assert metrics.top_mask(v, 0.01, 5).sum() == 56_320
    # 250 distinct bins; y ranks bin i at i + 1. x ranks bins 2..11 first, then 0 and 1:
    # y's top 2 {0, 1} lie in x's top 12 but not in its top 10.
    y = 250.0 - np.arange(250)
    x = np.zeros(250)
    x[2:12] = 100.0 - np.arange(10)
    x[[0, 1]] = [80.0, 79.0]
    x[12:] = -np.arange(238.0)
    assert metrics.catch1obs(y, x) == 0.0  # 1.0 with a top set of int(0.05 N) = 12 bins
    assert metrics.catch1imp(x, y) == 0.0  # the same sets with the roles swapped
    assert metrics.catch1imp(y, x) == 1.0  # x's top 2 {2, 3} are in y's top 10
    assert metrics.match1(y, x) == 0.0
    s, s_swapped = metrics.score_track(y, x), metrics.score_track(x, y)
    assert (s["catch1obs"], s["catch1imp"], s_swapped["catch1imp"]) == (0.0, 1.0, 0.0)
    with pytest.raises(AvocadoValueError, match="multiple=0"):
        metrics.top_count(100, multiple=0)
