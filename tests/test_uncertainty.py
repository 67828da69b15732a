"""Uncertainty bands: the ensemble's spread, the conformal calibration, held-out coverage."""

from __future__ import annotations

import numpy as np
import pytest

from avocado_core.errors import AvocadoValueError
from avocado_core.holdout import latin_square
from avocado_core.uncertainty import (
    BandCalibration,
    band,
    calibrate_band,
    coverage,
    member_band,
)


def _heteroscedastic(n: int, seed: int):
    """Known answer: observed = mean + noise of standard deviation 3 * spread + 0.1."""
    rng = np.random.default_rng(seed)
    mean = rng.gamma(1.0, 1.0, n).astype(np.float32)
    spread = rng.uniform(0.01, 0.3, n).astype(np.float32)
    observed = mean + rng.normal(size=n).astype(np.float32) * (3 * spread + 0.1)
    return observed, mean, spread


def test_calibrated_band_covers_the_nominal_level_on_other_tracks():
    cal = calibrate_band(*[[a] for a in _heteroscedastic(50_000, 0)], level=0.9,
                         experiments=[("E1", "A1")])
    assert cal.level == 0.9 and cal.n_bins == 50_000 and cal.experiments == [["E1", "A1"]]
    observed, mean, spread = _heteroscedastic(50_000, 1)  # tracks not used to calibrate
    low, high = band(mean, spread, cal)
    assert coverage(observed, low, high) == pytest.approx(0.9, abs=0.01)
    # the members' own range is far too narrow here
    assert coverage(observed, *member_band(mean, spread)) < 0.6
    # wider where the members disagree more
    assert np.corrcoef(high - low, spread)[0, 1] > 0.99
    assert BandCalibration.from_dict(cal.to_dict()) == cal


def test_calibration_errors():
    with pytest.raises(AvocadoValueError, match="level must be between 0 and 1"):
        calibrate_band([np.ones(3)], [np.ones(3)], [np.ones(3)], level=90)
    with pytest.raises(AvocadoValueError, match="as many observed, mean and spread"):
        calibrate_band([np.ones(3)], [], [np.ones(3)])
    with pytest.raises(AvocadoValueError, match="spread is 0 everywhere"):
        calibrate_band([np.ones(3)], [np.ones(3)], [np.zeros(3)])
    with pytest.raises(AvocadoValueError, match="empty track"):
        coverage(np.array([]), np.array([]), np.array([]))


def test_latin_squares_hold_out_one_per_biosample_and_assay():
    bios, assays = ["E1", "E2", "E3"], ["A", "B", "C"]
    held, cal = latin_square(bios, assays, 0), latin_square(bios, assays, 1)
    assert held == [("E1", "A"), ("E2", "B"), ("E3", "C")]
    assert {a for _, a in cal} == set(assays) and not set(held) & set(cal)
    with pytest.raises(AvocadoValueError, match="at least one"):
        latin_square([], assays)
