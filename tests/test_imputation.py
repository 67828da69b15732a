"""impute_experiments: predictions written into the store and to bigWig equal predict()."""

from __future__ import annotations

import numpy as np
import pyBigWig
import pytest
import torch

from avocado_core import Avocado, impute_experiments, synthetic_compendium
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.imputation import missing_experiments


@pytest.fixture(scope="module")
def store_and_model(tmp_path_factory):
    comp = synthetic_compendium(n_biosamples=6, n_assays=3, n_positions=4_000, n_groups=2,
                                observed_fraction=0.5, seed=3)
    store = comp.write_store(tmp_path_factory.mktemp("imp") / "store", progress=False)
    model = Avocado.small(list(store.biosamples.index), list(store.assays.index),
                          store.n_bins, n_nodes=16, batch_size=1_000, seed=0, device="cpu")
    model.fit(store, n_epochs=1, epoch_size=4, progress=False, choose_settings=False)
    return store, model


def test_missing_experiments_are_the_unobserved_cells(store_and_model):
    store, model = store_and_model
    missing = missing_experiments(model, store)
    observed = set(store.experiments())
    assert len(missing) + len(observed) == len(model.biosamples) * len(model.assays)
    assert not observed & set(missing)


def test_imputed_tracks_equal_predict_and_reruns_skip(store_and_model, tmp_path):
    store, model = store_and_model
    todo = missing_experiments(model, store)[:3]
    done = impute_experiments(model, store, todo, progress=False)
    assert done == todo
    for b, a in todo:
        np.testing.assert_allclose(store.fetch(b, a, kind="imputed"), model.predict(b, a),
                                   rtol=1e-5, atol=1e-6)
    assert impute_experiments(model, store, todo, progress=False) == []

    b, a = todo[0]
    out = impute_experiments(model, store, [(b, a)], into_store=False, bigwig_dir=tmp_path,
                             progress=False)
    assert out == [(b, a)]
    bw = pyBigWig.open(str(tmp_path / f"{b}.{a}.imputed.bw"))
    values = bw.values("chr1", 0, 25 * 40, numpy=True)[::25]
    bw.close()
    np.testing.assert_allclose(values, model.predict(b, a, 0, 40), rtol=1e-6)


def test_bad_requests_name_the_value(store_and_model):
    store, model = store_and_model
    with pytest.raises(AvocadoKeyError, match="nosuch"):
        impute_experiments(model, store, [("nosuch", model.assays[0])], progress=False)
    with pytest.raises(AvocadoValueError, match="nothing to write"):
        impute_experiments(model, store, into_store=False, progress=False)


def test_a_track_that_is_not_finite_is_never_written(store_and_model, tmp_path):
    # Weights near float32's largest are finite (a load accepts them) but their predictions
    # overflow; a bigWig leaves NaN / inf bins out, so such a track was an empty file with
    # exit 0. Refused before anything is written, naming the experiment.
    import copy

    store, model = store_and_model
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.network.output.bias.fill_(3.4e38)
        bad.network.output.weight.fill_(1e38)
    todo = [e for e in missing_experiments(model, store)
            if not store.has_track(*e, kind="imputed")][:2]
    b, a = todo[0]
    for into_store, folder in ((False, tmp_path / "bw"), (True, None)):
        with pytest.raises(AvocadoValueError, match=f"non-finite value.* for {b}/{a} "):
            impute_experiments(bad, store, todo, into_store=into_store, bigwig_dir=folder,
                               progress=False)
    assert list((tmp_path / "bw").iterdir()) == []
    assert not any(store.has_track(*e, kind="imputed") for e in todo)
