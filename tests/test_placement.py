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


# ---------------------------------------------------------------------- imputing a placed one
def _row(model, name):
    return np.asarray(model.biosample_embedding())[list(model.biosamples).index(name)]


@pytest.mark.parametrize("kernel", [True, False])
def test_a_known_row_predicts_that_biosamples_imputation(model_and_tracks, monkeypatch, kernel):
    """Known answer: a new biosample whose row is B2's, with B2's settings, is imputed as B2
    is, by the compiled kernel and by torch alike (the same products; BLAS may sum them in
    another order for another number of rows: float32 rounding of sums of a few dozen terms)."""
    from avocado_core import prediction

    model, _ = model_and_tracks
    monkeypatch.setattr(prediction, "kernel_fits", lambda network: kernel)
    settings = {"activity_blend": 0.5, "smoothing": 5}
    model.biosample_settings = {"B2": settings}
    try:
        assays = list(model.assays)
        new = model.predict_embedding(_row(model, "B2"), assays, 100, 1500, settings=settings)
        known = model.predict_many([("B2", a) for a in assays], 100, 1500)
        assert new.shape == (len(assays), 1400) and new.dtype == np.float32
        scale = float(np.abs(known).max())
        np.testing.assert_allclose(new, known, rtol=0, atol=1e-5 * scale)
        # without B2's settings: the model's own (blend 0, no smoothing), not B2's
        plain = model.predict_embedding(_row(model, "B2"), assays[:1], 100, 1500)
        assert np.abs(plain - known[:1]).max() > 1e-3 * scale
    finally:
        model.biosample_settings = None


def test_a_fitted_row_predicts_what_the_fitted_model_does(model_and_tracks):
    """The row place_biosample returns imputes the new biosample as the model that learnt it
    (fit_biosamples on a copy) does, over any range of positions."""
    import copy

    model, tracks = model_and_tracks
    fitted = copy.deepcopy(model)
    fitted.fit_biosamples({("new", "A1"): tracks["B4", "A1"]}, n_epochs=2, progress=False)
    row = _row(fitted, "new")
    expected = fitted.predict_many([("new", "A0"), ("new", "A2")])
    got = model.predict_embedding(row, ["A0", "A2"])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * float(np.abs(expected).max()))
    part = model.predict_embedding(row, ["A0"], 700, 900)[0]
    np.testing.assert_array_equal(part, got[0, 700:900])
    assert "new" not in model.biosamples


@pytest.mark.parametrize("change, message", [
    (lambda row: dict(embedding=row[:2]), r"shape \(2,\); the model's biosample rows are"),
    (lambda row: dict(embedding=np.where(np.arange(row.size) == 3, np.nan, row)),
     "non-finite values"),
    (lambda row: dict(assays=[]), "at least one assay"),
    (lambda row: dict(assays=["H3K9"]), "unknown assay 'H3K9'"),
    (lambda row: dict(end=N + 1), "not within"),
    (lambda row: dict(settings={"smoothing": 0}), "smoothing must be"),
])
def test_predict_embedding_refuses_bad_input(model_and_tracks, change, message):
    model, _ = model_and_tracks
    row = _row(model, "B0")
    with pytest.raises((AvocadoValueError, AvocadoKeyError), match=message):
        model.predict_embedding(**{"embedding": row, "assays": ["A0"], **change(row)})
