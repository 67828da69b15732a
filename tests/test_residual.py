"""Average activity as the model's residual baseline (``average_activity="residual"``)."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch

from avocado_core import Avocado
from avocado_core.baselines import average_activity
from avocado_core.errors import AvocadoValueError
from avocado_core.residual import AverageActivity, ResidualSource
from avocado_core.training import TrackSource

NB, NA, N = 6, 4, 2000
B_NAMES = [f"B{i}" for i in range(NB)]
A_NAMES = [f"A{j}" for j in range(NA)]
HELD = [("B0", "A0"), ("B3", "A2"), ("B5", "A3")]


@pytest.fixture(scope="module")
def tensor() -> np.ndarray:
    """Each assay's shared pattern, scaled per biosample, plus a biosample x position term.

    Average activity gets the assay's pattern but neither the biosample's scale nor its own
    term; a model that learns them from the biosample's other assays beats it.
    """
    rng = np.random.default_rng(0)
    pattern = np.repeat(rng.gamma(1.0, 1.0, size=(NA, N // 10)), 10, axis=1)
    scale = rng.uniform(0.5, 1.5, size=NB)
    own = np.repeat(rng.normal(0, 0.5, size=(NB, N // 20)), 20, axis=1)
    t = scale[:, None, None] * pattern[None] + own[:, None, :]
    return (t + 0.05 * rng.normal(size=t.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def data(tensor) -> dict[tuple[str, str], np.ndarray]:
    return {(b, a): tensor[i, j] for i, b in enumerate(B_NAMES) for j, a in enumerate(A_NAMES)
            if (b, a) not in HELD}


def _model(**kw) -> Avocado:
    kw = dict(dict(batch_size=500, seed=0, device="cpu", learning_rate=0.01, n_nodes=32,
                   average_activity="residual"), **kw)
    return Avocado.small(B_NAMES, A_NAMES, N, **kw)


@pytest.fixture(scope="module")
def trained(data) -> Avocado:
    model = _model()
    model.fit(data, n_epochs=30, progress=False, choose_settings=False)
    return model


def _held_out_mse(model: Avocado, data, tensor) -> tuple[list[float], list[float]]:
    """The MSE of the model's and of average activity's imputation of each HELD track."""
    model_mse, base_mse = [], []
    for b, a in HELD:
        truth = tensor[B_NAMES.index(b), A_NAMES.index(a)]
        model_mse.append(float(np.mean((model.predict(b, a) - truth) ** 2)))
        base_mse.append(float(np.mean((average_activity(data, b, a) - truth) ** 2)))
    return model_mse, base_mse


def test_residual_source_leaves_each_track_out_of_its_own_baseline():
    tracks = [np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]), np.array([5.0, 5.0, 8.0]),
              np.array([4.0, 0.0, 2.0])]
    assays = [0, 0, 0, 1]  # assay 0 has three tracks, assay 1 one
    activity = AverageActivity.from_tracks(assays, tracks, 3, 3)
    np.testing.assert_allclose(activity.mean[0], [3.0, 3.0, 4.0])
    np.testing.assert_allclose(activity.mean[1], [4.0, 0.0, 2.0])
    assert np.isnan(activity.mean[2]).all() and list(activity.count) == [3, 1, 0]
    source = ResidualSource(TrackSource(tracks), activity, assays, [True] * 4)
    e = np.array([0, 0, 1, 2, 3, 3])
    p = np.array([0, 2, 1, 2, 0, 1])
    # track 0 at 0: 1 - mean(3, 5) = -3; at 2: 3 - mean(1, 8) = -1.5; track 1 at 1:
    # 2 - mean(2, 5) = -1.5; track 2 at 2: 8 - mean(3, 1) = 6; assay 1's only track: 0
    np.testing.assert_allclose(source.values(e, p), [-3.0, -1.5, -1.5, 6.0, 0.0, 0.0])
    # tracks not in the mean (a new biosample's) get the plain mean as baseline
    plain = ResidualSource(TrackSource(tracks), activity, assays, [False] * 4)
    np.testing.assert_allclose(plain.values(e, p), [-2.0, -1.0, -1.0, 4.0, 0.0, 0.0])


def test_baseline_is_average_activity_of_the_training_tracks(trained, data, tensor):
    for b, a in HELD:  # the held-out track's biosample has no training track of its assay
        want = average_activity(data, b, a)
        np.testing.assert_allclose(trained.activity.mean[A_NAMES.index(a)], want, rtol=1e-6)
    # the prediction is that baseline plus the network's correction
    network_only = copy.deepcopy(trained)
    network_only.average_activity = None
    for b, a in HELD:
        np.testing.assert_allclose(
            trained.predict(b, a),
            network_only.predict(b, a) + trained.activity.mean[A_NAMES.index(a)], atol=1e-5)


def test_learns_what_average_activity_misses(trained, data, tensor):
    model_mse, base_mse = _held_out_mse(trained, data, tensor)
    # measured: 0.33 against 0.67 (the model without the baseline: 1.09)
    assert np.mean(model_mse) < 0.75 * np.mean(base_mse), (model_mse, base_mse)


def test_save_load_keeps_the_baseline(trained, tmp_path):
    trained.save(tmp_path / "m")
    loaded = Avocado.load(tmp_path / "m", device="cpu")
    assert loaded.config["average_activity"] == "residual"
    np.testing.assert_array_equal(loaded.activity.mean, trained.activity.mean)
    np.testing.assert_array_equal(loaded.predict("B0", "A0", 10, 500),
                                  trained.predict("B0", "A0", 10, 500))
    plain = Avocado.small(B_NAMES, A_NAMES, N, seed=0, device="cpu")
    plain.save(tmp_path / "plain")
    assert Avocado.load(tmp_path / "plain", device="cpu").activity is None


def test_new_biosample_uses_the_same_baseline(trained, tensor):
    model = copy.deepcopy(trained)
    truth = 1.2 * tensor[1] + 0.3  # a new biosample like B1, brighter
    new = {("NEW", a): truth[j] for j, a in enumerate(A_NAMES) if a != "A1"}
    model.fit_biosamples(new, n_epochs=20, progress=False)
    np.testing.assert_array_equal(model.activity.mean, trained.activity.mean)
    mse = float(np.mean((model.predict("NEW", "A1") - truth[1]) ** 2))
    base = float(np.mean((trained.activity.mean[1] - truth[1]) ** 2))
    assert mse < base, (mse, base)
    np.testing.assert_array_equal(model.predict("B0", "A0"), trained.predict("B0", "A0"))


def test_new_assays_and_positions_get_their_own_baseline(trained, tensor):
    model = copy.deepcopy(trained)
    new = {(b, "NEWA"): tensor[i, 1] - tensor[i, 3] for i, b in enumerate(B_NAMES) if i > 0}
    model.fit_assays(new, n_epochs=2, progress=False)
    np.testing.assert_allclose(model.activity.mean[NA], average_activity(new, "B0", "NEWA"),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.activity.mean[:NA], trained.activity.mean)
    assert model.predict("B0", "NEWA").shape == (N,)

    part = {k: v[300:1000] for k, v in
            {(b, a): tensor[i, j] for i, b in enumerate(B_NAMES)
             for j, a in enumerate(A_NAMES) if a != "A3"}.items()}
    other = trained.fit_positions(part, 700, n_epochs=2, progress=False)
    np.testing.assert_allclose(other.activity.mean[0], tensor[:, 0, 300:1000].mean(0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(AvocadoValueError, match=r"\['A3'\] have no average activity"):
        other.predict("B0", "A3")


def test_clear_errors(data):
    with pytest.raises(AvocadoValueError, match="unknown average_activity 'both'"):
        _model(average_activity="both")
    with pytest.raises(AvocadoValueError, match="fit"):
        _model().predict("B0", "A0")
    with pytest.raises(AvocadoValueError, match="fit"):
        _model().fit_biosamples({("NEW", "A0"): data["B1", "A0"]}, n_epochs=1, progress=False)


def test_activity_blend_shrinks_towards_average_activity(trained, tmp_path):
    model = copy.deepcopy(trained)
    plain = model.predict("B3", "A2")
    mean = trained.activity.mean[2]
    model.activity_blend = 0.25
    np.testing.assert_allclose(model.predict("B3", "A2"), 0.75 * plain + 0.25 * mean,
                               rtol=1e-5, atol=1e-6)
    model.activity_blend = 1.0
    np.testing.assert_allclose(model.predict("B3", "A2", 5, 50), mean[5:50], rtol=1e-6)
    model.save(tmp_path / "m")
    assert Avocado.load(tmp_path / "m", device="cpu").activity_blend == 1.0
    with pytest.raises(AvocadoValueError, match=r"activity_blend must be in \[0, 1\], got 1.5"):
        model.activity_blend = 1.5
    with pytest.raises(AvocadoValueError, match="needs average_activity"):
        Avocado.small(B_NAMES, A_NAMES, N, average_activity=None, activity_blend=0.5)


@pytest.mark.parametrize("variant", [{"kernel": False}, {"optimizer": "dense"}])
def test_input_mode_gives_the_fast_path_results(data, variant):
    # the hand-written gradient of the input column (fast path, compiled kernel) against
    # torch operations and against autograd over every parameter (the dense path)
    from avocado_core.training import Trainer

    fast = _model(average_activity="input")
    fast.fit(data, n_epochs=3, progress=False, choose_settings=False)
    other = _model(average_activity="input")
    other.fit(data, n_epochs=3, progress=False,
              choose_settings=False, trainer=functools.partial(Trainer, **variant))
    np.testing.assert_allclose(other.history["loss"], fast.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(other.network.activity_weight(), fast.network.activity_weight(),
                               rtol=1e-3, atol=1e-5)
    assert fast.network.activity_weight().abs().sum() > 0


def test_input_mode_feeds_the_mean_to_the_network(data, tensor, tmp_path):
    model = _model(average_activity="input")
    model.fit(data, n_epochs=30, progress=False, choose_settings=False)
    # the prediction is the network's forward pass with each position's mean as the input
    b, a = B_NAMES.index("B5"), A_NAMES.index("A3")
    pos = torch.arange(100, 400)
    with torch.no_grad():
        want = model.network(torch.full((300,), b), torch.full((300,), a), pos,
                             torch.from_numpy(model.activity.mean[a, 100:400]))
    np.testing.assert_allclose(model.predict("B5", "A3", 100, 400), want.numpy(), atol=1e-5)
    model_mse, base_mse = _held_out_mse(model, data, tensor)
    # measured: 0.25 against 0.67
    assert np.mean(model_mse) < 0.6 * np.mean(base_mse), (model_mse, base_mse)
    model.save(tmp_path / "m")
    loaded = Avocado.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(loaded.predict("B0", "A0"), model.predict("B0", "A0"))
    source = ResidualSource(None, model.activity, [0, 1], [True, False])
    # a training track's input leaves it out of its mean; B0 has no A0 track in data, so A0's
    # mean is over 5 tracks
    y = np.array([2.0, 3.0], dtype=np.float32)
    m0, m1 = model.activity.mean[0, 7], model.activity.mean[1, 7]
    np.testing.assert_allclose(
        source.input_values(np.array([0, 1]), np.array([7, 7]), y),
        [(5 * m0 - 2.0) / 4, m1], rtol=1e-5)
