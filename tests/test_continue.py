"""``fit`` continues where the last ``fit`` stopped: ten one-epoch calls train like one call.

Known answers on a small synthetic tensor (equal losses), and the issue's experiment on the real
pilot tracks (held-out MSE of the loop within 1% of the one call).
"""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import pytest

from avocado_core import Avocado, model_format
from avocado_core.errors import AvocadoValueError
from avocado_core.training import OptimizerStateWarning, Trainer

NB, NA, N = 3, 3, 4000
B_NAMES = [f"B{i}" for i in range(NB)]
A_NAMES = [f"A{j}" for j in range(NA)]
HELD = ("B2", "A2")


@pytest.fixture(scope="module")
def data() -> dict[tuple[str, str], np.ndarray]:
    """A biosample x assay x position tensor: shared genome profile, per-track offsets, noise."""
    rng = np.random.default_rng(0)
    genome = np.repeat(rng.normal(size=N // 10), 10)
    return {
        (b, a): (genome * (1 + i) + i - j + 0.3 * rng.normal(size=N)).astype(np.float32)
        for i, b in enumerate(B_NAMES) for j, a in enumerate(A_NAMES) if (b, a) != HELD
    }


@pytest.fixture(scope="module")
def validation(data) -> dict[tuple[str, str], np.ndarray]:
    return {("B1", "A1"): data[("B1", "A1")]}


def _model(**kw) -> Avocado:
    kw = dict(dict(batch_size=512, seed=0, device="cpu"), **kw)
    return Avocado.small(B_NAMES, A_NAMES, N, **kw)


def _loop(model: Avocado, data, n_calls: int, **kw) -> Avocado:
    for _ in range(n_calls):
        model.fit(data, n_epochs=1, epoch_size=5, progress=False, choose_settings=False, **kw)
    return model


@pytest.mark.parametrize("sampling", ["sequential", "permuted", "random"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_one_epoch_calls_follow_the_one_call(data, validation, sampling, precision):
    # With validation data every epoch ends with the catch-up rows brought up to date, in the
    # one call as at the end of each call: the two are equal bit for bit.
    one = _model(precision=precision)
    one.fit(data, n_epochs=4, epoch_size=5, sampling=sampling, validation=validation,
            progress=False, choose_settings=False)
    loop = _loop(_model(precision=precision), data, 4, sampling=sampling,
                 validation=validation)
    assert loop.history == one.history
    assert np.array_equal(loop.predict(*HELD), one.predict(*HELD))
    assert loop.optimizer_steps == one.optimizer_steps == 20


def test_without_kernels_too(data, validation):
    torch_only = functools.partial(Trainer, kernel=False)
    one = _model()
    one.fit(data, n_epochs=3, epoch_size=5, validation=validation, trainer=torch_only,
            progress=False, choose_settings=False)
    loop = _loop(_model(), data, 3, validation=validation, trainer=torch_only)
    assert loop.history == one.history
    assert np.array_equal(loop.predict(*HELD), one.predict(*HELD))


def test_without_validation_the_calls_differ_by_rounding_only(data):
    # The rows a call leaves behind are caught up at its end, the one call's later in one go:
    # the same sums, rounded differently (and the catch-up's expansion, within 1e-6 of a
    # catch-up). Adam's step lr * m / (sqrt(v) + eps) moves a parameter whose gradient is near
    # zero by up to lr whichever way round-off tips that gradient: lr / eps times the round-off
    # (1e4 with the default eps of 1e-7), so with it two roundings of one sum end as different
    # trajectories, as far apart as the CPU's vector unit decides (on a Zen 5 EPYC with AVX-512
    # kernels one genome row moved lr / 2 and 10 predictions 1.8e-4; 6e-8 without AVX-512).
    # With eps = lr the step moves at most lr / eps = 1 per unit of gradient: round-off stays
    # round-off, a few float32 ulps of the predictions (about 0.3 here: ulp 3e-8) and 1e-9 of
    # the loss; the bounds below are 300 ulps and 1e-6 of the loss.
    lipschitz = functools.partial(Trainer, eps=_model().learning_rate)
    one = _model()
    one.fit(data, n_epochs=6, epoch_size=5, progress=False, choose_settings=False,
            trainer=lipschitz)
    loop = _loop(_model(), data, 6, trainer=lipschitz)
    np.testing.assert_allclose(loop.history["loss"], one.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(loop.predict(*HELD), one.predict(*HELD), atol=1e-5)
    # a fresh optimizer in every call (the former behaviour) is another trajectory
    fresh = _loop(_model(), data, 6, reset_optimizer=True, trainer=lipschitz)
    assert fresh.history["loss"][0] == one.history["loss"][0]
    assert not np.allclose(fresh.history["loss"][1:], one.history["loss"][1:], rtol=1e-3)


def test_reset_and_a_new_seed(data):
    model = _loop(_model(), data, 1)
    assert model.optimizer_steps == 5
    before = model.predict(*HELD)
    # a call refused before training keeps the model and its state
    for bad in ({"average_from": 3}, {"sampling": "sorted"}, {"early_stopping": 2}):
        with pytest.raises(AvocadoValueError):
            model.fit(data, n_epochs=1, epoch_size=5, progress=False, choose_settings=False, **bad)
    assert model.optimizer_steps == 5 and np.array_equal(model.predict(*HELD), before)
    model.reset_optimizer()
    assert model.optimizer_steps is None
    # a call with another seed keeps the optimizer but draws another sequence of batches
    same, other = _loop(_model(), data, 1), _loop(_model(), data, 1)
    same.fit(data, n_epochs=1, epoch_size=5, sampling="random", seed=0, progress=False,
             choose_settings=False)
    other.fit(data, n_epochs=1, epoch_size=5, sampling="random", seed=1, progress=False,
              choose_settings=False)
    assert same.optimizer_steps == other.optimizer_steps == 10
    assert same.history["loss"][1] != other.history["loss"][1]


def test_weight_averaging_across_calls(data, validation):
    # One call averaging epochs 3-5, and five calls of one epoch, the last three averaging:
    # each call ends with the mean, and the next goes on from the trajectory, not the mean.
    one = _model()
    one.fit(data, n_epochs=5, epoch_size=5, average_from=2, validation=validation,
            progress=False, choose_settings=False)
    loop = _model()
    for epoch in range(5):
        loop.fit(data, n_epochs=1, epoch_size=5, validation=validation, progress=False,
                 choose_settings=False,
                 average_from=2 if epoch >= 2 else None)
    assert loop.history == one.history
    assert np.array_equal(loop.predict(*HELD), one.predict(*HELD))


def test_saved_optimizer_state_continues_after_load(data, validation, tmp_path):
    one = _model()
    one.fit(data, n_epochs=4, epoch_size=5, validation=validation, progress=False,
            choose_settings=False)
    first = _loop(_model(), data, 2, validation=validation)
    first.save(tmp_path / "m", optimizer=True)
    first.save(tmp_path / "plain")
    loaded = Avocado.load(tmp_path / "m", device="cpu")
    assert loaded.optimizer_steps == 10
    _loop(loaded, data, 2, validation=validation)
    assert loaded.history == one.history
    assert np.array_equal(loaded.predict(*HELD), one.predict(*HELD))
    assert Avocado.load(tmp_path / "plain", device="cpu").optimizer_steps is None
    with pytest.raises(AvocadoValueError, match="no optimizer state to save"):
        _model().save(tmp_path / "untrained", optimizer=True)


def test_fit_biosamples_and_fit_positions_keep_their_own_state(data):
    base = _model()
    base.fit(data, n_epochs=2, epoch_size=5, progress=False, choose_settings=False)
    new = {("NEW", a): data[("B1", a)] * 0.5 for a in A_NAMES}
    one = copy.deepcopy(base)
    one.fit_biosamples(new, n_epochs=3, epoch_size=5, progress=False)
    loop = copy.deepcopy(base)
    for _ in range(3):  # the later calls continue the row the first one added
        loop.fit_biosamples(new, n_epochs=1, epoch_size=5, progress=False)
    assert loop.biosamples == one.biosamples == [*B_NAMES, "NEW"]
    assert loop.history == one.history
    assert np.array_equal(loop.biosample_embedding(), one.biosample_embedding())
    with pytest.raises(AvocadoValueError, match="already in the model"):
        loop.fit_biosamples(new, biosamples=["B0"], n_epochs=1, progress=False)

    n = 1000
    part_data = {k: v[:n] for k, v in data.items()}
    val = {("B1", "A1"): part_data[("B1", "A1")]}
    one = base.fit_positions(part_data, n, n_epochs=3, epoch_size=2, validation=val,
                             progress=False)
    part = base.fit_positions(part_data, n, n_epochs=1, epoch_size=2, validation=val,
                              progress=False)
    for _ in range(2):  # a model fit_positions made goes on training its genome factors
        part = part.fit_positions(part_data, n, n_epochs=1, epoch_size=2, validation=val,
                                  progress=False)
    assert part.history == one.history
    for res in ("25bp", "250bp", "5kbp"):
        assert np.array_equal(part.genome_factors(res), one.genome_factors(res)), res
    fresh = part.fit_positions(part_data, n, n_epochs=1, epoch_size=2, reset_optimizer=True,
                               progress=False)
    assert fresh.history["loss"] == one.history["loss"][:1]


def test_a_state_that_does_not_fit_warns_and_starts_fresh(data):
    model = _loop(_model(), data, 1)
    model._train_state["shapes"]["biosample"] = [99, 32]
    with pytest.warns(OptimizerStateWarning, match="starting a fresh Adam optimizer") as caught:
        _loop(model, data, 1)
    assert [w.message.reason for w in caught] == ["different shapes"]
    assert model.optimizer_steps == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _loop(model, data, 1)
    assert model.optimizer_steps == 10
    # the state fit_biosamples leaves is not fit's: said once, not silently dropped
    model.fit_biosamples({("NEW", "A0"): data[("B0", "A0")]}, n_epochs=1, epoch_size=2,
                         progress=False)
    with pytest.warns(OptimizerStateWarning) as caught:
        _loop(model, data, 1)
    assert [w.message.reason for w in caught] == ["it is of fit_biosamples"]
    assert model.optimizer_steps == 5


def _damaged(folder, meta=None, tensors=None):
    """Edit the optimizer state a saved model holds: ``meta(optimizer)`` returns the new
    object, ``tensors(dict)`` edits the ``optimizer.*`` entries in place."""
    meta_, all_ = model_format.read_tensors_dir(folder, "config.json")
    if meta is not None:
        meta_["optimizer"] = meta(meta_["optimizer"])
    if tensors is not None:
        tensors(all_)
    model_format.write_tensors_dir(folder, meta_, all_, "config.json")


def _another_models_state(data, tmp_path):
    """The optimizer state of a model over half the positions, moved into a model's folder."""
    small = Avocado.small(B_NAMES, A_NAMES, N // 2, batch_size=512, seed=0, device="cpu")
    small.fit({k: v[: N // 2] for k, v in data.items()}, n_epochs=1, epoch_size=5,
              progress=False)
    small.save(tmp_path / "small", optimizer=True)
    meta, tensors = model_format.read_tensors_dir(tmp_path / "small", "config.json")
    return meta["optimizer"], {k: v for k, v in tensors.items() if k.startswith("optimizer.")}


DAMAGE = {
    "no trainer": (dict(meta=lambda o: {k: v for k, v in o.items() if k != "trainer"}),
                   "optimizer lacks optimizer.trainer"),
    "not an object": (dict(meta=lambda o: "adam"), "optimizer is a str, expected a JSON object"),
    "an entry missing": (dict(tensors=lambda t: t.pop("optimizer.rowadam.25bp.m")),
                         "entry optimizer.rowadam.25bp.m is missing"),
    "NaN moments": (dict(tensors=lambda t: t["optimizer.rowadam.250bp.v"].view(-1).__setitem__(
        7, float("nan"))), "entry 'optimizer.rowadam.250bp.v' holds 1 value(s) that are NaN"),
    "negative moments": (dict(tensors=lambda t: t["optimizer.adam.network.0.exp_avg_sq"].view(
        -1).__setitem__(0, -1.0)), "optimizer.adam.network.0.exp_avg_sq holds negative"),
    "steps as floats": (dict(tensors=lambda t: t.__setitem__(
        "optimizer.rowadam.5kbp.last", t["optimizer.rowadam.5kbp.last"].float())),
        "entry 'optimizer.rowadam.5kbp.last' has dtype torch.float32; expected integers"),
}


@pytest.mark.parametrize("case", [*DAMAGE, "another model's"])
def test_a_damaged_optimizer_state_is_refused_by_name(data, tmp_path, case):
    # Before: KeyError 'trainer' / 'rowadam.25bp.m', "dictionary update sequence element #0
    # has length 1", NaN moments trained on (and saved NaN weights), another model's state
    # failed mid-training. Now load refuses, naming the folder and the entry.
    model = _loop(_model(), data, 1)
    model.save(tmp_path / "m", optimizer=True)
    if case == "another model's":
        state, tensors = _another_models_state(data, tmp_path)
        _damaged(tmp_path / "m", meta=lambda _: state,
                 tensors=lambda t: t.update(tensors))
        message = "optimizer.shapes.25bp is [2000, 10], the model's parameter [4000, 10]"
    else:
        edit, message = DAMAGE[case]
        _damaged(tmp_path / "m", **edit)
    with pytest.raises(AvocadoValueError) as info:
        Avocado.load(tmp_path / "m", device="cpu")
    assert str(tmp_path / "m") in str(info.value) and message in str(info.value), info.value


# ------------------------------------------------------------------------ real pilot tracks
PILOT_BINS = 100_000
PILOT_HELD = ("E065", "H3K4me3")


@pytest.fixture(scope="module")
def pilot(pilot_dir) -> dict[tuple[str, str], np.ndarray]:
    biosamples = ["E003", "E017", "E065", "E116", "E117"]
    assays = ["H3K4me3", "H3K27me3", "H3K36me3", "H3K9me3", "H3K4me1"]
    return {(b, a): np.load(pilot_dir / f"{b}.{a}.pilot.arcsinh.npz")["arr_0"][:PILOT_BINS]
            for b in biosamples for a in assays}


def test_pilot_loop_matches_one_call_on_held_out_mse(pilot):
    # The experiment, shortened: small config, E065 H3K4me3 held out, 24 tracks.
    train = {k: v for k, v in pilot.items() if k != PILOT_HELD}
    truth = pilot[PILOT_HELD].astype(np.float64)

    def model() -> Avocado:  # the original tutorial's configuration, as the issue measured
        return Avocado.from_preset("original-small", pilot, PILOT_BINS, seed=0, device="cpu")

    def mse(m: Avocado) -> float:
        return float(np.mean((m.predict(*PILOT_HELD) - truth) ** 2))

    # an epoch: one pass over the bins; the settings as given (nothing chosen)
    fit = dict(epoch_size=10, seed=0, progress=False, choose_settings=False)
    one = model()
    one.fit(train, n_epochs=10, **fit)
    loop, fresh = model(), model()
    for _ in range(10):
        loop.fit(train, n_epochs=1, **fit)
        fresh.fit(train, n_epochs=1, reset_optimizer=True, **fit)
    # measured: 0.1510 for both (one call and loop), 0.1877 with a fresh optimizer per call
    assert abs(mse(loop) - mse(one)) <= 0.01 * mse(one)
    assert mse(fresh) > 1.1 * mse(one)  # what the loop did before
