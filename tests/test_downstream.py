"""Downstream comparison (a few folds on a subset) and feature export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avocado_core import downstream
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet


def test_load_task_reads_the_published_feature_sets(data_mirror):
    features, y = downstream.load_task("FIREs.E116")
    assert set(features) == {"Roadmap", "ChromImpute", "PREDICTD", "AvocadoImp", "AvocadoFac"}
    assert y.shape == (3000,) and y.dtype == bool and y.sum() == 233
    assert features["AvocadoFac"].shape == (3000, 142)
    features, y = downstream.load_task("RNAseq.E017")
    assert y.shape == (16724,) and 0.15 < y.mean() < 0.2
    with pytest.raises(AvocadoKeyError, match="RNAseq.E017"):
        downstream.load_task("RNAseq.E003")


def test_cross_validated_ap_separates_signal_from_noise():
    rng = np.random.default_rng(0)
    y = rng.random(600) < 0.2
    informative = np.c_[y + rng.normal(0, 0.1, 600), rng.normal(size=600)]
    noise = rng.normal(size=(600, 2))
    ap = downstream.cross_validated_ap(informative, y, n_folds=3)
    assert ap.shape == (3,) and ap.min() > 0.99
    ap_noise = downstream.cross_validated_ap(noise, y, n_folds=3)
    assert abs(ap_noise.mean() - y.mean()) < 0.1  # about the positive fraction
    with pytest.raises(AvocadoValueError, match="n_folds=1"):
        downstream.cross_validated_ap(noise, y, n_folds=1)


def test_compare_feature_sets_subset_table_and_plot(data_mirror, tmp_path):
    table = downstream.compare_feature_sets(
        tasks=["FIREs.E116"], n_folds=3, max_samples=900,
        feature_sets=["Roadmap", "AvocadoFac"], progress=False,
    )
    assert list(table["feature_set"]) == ["Roadmap", "AvocadoFac"]
    assert (table["n_samples"] == 900).all() and (table["n_folds"] == 3).all()
    # better than a random ranking (the positive fraction, about 0.08) on real features
    assert (table["mean_ap"] > 2 * table["baseline_ap"]).all()
    assert (table["sem_ap"] > 0).all()
    for r in table.itertuples():
        assert r.mean_ap == pytest.approx(np.mean(r.fold_ap))
        assert r.sem_ap == pytest.approx(np.std(r.fold_ap, ddof=1) / np.sqrt(3))
    md = downstream.downstream_markdown(table)
    assert "Avocado factors" in md and f"{table['mean_ap'][0]:.4f}" in md
    png = downstream.plot_downstream(table, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class LinearModel:
    """Contract stand-in: factors of bin i are (i, 2i); signal of (b, a) is 10 i + len(a)."""

    def genome_embedding(self, start=0, end=None):
        i = np.arange(start, end, dtype=np.float32)
        return np.c_[i, 2 * i]

    def predict(self, biosample, assay, start=0, end=None):
        return 10 * np.arange(start, end, dtype=np.float32) + len(assay)


@pytest.fixture()
def two_intervals() -> RegionSet:
    # bins 0..39 cover chr1:1000-2000, bins 40..79 cover chr2:0-1000
    return RegionSet(pd.DataFrame({"chrom": ["chr1", "chr2"], "start": [1000, 0],
                                   "end": [2000, 1000]}))


def test_export_features_mean_and_center_by_hand(two_intervals, tmp_path):
    bed = tmp_path / "genes.bed"
    bed.write_text(
        "chr1\t1000\t1100\tA\n"  # bins 0..3
        "chr2\t500\t510\tB\n"  # bin 60
        "chr1\t1950\t2100\tC\n"  # runs past the interval: not covered
        "chr3\t0\t100\tD\n"  # unknown chromosome
        "chr1\t1500\t1600\tE\n"  # bins 20..23
    )
    model = LinearModel()
    f = downstream.export_features(model, bed, two_intervals, experiments=[("X", "K4")],
                                   max_span=10, progress=False)
    assert list(f["name"]) == ["A", "B", "C", "D", "E"]
    assert list(f["first_bin"]) == [0, 60, -1, -1, 20]
    assert list(f["n_bins"]) == [4, 1, 0, 0, 4]
    np.testing.assert_allclose(f["factor_0"][[0, 1, 4]], [1.5, 60, 21.5])
    np.testing.assert_allclose(f["factor_1"][[0, 1, 4]], [3, 120, 43])
    np.testing.assert_allclose(f["X.K4"][[0, 1, 4]], [17, 602, 217])
    assert f.loc[[2, 3], ["factor_0", "X.K4"]].isna().all().all()
    # centre: A's centre 1049 is in bin 1, E's centre 1549 in bin 21
    c = downstream.export_features(model, bed, two_intervals, mode="center", factors=False,
                                   experiments=[("X", "K27")], progress=False)
    assert list(c.columns[-1:]) == ["X.K27"] and "factor_0" not in c
    np.testing.assert_allclose(c["X.K27"][[0, 1, 4]], [13, 603, 213])
    # one big window gives the same as many small ones
    g = downstream.export_features(model, bed, two_intervals, experiments=[("X", "K4")],
                                   progress=False)
    pd.testing.assert_frame_equal(f, g)
    with pytest.raises(AvocadoValueError, match="mode='middle'"):
        downstream.export_features(model, bed, two_intervals, mode="middle")
    with pytest.raises(AvocadoValueError, match="nothing to export"):
        downstream.export_features(model, bed, two_intervals, factors=False)


def test_export_features_with_a_trained_model(two_intervals):
    from avocado_core import Avocado

    rng = np.random.default_rng(0)
    tracks = {(b, a): rng.random(80).astype(np.float32)
              for b in ("B0", "B1") for a in ("K4", "K27")}
    model = Avocado.small(["B0", "B1"], ["K4", "K27"], 80, n_nodes=8, n_25bp_factors=2,
                          n_250bp_factors=2, n_5kbp_factors=2, batch_size=40, seed=0,
                          device="cpu")
    model.fit(tracks, n_epochs=1, progress=False, choose_settings=False)
    regions = pd.DataFrame({"chrom": ["chr2", "chr1"], "start": [100, 1005],
                            "end": [300, 1020], "name": ["g1", "g2"]})
    f = downstream.export_features(model, regions, two_intervals,
                                   experiments=[("B1", "K27")], progress=False)
    emb = model.genome_embedding()
    n_factors = emb.shape[1]
    assert n_factors == 2 + 2 + 2
    assert list(f.columns[6:]) == [f"factor_{i}" for i in range(n_factors)] + ["B1.K27"]
    # g1 = chr2:100-300 = bins 44..51; g2 = chr1:1005-1020 = bin 0
    np.testing.assert_allclose(f.iloc[0, 6:6 + n_factors].to_numpy(float),
                               emb[44:52].mean(0), rtol=1e-5)
    np.testing.assert_allclose(f.iloc[1, 6:6 + n_factors].to_numpy(float), emb[0], rtol=1e-5)
    assert f["B1.K27"][0] == pytest.approx(model.predict("B1", "K27", 44, 52).mean(), rel=1e-5)
