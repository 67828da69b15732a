"""Placing a new biosample: its row fitted from one track with the model frozen."""

from __future__ import annotations

import numpy as np
import pytest

from avocado_core import Avocado
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.placement import place_biosample

N = 2000


@pytest.fixture(scope="module")
def model_and_tracks():
    """6 biosamples in 3 planted pairs (B0/B1, B2/B3, B4/B5 share a pattern) x 3 assays."""
    rng = np.random.default_rng(3)
    patterns = np.cumsum(rng.normal(size=(3, N)), axis=1) / 8
    tracks = {(f"B{i}", f"A{j}"): (np.log1p(np.exp((1 + j) * patterns[i // 2] + j))
                                   + 0.05 * rng.normal(size=N)).astype(np.float32)
              for i in range(6) for j in range(3)}
    model = Avocado.from_preset({"preset": "small", "n_nodes": 16, "batch_size": 500},
                                tracks, N, seed=0, device="cpu")
    model.fit(tracks, n_epochs=30, progress=False, choose_settings=False)
    return model, tracks


def test_a_track_of_a_known_biosample_lands_beside_it(model_and_tracks):
    model, tracks = model_and_tracks
    before = model.biosample_embedding()
    nearest = place_biosample(model, tracks["B2", "A1"], "new", "A1", n_epochs=10)
    assert set(nearest["biosample"].head(2)) == {"B2", "B3"}  # its pair
    assert list(nearest["distance"]) == sorted(nearest["distance"])
    assert nearest.attrs["spacing"] > 0 and nearest.attrs["loss"] is not None
    np.testing.assert_array_equal(model.biosample_embedding(), before)  # the model is as it was
    assert "new" not in model.biosamples
    # the same track measured on half the positions only: fitted on those, not on zeros
    covered = np.arange(N) < N // 2
    cut = np.where(covered, tracks["B2", "A1"], 0).astype(np.float32)
    half = place_biosample(model, cut, "new", "A1", covered=covered, n_epochs=10)
    assert set(half["biosample"].head(2)) == {"B2", "B3"}


@pytest.mark.parametrize("name, assay, error, message", [
    ("B0", "A0", AvocadoValueError, "a biosample named 'B0' already exists"),
    (" ", "A0", AvocadoValueError, "give the new biosample a name"),
    ("new", "H3K9", AvocadoKeyError, "unknown assay 'H3K9'"),
])
def test_bad_names_are_refused(model_and_tracks, name, assay, error, message):
    model, tracks = model_and_tracks
    with pytest.raises(error, match=message):
        place_biosample(model, tracks["B0", "A0"], name, assay)
