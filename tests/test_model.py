"""The user-facing Avocado model on planted low-rank tensors and on the real pilot tracks."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json

import numpy as np
import pytest
import torch

from avocado_core import Avocado
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.training import FitKwargs, FitOptions

NB, NA, N = 8, 6, 2000
HELD = [(0, 0), (3, 2), (5, 4)]
B_NAMES = [f"B{i}" for i in range(NB)]
A_NAMES = [f"A{j}" for j in range(NA)]


def _planted(seed: int = 0) -> np.ndarray:
    """A rank-2 tensor biosample x assay x position; positions vary in blocks of 20."""
    rng = np.random.default_rng(seed)
    b = rng.uniform(0.5, 1.5, size=(NB, 2))
    a = rng.uniform(0.5, 1.5, size=(NA, 2))
    g = np.repeat(rng.normal(size=(N // 20 + 1, 2)), 20, axis=0)[:N]
    return np.einsum("bk,ak,nk->ban", b, a, g).astype(np.float32)


@pytest.fixture(scope="module")
def tensor() -> np.ndarray:
    return _planted()


@pytest.fixture(scope="module")
def data(tensor) -> dict[tuple[str, str], np.ndarray]:
    return {
        (B_NAMES[i], A_NAMES[j]): tensor[i, j]
        for i in range(NB) for j in range(NA) if (i, j) not in HELD
    }


def _model(**kw) -> Avocado:
    kw = dict(dict(batch_size=500, seed=0, device="cpu", learning_rate=0.01, n_nodes=32), **kw)
    return Avocado.small(B_NAMES, A_NAMES, N, **kw)


@pytest.fixture(scope="module")
def trained(data) -> Avocado:
    model = _model()
    model.fit(data, n_epochs=40, progress=False, choose_settings=False)
    return model


# ------------------------------------------------------------------------ known answers
def test_recovers_held_out_entries_of_a_planted_tensor(trained, tensor):
    for i, j in HELD:
        truth = tensor[i, j]
        pred = trained.predict(B_NAMES[i], A_NAMES[j])
        assert pred.dtype == np.float32 and pred.shape == (N,)
        mse = float(np.mean((pred - truth) ** 2))
        constant = float(np.var(truth))
        # measured 0.3-2% of the variance; the planted structure is what makes it work
        assert mse < 0.05 * constant, (i, j, mse, constant)
    assert trained.history["loss"][-1] < 0.15 * trained.history["loss"][0]


def test_history_and_validation(data, tensor):
    model = _model()
    val = {(B_NAMES[i], A_NAMES[j]): tensor[i, j] for i, j in HELD}
    hist = model.fit(data, n_epochs=6, validation=val, progress=False, choose_settings=False)
    assert len(hist["loss"]) == 6 and len(hist["val_mse"]) == 6
    assert hist["val_mse"][-1] < hist["val_mse"][0]
    direct = np.mean([np.mean((model.predict(b, a) - y) ** 2) for (b, a), y in val.items()])
    assert hist["val_mse"][-1] == pytest.approx(direct, rel=1e-5)
    assert model.history["loss"] == hist["loss"]


def test_early_stopping_stops(data, tensor):
    model = _model(learning_rate=0.2)  # diverging on purpose: validation never improves
    val = {(B_NAMES[0], A_NAMES[0]): tensor[0, 0]}
    hist = model.fit(data, n_epochs=30, validation=val, early_stopping=2, progress=False,
                     choose_settings=False)
    best = int(np.argmin(hist["val_mse"]))
    assert len(hist["val_mse"]) == best + 3 < 30


@pytest.mark.parametrize("sampling", ["permuted", "random"])
def test_other_samplings_learn(data, sampling):
    model = _model()
    hist = model.fit(data, n_epochs=8, sampling=sampling, progress=False, choose_settings=False)
    assert hist["loss"][-1] < 0.6 * hist["loss"][0]


def test_same_seed_same_losses(data):
    one = _model(seed=5).fit(data, n_epochs=3, progress=False, choose_settings=False)
    two = _model(seed=5).fit(data, n_epochs=3, progress=False, choose_settings=False)
    other = _model(seed=6).fit(data, n_epochs=3, progress=False, choose_settings=False)
    assert one["loss"] == two["loss"]
    assert one["loss"] != other["loss"]


# ------------------------------------------------------------------------ outputs
def test_predict_many_windows_and_embeddings(trained):
    many = trained.predict_many([("B0", "A0"), ("B3", "A2")], start=100, end=400)
    assert many.shape == (2, 300) and many.dtype == np.float32
    np.testing.assert_allclose(many[1], trained.predict("B3", "A2")[100:400], rtol=1e-5,
                               atol=1e-6)
    assert trained.biosample_embedding().shape == (NB, 32)
    assert np.array_equal(trained.celltype_embedding(), trained.biosample_embedding())
    assert trained.assay_embedding().shape == (NA, 24)
    g = trained.genome_embedding(190, 410)
    assert g.shape == (220, 60)
    t25, t250, t5k = (trained.genome_factors(r) for r in ("25bp", "250bp", "5kbp"))
    assert t25.shape == (N, 10) and t250.shape == (N // 10 + 1, 20) and t5k.shape == (11, 30)
    pos = np.arange(190, 410)
    assert np.array_equal(g, np.hstack([t25[pos], t250[pos // 10], t5k[pos // 200]]))
    with pytest.raises(AvocadoKeyError, match="'1kbp'"):
        trained.genome_factors("1kbp")


def test_celltypes_alias_and_small_config():
    m = Avocado(celltypes=["x", "y"], assays=["k"], n_positions=10, device="cpu")
    assert m.celltypes == m.biosamples == ["x", "y"]
    assert m.config["n_nodes"] == 2048 and m.config["n_assay_factors"] == 256
    s = Avocado.small(["x"], ["k"], 10, device="cpu")
    # the tutorial's network with the recipe measured best: batches of 40,000 at lr 0.002,
    # average activity as an input; "original-small" is the tutorial's exactly
    assert (s.config["n_layers"], s.config["n_nodes"], s.config["batch_size"],
            s.config["learning_rate"], s.config["average_activity"]) == (
                1, 128, 40000, 0.002, "input")
    assert s.device.type == "cpu"
    o = Avocado.from_preset("original-small", [("x", "k")], 10, device="cpu")
    assert (o.config["n_nodes"], o.config["batch_size"], o.config["learning_rate"],
            o.config["average_activity"]) == (128, 10000, 0.001, None)


def test_from_preset_is_one_rule_for_names_and_configs():
    """The one constructor from experiments: names sorted whatever the order given, the
    presets, a dict with overrides, and a clear error for an unknown preset."""
    experiments = [("E116", "H3K4me3"), ("E003", "H3K36me3"), ("E065", "H3K4me3"),
                   ("E003", "H3K27me3")]
    small = Avocado.from_preset("small", experiments, 10, device="cpu", seed=1)
    assert small.biosamples == ["E003", "E065", "E116"]
    assert small.assays == ["H3K27me3", "H3K36me3", "H3K4me3"]
    assert small.config == Avocado.small(small.biosamples, small.assays, 10, device="cpu",
                                         seed=1).config
    reversed_order = Avocado.from_preset("small", experiments[::-1], 10, device="cpu", seed=1)
    assert torch.equal(reversed_order.network.biosample_embedding.weight,
                       small.network.biosample_embedding.weight)  # the order given is irrelevant
    paper = Avocado.from_preset("paper", experiments, 10, device="cpu")
    assert paper.config["n_nodes"] == 2048
    tuned = Avocado.from_preset({"preset": "small", "batch_size": 123, "n_nodes": 16},
                                dict.fromkeys(experiments), 10, device="cpu", learning_rate=0.01)
    assert (tuned.batch_size, tuned.config["n_nodes"], tuned.config["n_layers"],
            tuned.learning_rate) == (123, 16, 1, 0.01)
    assert Avocado.from_preset({"n_nodes": 16}, experiments, 10,
                              device="cpu").config["n_assay_factors"] == 256
    with pytest.raises(AvocadoValueError,
                       match="config='huge'; expected one of 'small', 'paper', 'original-small'"):
        Avocado.from_preset("huge", experiments, 10)
    with pytest.raises(AvocadoValueError, match="no experiments"):
        Avocado.from_preset("small", [], 10)


# ------------------------------------------------------------------------ freezing
def test_fit_biosamples_changes_only_new_rows(trained, data, tensor):
    before = {k: v.clone() for k, v in trained.network.state_dict().items()}
    names_before = list(trained.biosamples)
    new = {("NEW", A_NAMES[j]): tensor[0, j] * 0.5 + tensor[1, j] for j in range(1, NA)}
    truth = tensor[0, 0] * 0.5 + tensor[1, 0]
    model = copy.deepcopy(trained)
    model.fit_biosamples(new, n_epochs=40, progress=False)
    assert model.biosamples == names_before + ["NEW"]
    after = model.network.state_dict()
    for k, v in before.items():
        if k == "biosample_embedding.weight":
            assert torch.equal(after[k][:NB], v)
            assert after[k].shape == (NB + 1, 32)
        else:
            assert torch.equal(after[k], v), k
    mse = float(np.mean((model.predict("NEW", "A0") - truth) ** 2))
    assert mse < 0.6 * float(np.var(truth))
    assert trained.biosamples == names_before  # the original model is untouched


def test_fit_biosamples_on_a_subset_never_reads_the_other_positions(trained, tensor):
    # A new biosample measured over part of the positions: what lies elsewhere (zeros, or
    # anything) must not move its embedding. Bit for bit, as no step reads those values.
    covered = np.zeros(N, dtype=bool)
    covered[: N // 5] = True
    track = np.asarray(tensor[0, 0] * 0.5 + tensor[1, 0], dtype=np.float32)
    rows = []
    for outside in (0.0, 100.0):
        model = copy.deepcopy(trained)
        values = np.where(covered, track, outside).astype(np.float32)
        history = model.fit_biosamples({("NEW", "A0"): values}, n_epochs=3, progress=False,
                                       positions=covered)
        rows.append(model.network.biosample_embedding.weight[-1].clone())
        assert len(history["loss"]) == 3
    assert torch.equal(rows[0], rows[1])
    zero_filled = copy.deepcopy(trained)  # without the subset, the zeros are fitted as signal
    zero_filled.fit_biosamples({("NEW", "A0"): np.where(covered, track, 0).astype(np.float32)},
                               n_epochs=3, progress=False)
    assert not torch.equal(zero_filled.network.biosample_embedding.weight[-1], rows[0])


def test_fit_assays_adds_rows(trained, tensor):
    model = copy.deepcopy(trained)
    before = model.network.state_dict()["assay_embedding.weight"].clone()
    new = {(B_NAMES[i], "NEWA"): tensor[i, 1] - tensor[i, 3] for i in range(1, NB)}
    model.fit_assays(new, n_epochs=3, progress=False)
    assert model.assays == A_NAMES + ["NEWA"]
    assert torch.equal(model.network.assay_embedding.weight[:NA], before)
    assert model.predict("B0", "NEWA").shape == (N,)
    with pytest.raises(AvocadoValueError, match="already in the model"):
        model.fit_assays(new, assays=["A1"], n_epochs=1, progress=False)


def test_fit_positions_freezes_network(trained, tensor):
    n_new = 700
    new = {(B_NAMES[i], A_NAMES[j]): tensor[i, j, 300:1000]
           for i in range(NB) for j in range(NA) if (i, j) not in HELD}
    other = trained.fit_positions(new, n_new, n_epochs=30, progress=False)
    assert other.n_positions == n_new and trained.n_positions == N
    assert other.genome_factors("25bp").shape == (n_new, 10)
    for mine, theirs in zip(trained.network.dense_parameters(), other.network.dense_parameters()):
        assert torch.equal(mine, theirs)
    assert np.array_equal(other.biosample_embedding(), trained.biosample_embedding())
    assert np.array_equal(other.assay_embedding(), trained.assay_embedding())
    truth = tensor[0, 0, 300:1000]
    mse = float(np.mean((other.predict("B0", "A0") - truth) ** 2))
    assert mse < 0.6 * float(np.var(truth))


# ------------------------------------------------------------------------ persistence
def test_save_load_round_trip(trained, tmp_path):
    trained.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files[0] == "config.json" and files[1].endswith(".safetensors") and len(files) == 2
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["config"]["biosamples"] == B_NAMES and "version" in config
    loaded = Avocado.load(tmp_path / "m", device="cpu")
    assert loaded.biosamples == B_NAMES and loaded.assays == A_NAMES
    assert loaded.history == trained.history
    assert np.array_equal(loaded.predict("B0", "A0"), trained.predict("B0", "A0"))
    trained.save(tmp_path / "m")  # overwriting keeps one weights file
    assert len(list((tmp_path / "m").iterdir())) == 2


def test_load_builds_no_network_to_overwrite(trained, tmp_path, monkeypatch):
    # The network is built on the meta device (no values) and handed the tensors read, then
    # moved to the device once: nothing is initialized at random on the CPU and moved to the
    # device only to be overwritten by a second copy (twice the model on a GPU).
    from avocado_core.network import AvocadoNetwork

    initialized = []
    reset = AvocadoNetwork.reset_parameters

    def spy(self, *args, **kwargs):
        initialized.append(self.output.weight.device.type)
        return reset(self, *args, **kwargs)

    trained.save(tmp_path / "m")
    monkeypatch.setattr(AvocadoNetwork, "reset_parameters", spy)
    loaded = Avocado.load(tmp_path / "m", device="cpu")
    assert initialized == ["meta"]
    for p in loaded.network.parameters():
        assert not p.requires_grad and p.device.type == "cpu"
    assert np.array_equal(loaded.predict("B0", "A0"), trained.predict("B0", "A0"))


def test_genome_embedding_is_computed_chunk_by_chunk(trained, monkeypatch):
    # A whole genome's factors (n_positions x 110 floats) are never on the device at once.
    from avocado_core import embeddings

    monkeypatch.setattr(embeddings, "GENOME_CHUNK", 70)
    factors = trained.network.genome_factors
    sizes = []

    def spy(positions):
        sizes.append(len(positions))
        return factors(positions)

    monkeypatch.setattr(trained.network, "genome_factors", spy)
    got = trained.genome_embedding(190, 410)
    assert sizes == [70, 70, 70, 10]
    with torch.no_grad():
        want = factors(torch.arange(190, 410)).numpy()
    np.testing.assert_array_equal(got, want)


def test_interrupted_save_keeps_the_old_model(trained, tmp_path, monkeypatch):
    from avocado_core import model_format

    trained.save(tmp_path / "m")
    other = _model(seed=9)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_format, "_serialize", crash)
    with pytest.raises(KeyboardInterrupt):
        other.save(tmp_path / "m")
    loaded = Avocado.load(tmp_path / "m", device="cpu")
    assert np.array_equal(loaded.predict("B0", "A0"), trained.predict("B0", "A0"))


def test_load_errors(trained, tmp_path):
    with pytest.raises(AvocadoValueError, match="not a directory"):
        Avocado.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AvocadoValueError, match="no config.json"):
        Avocado.load(tmp_path / "empty")
    trained.save(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(AvocadoValueError, match="corrupted"):
        Avocado.load(tmp_path / "m")
    trained.save(tmp_path / "w")
    weights = next((tmp_path / "w").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(AvocadoValueError, match="corrupted"):
        Avocado.load(tmp_path / "w")


def _set(name: str, cell: int, value, dtype: torch.dtype = torch.float32):
    """An edit of a saved model's tensors: one value of one entry (in a dtype of choice)."""
    def edit(tensors: dict) -> None:
        tensors[name] = tensors[name].to(dtype)
        tensors[name].view(-1)[cell] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set("genome_25bp.weight", 13, float("nan")),
     r"entry 'genome_25bp.weight' holds 1 value\(s\) that are NaN.*index \[1, 3\]: nan"),
    (_set("output.bias", 0, float("-inf")), r"entry 'output.bias' .*index \[0\]: -inf"),
    (_set("hidden.0.weight", 2, 1e300, torch.float64), "beyond float32's range"),
    (_set("assay_embedding.weight", 0, 10**18, torch.int64),
     "entry 'assay_embedding.weight' has dtype torch.int64; expected floating-point"),
])
def test_a_saved_model_with_damaged_weights_is_refused(trained, tmp_path, edit, message):
    # Loaded, such a model predicted NaN (or integers' values) everywhere without a word.
    from avocado_core import model_format

    trained.save(tmp_path / "m")
    meta, tensors = model_format.read_tensors_dir(tmp_path / "m", "config.json")
    edit(tensors)
    model_format.write_tensors_dir(tmp_path / "m", meta, tensors, "config.json")
    with pytest.raises(AvocadoValueError, match=message) as info:
        Avocado.load(tmp_path / "m", device="cpu")
    assert str(tmp_path / "m" / "weights-") in str(info.value)


def test_saved_weights_are_the_safetensors_format(trained, tmp_path):
    # Written by avocado_core (so that a killed save leaves only names _io removes), read by
    # the safetensors package: the very bytes its own writer makes.
    from safetensors.torch import save

    from avocado_core import model_format

    tensors = dict(trained.network.state_dict(), steps=torch.arange(3),
                   half=torch.ones(2, dtype=torch.bfloat16))
    path = model_format.write_safetensors(tmp_path / "w.safetensors", tensors)
    assert path.read_bytes() == save({k: v.contiguous() for k, v in tensors.items()})


def test_resume_continues_the_same_loss_curve(data, tmp_path):
    straight = _model(seed=3).fit(data, n_epochs=5, progress=False, choose_settings=False)
    ckpt = tmp_path / "ckpt"
    first = _model(seed=3)
    first.fit(data, n_epochs=2, checkpoint_dir=ckpt, checkpoint_every=1, progress=False,
              choose_settings=False)
    # a "crash" after epoch 2: a fresh process builds a fresh model and calls fit again
    second = _model(seed=3)
    hist = second.fit(data, n_epochs=5, checkpoint_dir=ckpt, progress=False, choose_settings=False)
    assert hist["loss"] == straight["loss"]
    fresh = _model(seed=3)
    fresh.fit(data, n_epochs=5, progress=False, choose_settings=False)
    assert np.array_equal(second.predict("B0", "A0"), fresh.predict("B0", "A0"))
    with pytest.raises(AvocadoValueError, match="different training run"):
        _model(seed=3).fit(data, n_epochs=5, sampling="random", checkpoint_dir=ckpt,
                           progress=False, choose_settings=False)


def test_weight_averaging_is_the_mean_of_epoch_end_parameters(data, monkeypatch):
    # Capture the parameters at the end of each epoch through the validation hook (it runs
    # after every epoch, on that epoch's own parameters), then compare with the final model.
    snapshots = []
    original = Avocado._validation_mse

    def record(self, network, keys, arrays):
        snapshots.append({k: v.clone() for k, v in network.state_dict().items()})
        return original(self, network, keys, arrays)

    monkeypatch.setattr(Avocado, "_validation_mse", record)
    val = {("B0", "A1"): data[("B0", "A1")]}
    model = _model(seed=4)
    model.fit(data, n_epochs=5, average_from=2, validation=val, progress=False,
              choose_settings=False)
    assert len(snapshots) == 5
    final = model.network.state_dict()
    for key, value in final.items():
        mean = torch.stack([s[key] for s in snapshots[2:]]).mean(0)
        torch.testing.assert_close(value, mean, rtol=1e-5, atol=1e-6, msg=key)
        assert not torch.equal(value, snapshots[-1][key]), key  # not the last epoch's
    with pytest.raises(AvocadoValueError, match="average_from=5 averages no epoch"):
        _model().fit(data, n_epochs=5, average_from=5, progress=False, choose_settings=False)


def test_weight_averaging_keeps_frozen_rows_and_resumes(trained, data, tensor, tmp_path):
    before = {k: v.clone() for k, v in trained.network.state_dict().items()}
    new = {("NEW", A_NAMES[j]): tensor[0, j] * 0.5 + tensor[1, j] for j in range(1, NA)}
    model = copy.deepcopy(trained)
    model.fit_biosamples(new, n_epochs=6, average_from=3, progress=False)
    after = model.network.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k][: len(v)], v), k  # bit for bit, the new row aside
    # an interrupted averaged run resumes to the same model
    straight = _model(seed=5)
    straight.fit(data, n_epochs=5, average_from=1, progress=False, choose_settings=False)
    ckpt = tmp_path / "ckpt"
    _model(seed=5).fit(data, n_epochs=3, average_from=1, checkpoint_dir=ckpt, progress=False,
                       choose_settings=False)
    resumed = _model(seed=5)
    resumed.fit(data, n_epochs=5, average_from=1, checkpoint_dir=ckpt, progress=False,
                choose_settings=False)
    assert np.array_equal(resumed.predict("B0", "A0"), straight.predict("B0", "A0"))


# ------------------------------------------------------------------------ errors
def test_clear_errors(data):
    model = _model()
    bad = dict(data)
    bad[("B0", "A0")] = np.zeros(N - 1, dtype=np.float32)
    with pytest.raises(AvocadoValueError, match=r"\('B0', 'A0'\) has 1999 positions.*2000"):
        model.fit(bad, n_epochs=1, progress=False, choose_settings=False)
    for value in (np.nan, np.inf):
        bad = dict(data)
        track = np.zeros(N, dtype=np.float32)
        track[1234] = value
        bad[("B0", "A0")] = track
        with pytest.raises(AvocadoValueError, match="non-finite.*position 1234"):
            model.fit(bad, n_epochs=1, progress=False, choose_settings=False)
    with pytest.raises(AvocadoKeyError, match="biosample 'E999'.*B0, B1"):
        model.fit({("E999", "A0"): np.zeros(N)}, n_epochs=1, progress=False, choose_settings=False)
    with pytest.raises(AvocadoKeyError, match="assay 'H3K99'.*A0, A1"):
        model.fit({("B0", "H3K99"): np.zeros(N)}, n_epochs=1, progress=False, choose_settings=False)
    with pytest.raises(AvocadoValueError, match="empty"):
        model.fit({}, n_epochs=1, progress=False, choose_settings=False)
    with pytest.raises(AvocadoKeyError, match="unknown biosample 'E999'"):
        model.predict("E999", "A0")
    with pytest.raises(AvocadoKeyError, match="unknown assay 'nope'"):
        model.predict("B0", "nope")
    with pytest.raises(AvocadoValueError, match=r"\[10, 5\)"):
        model.predict("B0", "A0", 10, 5)
    with pytest.raises(AvocadoValueError, match="'shuffled'"):
        model.fit(data, n_epochs=1, sampling="shuffled", progress=False, choose_settings=False)
    with pytest.raises(AvocadoValueError, match="duplicate"):
        Avocado(["a", "a"], ["k"], 10)
    with pytest.raises(AvocadoValueError, match="n_positions"):
        Avocado(["a"], ["k"], None)
    with pytest.raises(AvocadoValueError, match=r"biosample_decay must be in \[0, 1\), got 1.5"):
        Avocado(["a"], ["k"], 10, biosample_decay=1.5)


def test_accepts_a_track_store_by_duck_typing(data):
    class Store:
        def tracks(self, kind="observed"):
            assert kind == "observed"
            return data

    hist = _model().fit(Store(), n_epochs=1, progress=False, choose_settings=False)
    assert len(hist["loss"]) == 1


# ------------------------------------------------------------------------ real data
@pytest.mark.slow
def test_real_pilot_beats_a_constant(pilot_dir):
    n = 50_000  # the first 50,000 bins: a few seconds of training
    tracks = {}
    for path in sorted(pilot_dir.glob("*.pilot.arcsinh.npz")):
        b, a = path.name.split(".")[:2]
        with np.load(path) as npz:
            tracks[(b, a)] = npz["arr_0"][:n].astype(np.float32)
    held = tracks.pop(("E065", "H3K4me3"))
    biosamples = sorted({b for b, _ in tracks})
    assays = sorted({a for _, a in tracks})
    model = Avocado.small(biosamples, assays, n, seed=0, device="cpu", learning_rate=0.003)
    model.fit(tracks, n_epochs=20, progress=False, choose_settings=False)
    pred = model.predict("E065", "H3K4me3")
    mse = float(np.mean((pred - held) ** 2))
    constant = float(np.mean((held - held.mean()) ** 2))  # the best constant, with hindsight
    # measured: MSE 0.128 vs 0.163, r = 0.50
    assert mse < 0.9 * constant, (mse, constant)
    assert np.corrcoef(pred, held)[0, 1] > 0.3


# ------------------------------------------------------------------------ precision
def test_bf16_training_learns_and_threads_are_restored(data):
    threads = torch.get_num_threads()
    model = _model(precision="bf16", n_layers=2)
    hist = model.fit(data, n_epochs=6, progress=False, choose_settings=False)
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert torch.get_num_threads() == threads
    assert model.predict("B0", "A0").dtype == np.float32
    with pytest.raises(AvocadoValueError, match="'fp16'"):
        _model(precision="fp16")


@pytest.mark.parametrize("method", ["fit", "fit_biosamples", "fit_assays", "fit_positions"])
def test_fit_signatures_show_every_fit_option(method):
    """help(), editors and a script that checks a parameter see every FitOptions field, with
    its default; the keyword names editors complete (FitKwargs) are the same fields."""
    params = inspect.signature(getattr(Avocado, method)).parameters
    for field in dataclasses.fields(FitOptions):
        assert params[field.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[field.name].default == field.default
    assert "kwargs" not in params and {"seed", "progress", "n_epochs"} <= set(params)
    assert set(FitKwargs.__annotations__) == {f.name for f in dataclasses.fields(FitOptions)}
