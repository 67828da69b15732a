"""Ensembles of Avocado models, on the first 3,000 bins of 9 real Roadmap pilot tracks."""

from __future__ import annotations

import numpy as np
import pytest

from avocado_core import evaluation
from avocado_core.ensemble import AvocadoEnsemble, load_model, member_paths, member_seed
from avocado_core.errors import AvocadoValueError
from avocado_core.model import Avocado

N = 3000
BIOSAMPLES = ["E003", "E017", "E116"]
ASSAYS = ["H3K4me3", "H3K27me3", "H3K36me3"]
TINY = dict(n_nodes=16, n_biosample_factors=4, n_assay_factors=4, n_25bp_factors=3,
            n_250bp_factors=3, n_5kbp_factors=3, batch_size=500)


@pytest.fixture(scope="module")
def tracks(pilot_dir) -> dict[tuple[str, str], np.ndarray]:
    return {(b, a): np.load(pilot_dir / f"{b}.{a}.pilot.arcsinh.npz")["arr_0"][:N]
            for b in BIOSAMPLES for a in ASSAYS}


def _model(seed: int, biosamples=BIOSAMPLES) -> Avocado:
    return Avocado.small(biosamples, ASSAYS, N, seed=seed, device="cpu", **TINY)


@pytest.fixture(scope="module")
def ensemble(tracks) -> AvocadoEnsemble:
    train = {k: v for k, v in tracks.items() if k != ("E116", "H3K27me3")}
    return AvocadoEnsemble.fit(_model, train, 3, seed=7, n_epochs=2, progress=False,
                               choose_settings=False)


def test_member_seeds_start_at_the_given_seed():
    assert [member_seed(7, k) for k in range(3)] == [7, 107, 207]


def test_prediction_is_the_mean_of_the_members(ensemble):
    assert len(ensemble) == 3 and [m.seed for m in ensemble.models] == [7, 107, 207]
    experiments = [("E116", "H3K27me3"), ("E003", "H3K4me3")]
    members = np.stack([m.predict_many(experiments, 100, 900) for m in ensemble.models])
    got = ensemble.predict_many(experiments, 100, 900)
    assert got.dtype == np.float32 and got.shape == (2, 800)
    np.testing.assert_allclose(got, members.astype(np.float64).mean(0), rtol=1e-5, atol=1e-6)
    # the members really differ: the mean is not any one of them
    assert np.abs(members[0] - members[1]).max() > 1e-3
    # (one experiment per call gives other matrix shapes: equal up to float32 rounding)
    np.testing.assert_allclose(ensemble.predict("E116", "H3K27me3", 100, 900), got[0],
                               rtol=1e-5, atol=1e-6)
    assert ensemble.biosamples == BIOSAMPLES and ensemble.n_positions == N


def test_one_member_is_the_plain_model(tracks):
    alone = AvocadoEnsemble.fit(_model, tracks, 1, seed=3, n_epochs=1, progress=False,
                                choose_settings=False)
    plain = _model(3)
    plain.fit(tracks, n_epochs=1, seed=3, progress=False, choose_settings=False)
    np.testing.assert_array_equal(alone.predict("E017", "H3K36me3"),
                                  plain.predict("E017", "H3K36me3"))


def test_save_and_load(ensemble, tmp_path):
    """One folder: member 0 is an ordinary model, the others under members/; load_model gives
    the ensemble, Avocado.load member 0; a list of folders loads their members in order."""
    ensemble.save(tmp_path / "m")
    assert member_paths(tmp_path / "m") == [tmp_path / "m", tmp_path / "m" / "members" / "1",
                                            tmp_path / "m" / "members" / "2"]
    for again in (AvocadoEnsemble.load(tmp_path / "m", device="cpu"),
                  load_model(tmp_path / "m", device="cpu")):
        assert isinstance(again, AvocadoEnsemble) and len(again) == 3
        np.testing.assert_array_equal(again.predict("E116", "H3K27me3"),
                                      ensemble.predict("E116", "H3K27me3"))
    first = Avocado.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(first.predict("E116", "H3K27me3"),
                                  ensemble.models[0].predict("E116", "H3K27me3"))
    # a smaller ensemble saved over it replaces the whole folder: no stale member is left
    AvocadoEnsemble(ensemble.models[:2]).save(tmp_path / "m")
    assert len(load_model(tmp_path / "m", device="cpu")) == 2
    ensemble.models[0].save(tmp_path / "one")
    assert isinstance(load_model(tmp_path / "one", device="cpu"), Avocado)
    both = AvocadoEnsemble.load([tmp_path / "one", tmp_path / "m"], device="cpu")
    assert len(both) == 3


def test_errors(ensemble):
    with pytest.raises(AvocadoValueError, match="at least one model"):
        AvocadoEnsemble([])
    other = _model(0, biosamples=["E003", "E017", "E065"])
    with pytest.raises(AvocadoValueError, match=r"model 1 .*biosamples \['E003', 'E017', 'E065'\]"
                                                r".*expected those of model 0"):
        AvocadoEnsemble([ensemble.models[0], other])
    for bad in (0, 1.5, True):
        with pytest.raises(AvocadoValueError, match="n_models must be an integer >= 1"):
            AvocadoEnsemble.fit(_model, {}, bad)


def test_cross_validate_scores_the_members_mean(tracks):
    """Fold i's model is the mean of models seeded seed + i + 100 k, trained on the fold."""
    config = dict(TINY, preset="small")
    res = evaluation.cross_validate(tracks, n_folds=3, config=config, n_epochs=1, seed=5,
                                    n_models=2, baselines=(), progress=False, device="cpu",
                                    fit_kwargs={"choose_settings": False})
    folds = evaluation.make_folds(tracks.keys(), 3, seed=5)
    held = folds[1][0]
    train = {k: v for k, v in tracks.items() if k not in set(folds[1])}
    members = []
    for s in (5 + 1, 5 + 1 + 100):
        m = Avocado.small(sorted(BIOSAMPLES), sorted(ASSAYS), N, seed=s, device="cpu", **TINY)
        m.fit(train, n_epochs=1, seed=s, progress=False, choose_settings=False)
        members.append(m.predict(*held).astype(np.float64))
    want = np.mean((tracks[held] - np.mean(members, 0)) ** 2)
    row = res[(res["biosample"] == held[0]) & (res["assay"] == held[1])]
    assert row["mse"].item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(AvocadoValueError, match="n_models must be an integer >= 1, got 0"):
        evaluation.cross_validate(tracks, n_folds=3, config=config, n_models=0, progress=False,
                                  device="cpu")


def test_spread_is_the_members_standard_deviation_and_training_is_recorded(ensemble, tmp_path):
    experiments = [("E116", "H3K27me3"), ("E003", "H3K4me3")]
    members = np.stack([m.predict_many(experiments, 0, 500) for m in ensemble.models])
    mean, spread = ensemble.predict_spread(experiments, 0, 500)
    np.testing.assert_allclose(mean, ensemble.predict_many(experiments, 0, 500), rtol=1e-6)
    np.testing.assert_allclose(spread, members.astype(np.float64).std(0), rtol=1e-4, atol=1e-6)
    # what the members trained on is recorded and saved with them
    assert ("E116", "H3K27me3") not in ensemble.trained_on and len(ensemble.trained_on) == 8
    ensemble.models[0].save(tmp_path / "m")
    assert Avocado.load(tmp_path / "m", device="cpu").trained_on == ensemble.models[0].trained_on
