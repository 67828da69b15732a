"""Tests of UMAP / PCA projections, stratified genome samples and the projection cache."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import avocado_core.projection as projection
from avocado_core.errors import AvocadoValueError
from avocado_core.projection import (
    ProjectionCache,
    genome_features,
    model_fingerprint,
    model_projection,
    pca,
    project,
    stratified_sample,
)


class FakeModel:
    """Duck-typed stand-in for Avocado with planted biosample clusters."""

    def __init__(self, n_positions: int = 3000, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.biosamples = [f"b{i}" for i in range(30)]
        self.assays = [f"a{i}" for i in range(6)]
        self.n_positions = n_positions
        centers = rng.normal(size=(3, 32)) * 4
        self.group = np.repeat([0, 1, 2], 10)
        self._b = (centers[self.group] + rng.normal(size=(30, 32))).astype(np.float32)
        self._a = rng.normal(size=(6, 24)).astype(np.float32)
        self._g = {"25bp": rng.normal(size=(n_positions, 5)).astype(np.float32),
                   "250bp": rng.normal(size=(-(-n_positions // 10), 4)).astype(np.float32),
                   "5kbp": rng.normal(size=(-(-n_positions // 200), 3)).astype(np.float32)}
        self.config = {"n_positions": n_positions}

    def biosample_embedding(self):
        return self._b.copy()

    def assay_embedding(self):
        return self._a.copy()

    def genome_factors(self, resolution):
        return self._g[resolution].copy()


def clusters(n_per: int = 40, d: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, d)) * 5
    labels = np.repeat(np.arange(3), n_per)
    return centers[labels] + rng.normal(size=(3 * n_per, d)), labels


def nn_agreement(Y: np.ndarray, labels: np.ndarray) -> float:
    d = ((Y[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((labels[d.argmin(1)] == labels).mean())


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    X, _ = clusters()
    Y = pca(X, 3)
    ref = PCA(3).fit_transform(X)
    np.testing.assert_allclose(np.abs(Y), np.abs(ref), rtol=1e-4, atol=1e-4)
    assert Y.dtype == np.float32
    # the tall-matrix path (covariance eigendecomposition) agrees too
    tall = np.random.default_rng(1).normal(size=(500, 6)) @ np.diag([5, 4, 3, 2, 1, 0.5])
    np.testing.assert_allclose(np.abs(pca(tall, 2)), np.abs(PCA(2).fit_transform(tall)),
                               rtol=1e-4, atol=1e-4)
    # deterministic signs: negating the data flips nothing but the data
    np.testing.assert_allclose(pca(X, 2), pca(X.copy(), 2))


def test_pca_pads_missing_components():
    Y = pca(np.array([[0.0], [1.0], [3.0]]), 2)
    assert Y.shape == (3, 2) and (Y[:, 1] == 0).all()
    assert (pca(np.ones((1, 4)), 2) == 0).all()


def test_pca_variance_shares_are_known_for_orthogonal_spreads():
    """Points at ±3, ±2, ±1 along three axes hold sums of squares 18, 8 and 2: the first two
    components hold 18/28 and 8/28 of the variance, on both paths (SVD; the covariance's
    eigendecomposition of a tall matrix, here the same points repeated)."""
    X = np.concatenate([np.diag([3.0, 2.0, 1.0]), -np.diag([3.0, 2.0, 1.0])])
    for points in (X, np.tile(X, (10, 1))):
        scores, share = pca(points, 2, return_variance=True)
        np.testing.assert_allclose(share, [18 / 28, 8 / 28], rtol=1e-12)
        np.testing.assert_array_equal(scores, pca(points, 2))
    _, share = pca(X, 4, return_variance=True)  # a fourth component does not exist
    np.testing.assert_allclose(share, [18 / 28, 8 / 28, 2 / 28, 0.0], rtol=1e-12, atol=1e-15)
    _, flat = pca(np.ones((4, 3)), 2, return_variance=True)
    assert (flat == 0).all()


def test_umap_separates_planted_clusters_and_is_deterministic():
    X, labels = clusters()
    Y = project(X, "umap", seed=1)
    assert Y.shape == (120, 2) and Y.dtype == np.float32
    assert nn_agreement(Y, labels) > 0.95
    np.testing.assert_array_equal(Y, project(X, "umap", seed=1))


def test_tiny_inputs():
    X = np.random.default_rng(0).normal(size=(5, 32))
    with pytest.warns(UserWarning, match="PCA instead"):
        Y = project(X, "umap")
    np.testing.assert_allclose(Y, pca(X, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert project(X[:1], "umap").tolist() == [[0.0, 0.0]]
    # just above the threshold UMAP runs with n_neighbors = n - 1
    Y = project(np.random.default_rng(0).normal(size=(9, 4)), "umap")
    assert Y.shape == (9, 2) and np.isfinite(Y).all()


def test_project_errors():
    with pytest.raises(AvocadoValueError, match="tsne"):
        project(np.zeros((4, 2)), "tsne")
    with pytest.raises(AvocadoValueError, match="2-D"):
        project(np.zeros(4), "pca")
    with pytest.raises(AvocadoValueError, match="NaN"):
        project(np.array([[np.nan, 1.0], [0, 0]]), "pca")
    with pytest.raises(AvocadoValueError, match="n_components"):
        project(np.zeros((4, 2)), "pca", n_components=0)


def test_stratified_sample_represents_rare_classes():
    rng = np.random.default_rng(0)
    strata = rng.choice(["other", "gene body", "promoter", "CpG island"], size=100_000,
                        p=[0.80, 0.16, 0.035, 0.005])
    idx = stratified_sample(strata, 10_000, seed=0)
    assert len(idx) == 10_000 and np.all(np.diff(idx) > 0)
    got = pd.Series(strata[idx]).value_counts()
    sizes = pd.Series(strata).value_counts()
    share = 10_000 // 2 // 4
    # rare classes get their equal share (or everything when smaller than it) ...
    assert got["CpG island"] == min(sizes["CpG island"], share)
    assert got["promoter"] >= min(sizes["promoter"], share)
    # ... far above their proportional size, and the rest stays proportional-ish
    assert got["promoter"] / 10_000 > 3 * sizes["promoter"] / 100_000
    assert got["other"] > got["gene body"] > got["promoter"]
    np.testing.assert_array_equal(idx, stratified_sample(strata, 10_000, seed=0))
    assert not np.array_equal(idx, stratified_sample(strata, 10_000, seed=1))
    assert len(stratified_sample(strata[:50], 100)) == 50
    prop = stratified_sample(strata, 10_000, equal_share=0.0)
    assert abs((strata[prop] == "other").mean() - 0.8) < 0.01


def test_model_projection_biosamples_and_assays():
    m = FakeModel()
    df = model_projection(m, "biosamples", "pca")
    assert list(df.columns) == ["name", "x", "y"] and list(df["name"]) == m.biosamples
    assert nn_agreement(df[["x", "y"]].to_numpy(), m.group) == 1.0
    _, share = pca(m.biosample_embedding(), 2, return_variance=True)
    assert df.attrs["explained_variance"] == pytest.approx(share, abs=1e-6)
    df = model_projection(m, "assays", "pca")
    assert list(df["name"]) == m.assays and df.attrs["axis"] == "assays"
    with pytest.raises(AvocadoValueError, match="cells"):
        model_projection(m, "cells")


def test_model_projection_genome_with_strata():
    m = FakeModel(n_positions=3000)
    strata = np.where(np.arange(3000) % 100 == 0, "promoter", "other")
    df = model_projection(m, "genome", "pca", n_points=500, strata=strata, seed=2)
    assert list(df.columns) == ["bin", "x", "y", "stratum", "n_bins"] or \
        list(df.columns) == ["bin", "n_bins", "x", "y", "stratum"]
    assert len(df) == 500 and df["bin"].is_unique and df["bin"].is_monotonic_increasing
    assert (df["stratum"] == "promoter").sum() == 30  # all 30 promoter bins (< equal share)
    assert (strata[df["bin"]] == df["stratum"]).all()
    assert df.attrs["n_total"] == 3000 and 0 < sum(df.attrs["explained_variance"]) <= 1
    # 250 bp rows: one point per row; a row's stratum is its most common bin label
    df = model_projection(m, "genome", "pca", resolution="250bp", n_points=100_000, strata=strata)
    assert len(df) == 300 and (df["bin"] % 10 == 0).all() and (df["n_bins"] == 10).all()
    assert set(df["stratum"]) == {"other"}
    df = model_projection(m, "genome", "pca", resolution="5kbp")
    assert len(df) == 15 and (df["stratum"] == "all").all()
    assert df["n_bins"].iloc[-1] == 3000 - 14 * 200
    with pytest.raises(AvocadoValueError, match="strata has 7 labels"):
        model_projection(m, "genome", "pca", strata=np.zeros(7))
    with pytest.raises(AvocadoValueError, match="1kbp"):
        model_projection(m, "genome", "pca", resolution="1kbp")


def test_genome_features_match_the_real_model_embedding():
    from avocado_core.model import Avocado

    model = Avocado.small(["b1", "b2", "b3"], ["a1", "a2"], 2345, seed=0, device="cpu")
    rows = np.array([0, 9, 10, 199, 200, 2344])
    np.testing.assert_allclose(genome_features(model, rows), model.genome_embedding()[rows],
                               rtol=1e-6)
    np.testing.assert_allclose(genome_features(model, None, "250bp"), model.genome_factors("250bp"))
    df = model_projection(model, "genome", "pca", n_points=1000)
    assert len(df) == 1000 and df["bin"].max() < 2345
    df = model_projection(model, "biosamples", "umap")  # 3 biosamples: PCA fallback, warned
    assert len(df) == 3


def test_projection_cache(tmp_path, monkeypatch):
    m = FakeModel()
    cache = ProjectionCache(tmp_path / "proj")
    calls = []
    real = projection.model_projection

    def counting(*args, **kw):
        calls.append(kw.get("axis"))
        return real(*args, **kw)

    monkeypatch.setattr(projection, "model_projection", counting)
    a = cache.get_or_compute(m, "biosamples", "pca")
    b = cache.get_or_compute(m, "biosamples", "pca")
    assert len(calls) == 1
    pd.testing.assert_frame_equal(a, b)
    assert b.attrs["method"] == "pca" and "seconds" in b.attrs
    strata = np.where(np.arange(3000) < 100, "promoter", "other")
    g1 = cache.get_or_compute(m, "genome", "pca", n_points=400, strata=strata)
    g2 = cache.get_or_compute(m, "genome", "pca", n_points=400, strata=strata)
    assert len(calls) == 2
    pd.testing.assert_frame_equal(g1, g2)
    assert g2["stratum"].dtype == g1["stratum"].dtype
    assert set(g2["stratum"]) == {"promoter", "other"}
    # other parameters, other strata or another model -> new files
    cache.get_or_compute(m, "genome", "pca", n_points=400, strata=strata, seed=1)
    cache.get_or_compute(m, "genome", "pca", n_points=400, strata=strata[::-1].copy())
    other = FakeModel(seed=5)
    assert model_fingerprint(other) != model_fingerprint(m)
    cache.get_or_compute(other, "biosamples", "pca")
    assert len(calls) == 5
    # a fresh cache object on the same directory finds the files
    again = ProjectionCache(tmp_path / "proj")
    again.get_or_compute(m, "biosamples", "pca")
    assert len(calls) == 5
    assert again.get(model_fingerprint(m), "biosamples", "pca") is not None
    assert again.get(model_fingerprint(m), "assays", "pca") is None
    files = [p for p in (tmp_path / "proj").rglob("*") if p.is_file()]
    assert len(files) == 5 and not any(p.name.startswith(".tmp") for p in files)
    # an explicit fingerprint is used as the key
    cache.get_or_compute(m, "assays", "pca", fingerprint="abc123")
    assert (tmp_path / "proj" / "abc123").is_dir()


def test_fingerprint_tracks_weights():
    m = FakeModel()
    fp = model_fingerprint(m)
    assert fp == model_fingerprint(FakeModel()) and len(fp) == 16
    m._g["5kbp"][0, 0] += 1.0
    assert model_fingerprint(m) != fp
