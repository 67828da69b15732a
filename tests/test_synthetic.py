"""Tests of the synthetic compendium generator: planted structure, sparsity, signal, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.synthetic import (
    ASSAY_FAMILIES,
    PlantedLayout,
    layout_compendium,
    synthetic_compendium,
)


@pytest.fixture(scope="module")
def comp():
    return synthetic_compendium(n_biosamples=300, n_assays=24, n_positions=4000, n_groups=8,
                                observed_fraction=0.3, seed=3)


def test_shapes_and_metadata(comp):
    assert len(comp.biosamples) == 300 and len(comp.assays) == 24
    assert list(comp.biosamples.columns[:3]) == ["name", "group", "anatomy"]
    assert comp.biosamples["name"].is_unique and comp.assays["name"].is_unique
    assert comp.biosamples["group"].nunique() == 8
    # one anatomy label per planted group
    assert (comp.biosamples.groupby("group")["anatomy"].nunique() == 1).all()
    assert comp.biosamples["anatomy"].nunique() == 8
    assert set(comp.assays["family"]) <= set(ASSAY_FAMILIES)
    assert comp.assays["name"].iloc[0] == "H3K4me3"
    assert comp.truth["biosample"].shape == (300, 8)
    assert comp.truth["state"].shape == (4000,)
    # groups are shuffled, not contiguous blocks
    assert (np.diff(comp.biosamples["group"].to_numpy()) != 0).sum() > 100


def test_sparsity(comp):
    mask = comp.observed_mask
    assert mask.shape == (300, 24)
    assert mask.mean() == pytest.approx(0.3, abs=0.002)
    assert mask.sum(axis=0).min() >= 1 and mask.sum(axis=1).min() >= 1
    # popular assays (first ones, the core marks) are observed far more than the last ones
    counts = mask.sum(axis=0)
    assert counts[:5].mean() > 3 * counts[-5:].mean()
    assert len(comp.observed) == mask.sum()
    assert len(comp.missing) == (~mask).sum()
    assert len(comp.tracks) == 300 * 24
    assert len(comp.observed_tracks) == mask.sum()
    b, a = comp.missing[0]
    assert (b, a) in comp.tracks and (b, a) not in comp.observed_tracks


def test_sparse_extremes_keep_every_row_and_column():
    c = synthetic_compendium(n_biosamples=50, n_assays=10, n_positions=100, n_groups=3,
                             observed_fraction=0.01, seed=1)
    assert c.observed_mask.sum(axis=0).min() >= 1 and c.observed_mask.sum(axis=1).min() >= 1
    # 1 % of 500 is 5, not enough to cover 50 biosamples: the guarantee wins
    assert c.observed_mask.sum() >= 50
    full = synthetic_compendium(n_biosamples=5, n_assays=4, n_positions=100, n_groups=2,
                                observed_fraction=1.0)
    assert full.observed_mask.all()


def test_signal_distribution_is_arcsinh_like(comp):
    values = np.concatenate([comp.tracks[k] for k in comp.observed[:60]])
    assert values.dtype == np.float32 and np.isfinite(values).all() and values.min() >= 0
    q50, q90, q99, top = np.quantile(values, [0.5, 0.9, 0.99, 1.0])
    assert 0.05 < q50 < 0.4  # mostly near 0
    assert q99 > 4 * q50  # heavy right tail
    assert 2.0 < top < 10.0  # peaks, on the arcsinh(-log10 p) scale of real tracks
    x = comp.track("S001", "H3K4me3").astype(np.float64)
    xc = x - x.mean()
    assert (xc[1:] * xc[:-1]).mean() / xc.var() > 0.7  # spatially smooth, like 25 bp data


def test_deterministic_under_seed():
    a = synthetic_compendium(n_biosamples=40, n_assays=6, n_positions=500, n_groups=4, seed=7)
    b = synthetic_compendium(n_biosamples=40, n_assays=6, n_positions=500, n_groups=4, seed=7)
    c = synthetic_compendium(n_biosamples=40, n_assays=6, n_positions=500, n_groups=4, seed=8)
    pd.testing.assert_frame_equal(a.biosamples, b.biosamples)
    np.testing.assert_array_equal(a.observed_mask, b.observed_mask)
    key = a.observed[3]
    np.testing.assert_array_equal(a.tracks[key], b.tracks[key])
    # independent of access order, and repeatable
    np.testing.assert_array_equal(a.track(*key), a.tracks[key])
    assert not np.array_equal(a.track("S001", "H3K4me3"), c.track("S001", "H3K4me3"))
    assert not np.array_equal(a.observed_mask, c.observed_mask)


def test_planted_groups_recoverable_from_truth(comp):
    labels = KMeans(8, n_init=10, random_state=0).fit_predict(comp.truth["biosample"])
    assert adjusted_rand_score(comp.biosamples["group"], labels) > 0.9


def test_planted_groups_visible_in_the_data(comp):
    # Nearest neighbour (by correlation of their enhancer-mark and accessibility tracks, which
    # follow the group-specific enhancer activity) is in the same planted group for most
    # biosamples.
    X = comp.tensor(assays=["H3K4me1", "H3K27ac", "DNase"]).astype(np.float64)
    X = (X - X.mean(2, keepdims=True)) / X.std(2, keepdims=True)
    X = X.reshape(len(X), -1)
    corr = X @ X.T / X.shape[1]
    np.fill_diagonal(corr, -np.inf)
    nn = corr.argmax(axis=1)
    group = comp.biosamples["group"].to_numpy()
    assert (group[nn] == group).mean() > 0.9


def test_assay_families_visible_in_the_data(comp):
    t = comp.tensor(biosamples=["S001", "S002", "S003"], assays=["H3K4me3", "H3K9ac", "H3K9me3",
                                                                  "H3K36me3", "H3K79me2"])
    for x in t:
        r = np.corrcoef(x)
        assert r[0, 1] > r[0, 2] + 0.3  # promoter marks together, not with heterochromatin
        assert r[3, 4] > r[3, 2] + 0.3  # transcription marks together


def test_position_classes():
    c = synthetic_compendium(n_biosamples=10, n_assays=3, n_positions=200_000, n_groups=2)
    cls = c.position_classes()
    assert cls.shape == (200_000,)
    assert set(cls) == {"promoter", "gene body", "other"}
    assert (cls == "promoter").mean() < 0.3 and (cls == "other").mean() > 0.3


def test_errors(comp):
    with pytest.raises(AvocadoKeyError, match="S999"):
        comp.track("S999", "H3K4me3")
    with pytest.raises(AvocadoKeyError, match="H3K99"):
        comp.track("S001", "H3K99")
    with pytest.raises(KeyError):
        comp.tracks[("S001", "nope")]
    with pytest.raises(AvocadoValueError, match="observed_fraction"):
        synthetic_compendium(observed_fraction=0.0)
    with pytest.raises(AvocadoValueError, match="n_groups"):
        synthetic_compendium(n_biosamples=3, n_groups=4)
    with pytest.raises(AvocadoValueError, match="n_positions"):
        synthetic_compendium(n_positions=0)


def test_many_assays_and_groups_get_names():
    c = synthetic_compendium(n_biosamples=40, n_assays=30, n_positions=50, n_groups=20, seed=0)
    assert c.assays["name"].is_unique and len(c.assays) == 30
    assert c.biosamples["anatomy"].nunique() == 20


def test_write_store(tmp_path):
    from avocado_core.regions import RegionSet
    from avocado_core.store import TrackStore

    c = synthetic_compendium(n_biosamples=12, n_assays=5, n_positions=2000, n_groups=3, seed=2)
    store = c.write_store(tmp_path / "store", progress=False)
    reopened = TrackStore(tmp_path / "store")
    assert sorted(reopened.experiments()) == sorted(c.observed)
    b, a = c.observed[0]
    np.testing.assert_array_equal(reopened.track(b, a), c.track(b, a))
    assert reopened.n_bins == 2000
    assert set(reopened.biosamples.index) == set(c.biosamples["name"])
    assert reopened.biosamples.loc[b, "anatomy"] == c.biosamples.set_index("name").loc[b, "anatomy"]
    assert set(reopened.assays["family"]) <= set(ASSAY_FAMILIES)
    assert store.regions.chroms == ["chr1"]
    with pytest.raises(AvocadoValueError, match="2000"):
        c.write_store(tmp_path / "other", regions=RegionSet.from_chrom_sizes({"chr1": 1000 * 25}),
                      progress=False)


def _layout(**changes) -> PlantedLayout:
    biosamples = pd.DataFrame({"kind": ["liver", "liver", "blood", "blood", "blood", "brain"],
                               "donor": ["a", "b", "c", "c", "d", "e"],
                               "summary": [f"biosample {i}" for i in range(6)]},
                              index=pd.Index([f"B{i}" for i in range(6)], name="name"))
    assays = pd.DataFrame({"family": ["promoter mark", "accessibility", "polycomb"],
                           "kind": ["active", "accessibility", "repressive"]},
                          index=pd.Index(["mark-1", "dnase", "mark-2"], name="name"))
    mask = np.zeros((6, 3), dtype=bool)
    mask[[0, 1, 2, 3, 4, 5, 0, 3], [0, 1, 2, 0, 1, 2, 2, 1]] = True
    fields = dict(biosamples=biosamples, assays=assays, observed_mask=mask, group="kind",
                  subgroup="donor", origin="test layout")
    return PlantedLayout(**{**fields, **changes})


def test_layout_compendium_has_exactly_the_layout(tmp_path):
    layout = _layout()
    c = layout_compendium(layout, n_positions=1000, seed=4)
    assert list(c.biosamples.columns) == ["name", "group", "kind", "donor", "summary"]
    assert list(c.biosamples["name"]) == [f"B{i}" for i in range(6)]
    assert list(c.biosamples["group"]) == [2, 2, 0, 0, 0, 1]  # codes of the sorted labels
    assert list(c.assays["name"]) == ["mark-1", "dnase", "mark-2"]
    assert list(c.assays["kind"]) == ["active", "accessibility", "repressive"]
    np.testing.assert_array_equal(c.observed_mask, layout.observed_mask)
    assert c.origin == "test layout" and "layout: test layout" in c.description
    # biosamples of one subgroup sit closer together than those of their group
    B = c.truth["biosample"]
    assert np.linalg.norm(B[2] - B[3]) < np.linalg.norm(B[2] - B[4])
    store = c.write_store(tmp_path / "store", progress=False)
    assert store.info["synthetic"] == {"description": c.description, "layout": "test layout",
                                       "seed": 4}
    assert store.biosamples.loc["B5", "summary"] == "biosample 5"
    np.testing.assert_array_equal(store.track("B0", "mark-1"), c.track("B0", "mark-1"))
    again = layout_compendium(layout, n_positions=1000, seed=4)
    np.testing.assert_array_equal(again.track("B3", "dnase"), c.track("B3", "dnase"))


def test_activity_is_the_same_whatever_the_order_of_access():
    c = synthetic_compendium(n_biosamples=6, n_assays=3, n_positions=500, n_groups=2, seed=5)
    fresh = synthetic_compendium(n_biosamples=6, n_assays=3, n_positions=500, n_groups=2, seed=5)
    for _ in range(2):  # computed, then from the cache: a caller's copy either way
        c.activity("S002")[:] = -1.0
    np.testing.assert_array_equal(c.activity("S002"), fresh.activity("S002"))
    np.testing.assert_array_equal(c.track("S002", "H3K4me3"), fresh.track("S002", "H3K4me3"))
    # interleaved biosamples (the cache holds one) give the same tracks as a fresh compendium
    for b, a in (("S001", "H3K27me3"), ("S002", "H3K36me3"), ("S001", "H3K4me3")):
        np.testing.assert_array_equal(c.track(b, a), fresh.track(b, a))


@pytest.mark.parametrize("changes, message", [
    (dict(observed_mask=np.ones((6, 2), dtype=bool)), r"shape \(6, 2\); expected \(6, 3\)"),
    (dict(group="tissue"), "no column 'tissue'"),
    (dict(assays=pd.DataFrame({"family": ["promoter mark", "bogus", "polycomb"]},
                              index=["a", "b", "c"])), r"unknown assay families \['bogus'\]"),
    (dict(assays=pd.DataFrame({"family": ["promoter mark"] * 3}, index=["a", "a", "c"])),
     "assay name 'a' appears twice"),
])
def test_layout_errors(changes, message):
    with pytest.raises(AvocadoValueError, match=message):
        layout_compendium(_layout(**changes), n_positions=10)
