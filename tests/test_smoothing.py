"""Smoothed imputations (``Avocado(smoothing=...)``): a moving mean of the model's output."""

from __future__ import annotations

import numpy as np
import pytest

from avocado_core import Avocado
from avocado_core.baselines import windowed_mean
from avocado_core.errors import AvocadoValueError

B, A, N = ["B0", "B1", "B2"], ["A0", "A1"], 1000


@pytest.fixture(scope="module")
def model() -> Avocado:
    rng = np.random.default_rng(0)
    data = {(b, a): rng.gamma(1.0, 1.0, N).astype(np.float32) for b in B for a in A
            if (b, a) != ("B2", "A1")}
    m = Avocado.small(B, A, N, n_nodes=16, batch_size=200, seed=0, device="cpu")
    m.fit(data, n_epochs=2, progress=False, choose_settings=False)
    return m


def test_imputation_is_the_moving_mean_of_the_model_output(model, tmp_path):
    raw = model.predict_many([("B2", "A1"), ("B0", "A0")])
    model.smoothing = 7
    try:
        smooth = model.predict_many([("B2", "A1"), ("B0", "A0")])
        np.testing.assert_allclose(smooth, windowed_mean(raw, 7), rtol=1e-5, atol=1e-6)
        assert np.abs(np.diff(smooth)).mean() < 0.5 * np.abs(np.diff(raw)).mean()
        # a range reads the model's output half a window past its ends: same values
        np.testing.assert_allclose(model.predict("B2", "A1", 100, 250), smooth[0, 100:250],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.predict("B2", "A1", 0, 2), smooth[0, :2], rtol=1e-5)
        model.save(tmp_path / "m")
        loaded = Avocado.load(tmp_path / "m", device="cpu")
        assert loaded.smoothing == 7 and loaded.config["smoothing"] == 7
        np.testing.assert_array_equal(loaded.predict("B2", "A1"), smooth[0])
    finally:
        model.smoothing = 1
    np.testing.assert_array_equal(model.predict_many([("B2", "A1"), ("B0", "A0")]), raw)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "5"])
def test_bad_smoothing_is_refused(bad):
    with pytest.raises(AvocadoValueError, match="smoothing must be a whole number of bins >= 1"):
        Avocado.small(B, A, N, smoothing=bad)
