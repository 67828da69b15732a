"""Tests of facility-location selection: brute force on small cases, planted structure at scale."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import avocado_core.selection as selection
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet
from avocado_core.selection import (
    facility_location,
    select_biosamples,
    select_positions,
    similarity,
    write_bed,
)
from avocado_core.synthetic import synthetic_compendium


def objective(S: np.ndarray, picked) -> float:
    """f(S) = sum over ground rows of the best similarity to any picked column."""
    picked = list(picked)
    return float(S[:, picked].max(axis=1).sum()) if picked else 0.0


def brute_force_greedy(S: np.ndarray, k: int, chosen=(), candidates=None):
    """Textbook greedy: at each step evaluate f(A + c) - f(A) for every candidate."""
    chosen = list(chosen)
    pool = range(S.shape[1]) if candidates is None else candidates
    cands = [c for c in pool if c not in chosen]
    picks, gains = [], []
    for _ in range(k):
        base = objective(S, chosen + picks)
        best, best_gain = None, -np.inf
        for c in cands:
            if c in picks:
                continue
            g = objective(S, chosen + picks + [c]) - base
            if g > best_gain + 1e-12:
                best, best_gain = c, g
        picks.append(best)
        gains.append(best_gain)
    return picks, gains


@pytest.mark.parametrize("metric", ["rbf", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_brute_force_greedy_step_by_step(metric, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(14, 3))
    S = similarity(X, metric=metric)
    res = facility_location(X, 6, metric=metric)
    picks, gains = brute_force_greedy(S, 6)
    assert list(res.indices) == picks
    np.testing.assert_allclose(res.gains, gains, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.objective, [objective(S, picks[: i + 1]) for i in range(6)],
                               rtol=1e-9)
    assert res.initial_objective == 0.0


@pytest.mark.parametrize("seed", [3, 4])
def test_greedy_with_chosen_and_candidates_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(16, 4))
    S = similarity(X)
    chosen, candidates = [1, 7], [0, 2, 3, 5, 7, 9, 11, 12, 15]
    res = facility_location(X, 5, chosen=chosen, candidates=candidates)
    picks, gains = brute_force_greedy(S, 5, chosen=chosen, candidates=candidates)
    assert list(res.indices) == picks
    assert not set(res.indices) & set(chosen) and set(res.indices) <= set(candidates)
    np.testing.assert_allclose(res.gains, gains, rtol=1e-9, atol=1e-12)
    assert res.initial_objective == pytest.approx(objective(S, chosen))
    np.testing.assert_allclose(res.objective, res.initial_objective + np.cumsum(res.gains),
                               rtol=1e-9)
    assert res.max_objective == pytest.approx(objective(S, sorted(set(chosen) | set(candidates))))
    assert res.coverage[-1] <= 1.0 + 1e-12


@pytest.mark.parametrize("metric", ["rbf", "sqeuclidean", "cosine"])
def test_gains_are_non_increasing(metric):
    X = np.random.default_rng(5).normal(size=(200, 6))
    res = facility_location(X, 60, metric=metric)
    assert (np.diff(res.gains) <= 1e-9).all()
    assert (np.diff(res.objective) >= -1e-9).all()
    assert len(set(res.indices)) == 60


@pytest.mark.parametrize("seed", range(6))
def test_one_minus_one_over_e_bound_against_optimum(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(11, 2)) * rng.uniform(0.5, 3.0)
    chosen = [0] if seed % 2 else []
    S = similarity(X)
    k = 3
    res = facility_location(X, k, chosen=chosen)
    base = objective(S, chosen)
    cands = [c for c in range(11) if c not in chosen]
    best = max(objective(S, chosen + list(T)) - base for T in itertools.combinations(cands, k))
    got = res.objective[-1] - base
    assert got >= (1 - 1 / np.e) * best - 1e-12
    assert got <= best + 1e-12


def test_blockwise_evaluation_gives_the_same_picks(monkeypatch):
    X = np.random.default_rng(6).normal(size=(300, 5))
    full = facility_location(X, 25, chosen=[3, 4, 200])
    monkeypatch.setattr(selection, "BLOCK_ENTRIES", 1000)  # ~3 columns per block
    blocked = facility_location(X, 25, chosen=[3, 4, 200])
    np.testing.assert_array_equal(full.indices, blocked.indices)
    np.testing.assert_allclose(full.gains, blocked.gains, rtol=1e-10)


def test_duplicates_and_ties_pick_lowest_index_first():
    X = np.array([[0.0, 0], [0, 0], [5, 5], [5, 5]])
    res = facility_location(X, 2)
    assert list(res.indices) == [0, 2]  # 0 and 1 tie, then 2 and 3 tie
    assert res.coverage[-1] == pytest.approx(1.0)
    assert facility_location(X, 3).gains[-1] == 0.0  # nothing left to cover


def test_facility_location_errors():
    X = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(AvocadoValueError, match="exceeds the number of candidates"):
        facility_location(X, 4, chosen=[0, 1])
    with pytest.raises(AvocadoValueError, match="out of range"):
        facility_location(X, 1, chosen=[9])
    with pytest.raises(AvocadoValueError, match="metric"):
        facility_location(X, 1, metric="manhattan")
    with pytest.raises(AvocadoValueError, match="NaN"):
        facility_location(np.array([[np.nan, 0.0], [1, 1]]), 1)
    with pytest.raises(AvocadoValueError, match="positive integer"):
        facility_location(X, 0)
    with pytest.raises(AvocadoValueError, match="2-D"):
        facility_location(np.zeros(4), 1)


# --------------------------------------------------------------------------------------------
# planted structure: hundreds of biosamples


@pytest.fixture(scope="module")
def comp():
    return synthetic_compendium(n_biosamples=400, n_assays=12, n_positions=500, n_groups=8, seed=11)


def _embedding(comp) -> pd.DataFrame:
    return pd.DataFrame(comp.truth["biosample"], index=comp.biosamples["name"])


def test_picks_cover_every_planted_group_before_repeating_one(comp):
    group = comp.biosamples["group"].to_numpy()
    res = facility_location(comp.truth["biosample"], 16)
    first = group[res.indices[:8]]
    assert len(set(first)) == 8
    # and the second round again spreads over groups
    assert len(set(group[res.indices[8:16]])) >= 5


def test_select_biosamples_profiled_count_as_chosen(comp):
    emb = _embedding(comp)
    meta = comp.biosamples.set_index("name")
    # An assay profiled in every biosample of groups 0-4 and nowhere else.
    group = comp.biosamples["group"].to_numpy()
    names = comp.biosamples["name"].to_numpy()
    profiled = set(names[group < 5])
    observed = [(b, "NEW") for b in profiled] + comp.observed
    df = select_biosamples(emb, observed, "NEW", 6)
    assert list(df.columns) == ["rank", "biosample", "gain", "objective", "coverage"]
    assert list(df["rank"]) == [1, 2, 3, 4, 5, 6]
    assert not set(df["biosample"]) & profiled
    picked_groups = meta.loc[df["biosample"], "group"].to_numpy()
    # the three groups nobody profiled come first
    assert set(picked_groups[:3]) == {5, 6, 7}
    assert (np.diff(df["gain"]) <= 1e-9).all()
    assert df.attrs["initial_objective"] > 0 and set(df.attrs["profiled"]) == profiled
    assert df["coverage"].iloc[-1] <= 1.0


def test_select_biosamples_candidates_and_query(comp):
    emb = _embedding(comp)
    meta = comp.biosamples.set_index("name")
    assay = comp.assays["name"].iloc[-1]
    observed = comp.observed
    profiled = {b for b, a in observed if a == assay}
    anatomy = meta["anatomy"].iloc[0]
    df = select_biosamples(emb, observed, assay, 3, query=f"anatomy == '{anatomy}'", metadata=meta)
    assert (meta.loc[df["biosample"], "anatomy"] == anatomy).all()
    assert not set(df["biosample"]) & profiled
    allowed = [b for b in meta.index[:40] if b not in profiled][:10] + sorted(profiled)[:2]
    df = select_biosamples(emb, observed, assay, 4, candidates=allowed)
    assert set(df["biosample"]) <= set(allowed) - profiled
    assert df.attrs["n_candidates"] == len(set(allowed) - profiled)


def test_select_biosamples_from_store_and_model(comp, tmp_path):
    from avocado_core.model import Avocado

    small = synthetic_compendium(n_biosamples=30, n_assays=4, n_positions=300, n_groups=3, seed=2)
    store = small.write_store(tmp_path / "store", progress=False)
    model = Avocado.small(list(small.biosamples["name"]), list(small.assays["name"]), 300, seed=0,
                          device="cpu")
    assay = "H3K36me3"
    profiled = {b for b, a in store.experiments() if a == assay}
    in_group = set(store.biosamples.index[store.biosamples["group"] == 1]) - profiled
    df = select_biosamples(model, store, assay, 2, query="group == 1")
    assert len(df) == 2 and not set(df["biosample"]) & profiled
    assert df.attrs["n_candidates"] == len(in_group)
    assert (store.biosamples.loc[df["biosample"], "group"] == 1).all()
    with pytest.raises(AvocadoKeyError, match="H3K36me3"):
        select_biosamples(model, store, "H3K36me", 2)
    with pytest.raises(AvocadoKeyError, match="nope"):
        select_biosamples(model, store, assay, 2, candidates=["nope"])
    with pytest.raises(AvocadoValueError, match="exceeds"):
        select_biosamples(model, store, assay, 31)
    with pytest.raises(AvocadoValueError, match="query"):
        select_biosamples(model, store, assay, 2, query="no_such_column > 1")


# --------------------------------------------------------------------------------------------
# positions


def test_select_positions_covers_planted_states():
    c = synthetic_compendium(n_biosamples=4, n_assays=2, n_positions=200_000, n_groups=2, seed=4)
    state = c.truth["state"].astype(int)
    rng = np.random.default_rng(0)
    # features: the state (one-hot, scaled) plus small noise; 7 states of very different sizes
    F = np.eye(7)[state] * 3 + 0.1 * rng.normal(size=(len(state), 7))
    df = select_positions(F.astype(np.float32), 10, ground_size=5000, pool_size=2000)
    assert df.attrs["ground_size"] == 5000 and df.attrs["pool_size"] == 2000
    assert set(state[df["bin"].to_numpy()[:7]]) == set(range(7))
    assert df["bin"].is_unique and (np.diff(df["gain"]) <= 1e-9).all()


def test_select_positions_regions_and_bed(tmp_path):
    rng = np.random.default_rng(1)
    regions = RegionSet.from_chrom_sizes({"chr1": 1000 * 25, "chr2": 600 * 25})
    F = rng.normal(size=(1600, 5))
    df = select_positions(F, 8, regions=regions, ground_size=400, pool_size=300, seed=3)
    chrom, start = regions.bin_coordinates(df["bin"].to_numpy())
    assert list(df["chrom"]) == list(chrom) and list(df["start"]) == list(start)
    assert (df["end"] - df["start"] == 25).all()
    mask = np.zeros(1600, dtype=bool)
    mask[1000:] = True
    df2 = select_positions(F, 5, regions=regions, candidates=mask)
    assert (df2["bin"] >= 1000).all() and (df2["chrom"] == "chr2").all()
    write_bed(df, tmp_path / "picks.bed")
    bed = pd.read_csv(tmp_path / "picks.bed", sep="\t", header=None)
    assert bed.shape == (8, 5)
    assert set(bed[0]) <= {"chr1", "chr2"} and (bed[2] - bed[1] == 25).all()
    assert sorted(bed[3]) == list(range(1, 9))
    with pytest.raises(AvocadoValueError, match="regions"):
        write_bed(select_positions(F, 2), tmp_path / "x.bed")


def test_select_positions_from_model_coarse_resolution():
    from avocado_core.model import Avocado

    n = 5000
    regions = RegionSet.from_chrom_sizes({"chr1": 2000 * 25, "chr2": 3000 * 25})
    model = Avocado.small(["b1", "b2"], ["a1"], n, seed=0, device="cpu")
    df = select_positions(model, 6, regions=regions, resolution="250bp", ground_size=300,
                          pool_size=200)
    assert (df["bin"] % 10 == 0).all() and (df["n_bins"] == 10).all()
    assert (df["end"] - df["start"] == 250).all()
    df = select_positions(model, 3, regions=regions, resolution="5kbp")
    assert (df["bin"] % 200 == 0).all()
    assert (df["end"] - df["start"] <= 5000).all()
    df = select_positions(model, 4, resolution="all", ground_size=1000, pool_size=100)
    assert df.attrs["n_positions"] == n and df["bin"].max() < n
