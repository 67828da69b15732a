"""Placing a new biosample: its row fitted from one track with the model frozen."""

from __future__ import annotations

import numpy as np
import pytest

from avocado_core import Avocado
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.placement import place_biosample
from avocado_core.projection import map_placement, pca, place_on_map

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
    assert len(nearest.attrs["embedding"]) == before.shape[1]  # its fitted row
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


# ---------------------------------------------------------------------- on the map
def _known(n=10, d=6, seed=1):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_on_a_pca_map_a_known_vector_lands_on_its_point():
    known = _known()
    points = pca(known)
    placed = place_on_map(known[[3, 7]], known, points, method="pca")
    np.testing.assert_allclose(placed, points[[3, 7]], rtol=1e-6, atol=1e-6)
    # the map's linear map: the centre of the known vectors lands at the origin
    np.testing.assert_allclose(place_on_map(known.mean(axis=0), known, points), [0, 0],
                               atol=1e-6)
    assert map_placement("pca", 10) == "pca" and map_placement("umap", 10) == "nearest"
    assert map_placement("umap", 5) == "pca"  # a UMAP of so few points was made by PCA


def test_on_a_umap_map_a_vector_lands_among_its_nearest():
    known = _known()
    points = np.random.default_rng(2).uniform(-5, 5, size=(10, 2)).astype(np.float32)
    vectors = np.stack([known[4], (known[1] + known[2]) / 2])
    placed = place_on_map(vectors, known, points, method="umap", k=2)
    np.testing.assert_array_equal(placed[0], points[4])  # on the known one
    np.testing.assert_allclose(placed[1], (points[1] + points[2]) / 2, rtol=1e-6)  # between
    # with more neighbours, nearer ones weigh more: a vector beside row 4 lands nearest its point
    near = place_on_map(known[4] + 0.01, known, points, method="umap", k=5)
    assert np.linalg.norm(points - near, axis=1).argmin() == 4
    with pytest.raises(AvocadoValueError, match="one point per known vector"):
        place_on_map(known[0], known, points[:5], method="umap")
