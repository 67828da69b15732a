"""Models of the original Avocado package (avocado-epigenome 0.4.0, Keras 2.15), read and written.

Known answers: ``shared/data/original-avocado`` holds two models saved by the original itself and
its own predictions of all 25 (biosample, assay) pairs; per-chromosome models are derived from
them here with h5py (the original's genome-wide models are one such pair per chromosome).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pyBigWig
import pytest
import torch
from click.testing import CliRunner

from avocado_core import Avocado
from avocado_core.cli import main
from avocado_core.errors import AvocadoValueError
from avocado_core.genome_wide import GenomeModel
from avocado_core.original import import_original_genome, read_original, write_original
from cpu_cli import on_cpu

N = 40_000
LAYOUTS = ["one-layer", "two-layer"]
EMBEDDINGS = ["celltype_embedding", "assay_embedding", "genome_25bp_embedding",
              "genome_250bp_embedding", "genome_5kbp_embedding"]


@pytest.fixture(scope="module", params=LAYOUTS)
def fixture(request, data_mirror: Path) -> dict:
    folder = data_mirror / "original-avocado" / request.param
    return {"name": request.param, "prefix": folder / "avocado-pilot40k",
            "predictions": dict(np.load(folder / "predictions.npz"))}


def _copy(prefix: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    for ext in (".json", ".h5"):
        shutil.copy(f"{prefix}{ext}", f"{to}{ext}")
        Path(f"{to}{ext}").chmod(0o644)
    return to


def _max_difference(model: Avocado, predictions: dict) -> float:
    """Largest |model - original| over every (biosample, assay) pair and position."""
    return max(float(np.abs(model.predict(*key.split(".")) - expected).max())
               for key, expected in predictions.items())


# ---------------------------------------------------------------------------------- reading
def test_imports_and_predicts_the_originals_values(fixture) -> None:
    model = read_original(fixture["prefix"], device="cpu")
    spec = json.loads(Path(f"{fixture['prefix']}.json").read_text())
    assert model.biosamples == spec["celltypes"] and model.assays == spec["assays"]
    assert model.n_positions == N and model.batch_size == spec["batch_size"]
    assert model.config["n_layers"] == spec["n_layers"]
    assert model.config["n_nodes"] == spec["n_nodes"]
    assert model.experiments == [tuple(e) for e in spec["experiments"]]
    assert len(fixture["predictions"]) == 25
    worst = _max_difference(model, fixture["predictions"])
    print(f"{fixture['name']}: max |difference| from the original's predictions = {worst:.3g}")
    assert worst <= 1e-6, worst
    # any spelling of the pair: the .json, the .h5 or the prefix
    again = read_original(f"{fixture['prefix']}.h5", device="cpu")
    assert torch.equal(again.network.genome_5kbp.weight, model.network.genome_5kbp.weight)


def test_genome_factors_keep_the_originals_three_scales(fixture) -> None:
    model = read_original(fixture["prefix"], device="cpu")
    with h5py.File(f"{fixture['prefix']}.h5") as f:
        w = {n: f[f"model_weights/{n}/{n}/embeddings:0"][()] for n in EMBEDDINGS[2:]}
    pos = np.array([0, 9, 10, 199, 200, 12_345, N - 1])
    expected = np.concatenate([w["genome_25bp_embedding"][pos],
                               w["genome_250bp_embedding"][pos // 10],
                               w["genome_5kbp_embedding"][pos // 200]], axis=1)
    got = model.genome_embedding()[pos]
    np.testing.assert_array_equal(got, expected)


def test_imported_model_saves_and_trains_further(fixture, tmp_path: Path, pilot_dir: Path
                                                 ) -> None:
    model = read_original(fixture["prefix"], device="cpu")
    model.save(tmp_path / "model")
    loaded = Avocado.load(tmp_path / "model", device="cpu")
    np.testing.assert_array_equal(loaded.predict("E065", "H3K4me3"),
                                  model.predict("E065", "H3K4me3"))
    tracks = {tuple(p.name.split(".")[:2]): np.load(p)["arr_0"][:N].astype(np.float32)
              for p in sorted(pilot_dir.glob("*.pilot.arcsinh.npz"))}
    training = {k: v for k, v in tracks.items() if k != ("E065", "H3K4me3")}
    before = loaded.network.output.bias.clone()
    history = loaded.fit(training, n_epochs=1, epoch_size=3, seed=0, progress=False,
                         choose_settings=False)
    assert np.isfinite(history["loss"]).all()
    assert not torch.equal(before, loaded.network.output.bias)
    # a new biosample learns only its own row
    new = {("E003copy", a): v for (b, a), v in training.items() if b == "E003"}
    frozen = loaded.predict("E116", "H3K27me3")
    loaded.fit_biosamples(new, n_epochs=1, epoch_size=3, seed=0, progress=False)
    assert loaded.biosamples[-1] == "E003copy"
    np.testing.assert_array_equal(loaded.predict("E116", "H3K27me3"), frozen)


# ---------------------------------------------------------------------------------- writing
def test_export_reproduces_the_originals_files(fixture, tmp_path: Path) -> None:
    model = read_original(fixture["prefix"], device="cpu")
    json_path, h5_path = write_original(model, tmp_path / "out")
    assert json_path.read_text() == Path(f"{fixture['prefix']}.json").read_text()
    with h5py.File(h5_path) as mine, h5py.File(f"{fixture['prefix']}.h5") as theirs:
        for key in ("backend", "keras_version"):
            assert mine.attrs[key] == theirs.attrs[key]
        for key in ("model_config", "training_config"):
            assert json.loads(mine.attrs[key]) == json.loads(theirs.attrs[key])
        a, b = mine["model_weights"], theirs["model_weights"]
        assert list(a.attrs["layer_names"]) == list(b.attrs["layer_names"])
        assert sorted(a) == sorted(b)
        for layer in b:
            assert list(a[layer].attrs["weight_names"]) == list(b[layer].attrs["weight_names"])
            for name in b[layer].attrs["weight_names"]:
                np.testing.assert_array_equal(a[layer][name][()], b[layer][name][()])


def test_training_experiments_survive_save_and_export(fixture, tmp_path: Path) -> None:
    model = read_original(fixture["prefix"], device="cpu")
    listed = json.loads(Path(f"{fixture['prefix']}.json").read_text())["experiments"]
    assert model.trained_on == sorted((b, a) for b, a in listed)
    model.save(tmp_path / "model")
    loaded = Avocado.load(tmp_path / "model", device="cpu")
    json_path, _ = write_original(loaded, tmp_path / "out")
    written = json.loads(json_path.read_text())["experiments"]
    assert sorted(map(tuple, written)) == sorted(map(tuple, listed))


@pytest.mark.parametrize("n_layers, n_nodes", [(0, 1), (3, 24)])
def test_round_trip_of_any_depth_and_width(tmp_path: Path, n_layers: int, n_nodes: int) -> None:
    model = Avocado.from_preset(
        {"preset": "original-small", "n_layers": n_layers, "n_nodes": n_nodes,
         "n_biosample_factors": 3, "n_assay_factors": 4, "n_25bp_factors": 2,
         "n_250bp_factors": 3, "n_5kbp_factors": 5},
        [(b, a) for b in ("b1", "b2", "b3") for a in ("a1", "a2")], 1_234, seed=1, device="cpu")
    write_original(model, tmp_path / "x", experiments=[("b1", "a2")])
    back = read_original(tmp_path / "x", device="cpu")
    assert back.config == {**model.config, "seed": None}
    assert back.experiments == [("b1", "a2")]
    mine, theirs = model.network.state_dict(), back.network.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


# ---------------------------------------------------------------------------------- errors
def test_a_model_the_original_cannot_represent_is_refused(tmp_path: Path) -> None:
    """Average activity is an input of our network that the original's has not: refused, with
    what to train instead; prediction settings are dropped with a warning."""
    aware = Avocado.small(["b1"], ["a1"], 100, device="cpu")
    with pytest.raises(AvocadoValueError, match="average activity.*--config original-small"):
        write_original(aware, tmp_path / "x")
    assert not list(tmp_path.iterdir())
    smoothed = Avocado.small(["b1"], ["a1"], 100, device="cpu", average_activity=None,
                             smoothing=9)
    with pytest.warns(UserWarning, match="prediction settings .* not part of the original"):
        write_original(smoothed, tmp_path / "y", experiments=[])
    assert read_original(tmp_path / "y", device="cpu").smoothing == 1


def _edit_h5(prefix: Path, edit) -> None:
    with h5py.File(f"{prefix}.h5", "r+") as f:
        edit(f)


def _edit_json(prefix: Path, **changes) -> None:
    path = Path(f"{prefix}.json")
    spec = json.loads(path.read_text())
    spec.update(changes)
    path.write_text(json.dumps(spec))


def _replace(f: h5py.File, path: str, values: np.ndarray) -> None:
    del f[path]
    f.create_dataset(path, data=values)


def test_missing_h5_and_non_models(tmp_path: Path, data_mirror: Path) -> None:
    source = data_mirror / "original-avocado" / "two-layer" / "avocado-pilot40k"
    lone = tmp_path / "lone"
    shutil.copy(f"{source}.json", f"{lone}.json")
    with pytest.raises(AvocadoValueError, match=r"no lone\.h5 beside it"):
        read_original(lone)
    with pytest.raises(AvocadoValueError, match=r"nothing\.json does not exist"):
        read_original(tmp_path / "nothing")
    Path(f"{lone}.h5").write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(AvocadoValueError, match="is not an HDF5 file"):
        read_original(lone)
    with h5py.File(f"{lone}.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(AvocadoValueError, match="is not an Avocado model"):
        read_original(lone)
    other = _copy(source, tmp_path / "other")  # a Keras model without Avocado's embeddings

    def rename(f: h5py.File) -> None:
        g = f["model_weights"]
        g.move("celltype_embedding", "user_embedding")
        g.attrs["layer_names"] = [n.replace("celltype_embedding", "user_embedding")
                                  for n in g.attrs["layer_names"]]

    _edit_h5(other, rename)
    with pytest.raises(AvocadoValueError, match="no layer 'celltype_embedding'"):
        read_original(other)


def test_truncated_h5(tmp_path: Path, data_mirror: Path) -> None:
    source = data_mirror / "original-avocado" / "two-layer" / "avocado-pilot40k"
    cut = _copy(source, tmp_path / "cut")
    data = Path(f"{cut}.h5").read_bytes()
    Path(f"{cut}.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(AvocadoValueError, match="truncated or corrupted"):
        read_original(cut)


@pytest.mark.parametrize("changes, message", [
    ({"n_layers": 3}, "n_layers 3, the .h5 has 2 hidden Dense layers"),
    ({"n_nodes": 32}, "n_nodes 32, the .h5 has 64 units in dense_0"),
    ({"n_genomic_positions": 39_000}, "n_genomic_positions 39000"),
    ({"n_250bp_factors": 6}, "n_250bp_factors 6, the .h5 has 7 columns"),
    ({"celltypes": ["E003", "E017", "E065", "E116"], "experiments": []},
     "4 celltypes, the .h5 has 5 rows in celltype_embedding"),
    ({"assays": ["H3K4me3"] * 5}, "duplicate assays"),
    ({"experiments": [["E999", "H3K4me3"]]}, "E999"),
    ({"n_layers": "two"}, "n_layers must be a non-negative integer"),
])
def test_json_and_h5_that_disagree(tmp_path: Path, data_mirror: Path, changes, message) -> None:
    prefix = _copy(data_mirror / "original-avocado" / "two-layer" / "avocado-pilot40k",
                   tmp_path / "m")
    _edit_json(prefix, **changes)
    with pytest.raises(AvocadoValueError, match=message.replace(".", r"\.")):
        read_original(prefix)


def _config_edit(f: h5py.File, layer: str, **config) -> None:
    cfg = json.loads(f.attrs["model_config"])
    for item in cfg["config"]["layers"]:
        if item["name"] == layer:
            item["config"].update(config)
            if "class_name" in config:
                item["class_name"] = config["class_name"]
    f.attrs["model_config"] = json.dumps(cfg)


def _extra_layer(f: h5py.File) -> None:
    g = f["model_weights"]
    g.attrs["layer_names"] = [*g.attrs["layer_names"], "batch_norm"]
    g.create_group("batch_norm").attrs["weight_names"] = ["batch_norm/gamma:0"]
    g["batch_norm"].create_dataset("batch_norm/gamma:0", data=np.ones(64, np.float32))


def _uneven_widths(f: h5py.File) -> None:
    w = "model_weights/dense_1/dense_1"
    _replace(f, f"{w}/kernel:0", np.zeros((64, 32), np.float32))
    _replace(f, f"{w}/bias:0", np.zeros(32, np.float32))


@pytest.mark.parametrize("edit, message", [
    (_extra_layer, "unknown layer layout.*unexpected: batch_norm"),
    (lambda f: _config_edit(f, "dense_1", activation="tanh"),
     "layer 'dense_1' has activation 'tanh', expected 'relu'"),
    (lambda f: _config_edit(f, "flatten", class_name="Dropout"), "layer 'flatten' is a Dropout"),
    (_uneven_widths, "units in dense_1"),
    (lambda f: f["model_weights"].attrs.__setitem__("layer_names", [
        n for n in f["model_weights"].attrs["layer_names"] if n != "dense_0"]),
     "unknown layer layout"),
])
def test_unknown_layer_layouts(tmp_path: Path, data_mirror: Path, edit, message) -> None:
    prefix = _copy(data_mirror / "original-avocado" / "two-layer" / "avocado-pilot40k",
                   tmp_path / "m")
    _edit_h5(prefix, edit)
    with pytest.raises(AvocadoValueError, match=message):
        read_original(prefix)


def _damage(path: str, cell: int, value, dtype=None):
    """An edit setting one value of a dataset (optionally turning the dataset's dtype)."""
    def edit(f: h5py.File) -> None:
        data = f[path][()].astype(dtype or np.float32)
        data.flat[cell] = value
        _replace(f, path, data)
    return edit


_KERNEL = "model_weights/dense_1/dense_1/kernel:0"
_FACTORS = "model_weights/genome_25bp_embedding/genome_25bp_embedding/embeddings:0"


@pytest.mark.parametrize("edit, dataset, message", [
    (_damage(_KERNEL, 70, np.nan), _KERNEL, r"1 value\(s\) that are NaN.*index \[1, 6\]: nan"),
    (_damage(_FACTORS, 5, np.inf), _FACTORS, r"index \[1, 0\]: inf"),
    (_damage(_FACTORS, 5, 1e300, np.float64), _FACTORS, "beyond float32's range"),
    (_damage(_KERNEL, 0, 10**18, np.int64), _KERNEL, "dtype int64; expected floating-point"),
    (lambda f: _replace(f, _FACTORS, np.full(f[_FACTORS].shape, b"0.5")), _FACTORS,
     "dtype |S3; expected floating-point"),
])
def test_weights_that_are_not_finite_floats_are_refused(tmp_path: Path, data_mirror: Path, edit,
                                                        dataset, message) -> None:
    # The cases imported with exit 0 (or a TypeError): a model that predicts NaN
    # everywhere, or integers read as weights. The error names the file and the dataset.
    prefix = _copy(data_mirror / "original-avocado" / "two-layer" / "avocado-pilot40k",
                   tmp_path / "m")
    _edit_h5(prefix, edit)
    with pytest.raises(AvocadoValueError, match=message) as info:
        read_original(prefix, device="cpu")
    assert f"{prefix}.h5: dataset /{dataset}" in str(info.value)
    result = _cli("import-original", prefix, tmp_path / "imported", "-q")
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: ") and f"/{dataset}" in result.output
    assert not (tmp_path / "imported").exists()


def test_concatenation_order_is_checked(tmp_path: Path, data_mirror: Path) -> None:
    prefix = _copy(data_mirror / "original-avocado" / "two-layer" / "avocado-pilot40k",
                   tmp_path / "m")

    def swap(f: h5py.File) -> None:
        cfg = json.loads(f.attrs["model_config"])
        concat = next(x for x in cfg["config"]["layers"] if x["name"] == "concatenate")
        nodes = concat["inbound_nodes"][0]
        nodes[0], nodes[1] = nodes[1], nodes[0]
        f.attrs["model_config"] = json.dumps(cfg)

    _edit_h5(prefix, swap)
    with pytest.raises(AvocadoValueError, match="concatenated as"):
        read_original(prefix)


# ---------------------------------------------------------------------------------- genome
def _derive_chromosome(source: Path, to: Path, lo: int, hi: int) -> Path:
    """The model of positions [lo, hi) of the fixture as the original lays out a chromosome
    (lo a multiple of 200, so its 250 bp and 5 kbp rows are whole rows of the fixture)."""
    _copy(source, to)
    n = hi - lo
    rows = {"genome_25bp_embedding": (lo, n), "genome_250bp_embedding": (lo // 10, n // 10 + 1),
            "genome_5kbp_embedding": (lo // 200, n // 200 + 1)}
    with h5py.File(f"{to}.h5", "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for layer, (first, count) in rows.items():
            path = f"model_weights/{layer}/{layer}/embeddings:0"
            table = f[path][()]
            _replace(f, path, table[first:first + count])
            [item] = [x for x in cfg["config"]["layers"] if x["name"] == layer]
            item["config"]["input_dim"] = count
        f.attrs["model_config"] = json.dumps(cfg)
    _edit_json(to, n_genomic_positions=n)
    return to


@pytest.fixture()
def chromosomes(tmp_path: Path, data_mirror: Path) -> dict:
    folder = data_mirror / "original-avocado" / "two-layer"
    spans = {"chr1": (0, 24_000), "chr2": (24_000, 34_000), "chr10": (34_000, N)}
    for chrom, (lo, hi) in spans.items():
        _derive_chromosome(folder / "avocado-pilot40k", tmp_path / "keras" / f"avocado-{chrom}",
                           lo, hi)
    return {"prefix": tmp_path / "keras" / "avocado", "spans": spans,
            "predictions": dict(np.load(folder / "predictions.npz"))}


def test_per_chromosome_models_import_into_a_genome_model(chromosomes, tmp_path: Path,
                                                          monkeypatch) -> None:
    import avocado_core.genome_wide

    monkeypatch.setattr(avocado_core.genome_wide, "_WINDOW_BINS", 1_400)  # many windows
    out = import_original_genome(chromosomes["prefix"], tmp_path / "genome", device="cpu",
                                 progress=False)
    genome = GenomeModel.load(out, device="cpu")
    assert genome.chroms == ["chr1", "chr2", "chr10"]  # natural order
    assert len(list((out / "chroms").iterdir())) == 3
    worst = 0.0
    for chrom, (lo, hi) in chromosomes["spans"].items():
        assert genome.chrom_bins(chrom)[1] - genome.chrom_bins(chrom)[0] == hi - lo
        for key, expected in chromosomes["predictions"].items():
            got = genome.predict(*key.split("."), chrom)
            worst = max(worst, float(np.abs(got - expected[lo:hi]).max()))
    print(f"per-chromosome import: max |difference| from the original's predictions = {worst:.3g}")
    assert worst <= 1e-6
    # a range that starts inside a window, as the whole-chromosome model predicts it
    got = genome.predict_many([("E116", "H3K27me3")], "chr1", 1_333, 9_001)[0]
    whole = genome.chromosome("chr1").predict("E116", "H3K27me3", 1_333, 9_001)
    np.testing.assert_allclose(got, whole, atol=1e-6)  # the same up to float32 rounding
    # and to bigWig like any genome model: chr2's 25 bp bins are the fixture's 24,000-33,999
    [path] = genome.export_bigwigs([("E065", "H3K4me3")], tmp_path / "bw", progress=False)
    with pyBigWig.open(str(path)) as bw:
        got = np.array(bw.values("chr2", 0, 10_000 * 25))[::25]
    np.testing.assert_allclose(got, chromosomes["predictions"]["E065.H3K4me3"][24_000:34_000],
                               atol=1e-6)


def test_a_chromosome_from_another_model_is_named(chromosomes, tmp_path: Path) -> None:
    chr2 = chromosomes["prefix"].parent / "avocado-chr2"
    _edit_h5(chr2, lambda f: f["model_weights/dense_1/dense_1/kernel:0"].__setitem__(
        (0, 0), 1.0))
    chr10 = chromosomes["prefix"].parent / "avocado-chr10"
    _edit_h5(chr10, lambda f: f["model_weights/assay_embedding/assay_embedding/embeddings:0"]
             .__setitem__((0, 0), 1.0))
    with pytest.raises(AvocadoValueError, match=r"avocado-chr2 .*avocado-chr1: its dense_1 kernel"):
        import_original_genome(chromosomes["prefix"], tmp_path / "g", progress=False)
    _edit_json(chromosomes["prefix"].parent / "avocado-chr2",
               celltypes=["E003", "E017", "E065", "E116", "X"], experiments=[])
    with pytest.raises(AvocadoValueError, match=r"avocado-chr2 .*its celltypes"):
        import_original_genome(chromosomes["prefix"], tmp_path / "g", progress=False)
    assert not (tmp_path / "g").exists()
    with pytest.raises(AvocadoValueError, match="no per-chromosome original models"):
        import_original_genome(tmp_path / "nothing", tmp_path / "g", progress=False)


# ---------------------------------------------------------------------------------- CLI
def _cli(*args: object) -> object:
    return CliRunner().invoke(main, on_cpu([str(a) for a in args]), env={"AVOCADO_DEBUG": "0"})


def test_cli_import_and_export_round_trip(chromosomes, tmp_path: Path, data_mirror: Path
                                          ) -> None:
    source = data_mirror / "original-avocado" / "one-layer" / "avocado-pilot40k"
    result = _cli("import-original", source, tmp_path / "model", "-q")
    assert result.exit_code == 0, result.output
    result = _cli("export-original", tmp_path / "model", tmp_path / "back" / "m", "-q")
    assert result.exit_code == 0, result.output
    back = read_original(tmp_path / "back" / "m", device="cpu")
    first = read_original(source, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(first.network.state_dict().values(),
                                                  back.network.state_dict().values()))
    # genome-wide: per-chromosome files in, a genome model, per-chromosome files out
    result = _cli("import-original", "--genome", chromosomes["prefix"], tmp_path / "g", "-q")
    assert result.exit_code == 0 and "3 chromosomes, 40,000 bins" in result.output
    result = _cli("export-original", tmp_path / "g", tmp_path / "out" / "avocado", "-q")
    assert result.exit_code == 0, result.output
    for chrom in chromosomes["spans"]:
        a = read_original(chromosomes["prefix"].parent / f"avocado-{chrom}", device="cpu")
        b = read_original(tmp_path / "out" / f"avocado-{chrom}", device="cpu")
        assert all(torch.equal(x, y) for x, y in zip(a.network.state_dict().values(),
                                                      b.network.state_dict().values()))
    result = _cli("import-original", tmp_path / "nothing", tmp_path / "m2")
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("Error: ") and "nothing.json does not exist" in result.output


# ---------------------------------------------------------------------------------- the app
def test_imported_model_serves_in_a_workspace(tmp_path: Path, pilot_dir: Path,
                                              data_mirror: Path) -> None:
    from avocado_core.regions import RegionSet
    from avocado_core.store import TrackStore
    from avocado_core.workspace import Workspace
    from dashboard.pages import locus

    iv = RegionSet.roadmap_pilot().intervals
    keep = iv[iv["offset"] < N].copy()
    last = keep.index[-1]
    keep.loc[last, "n_bins"] = N - keep.loc[last, "offset"]
    keep.loc[last, "end"] = keep.loc[last, "first_bin_start"] + 25 * keep.loc[last, "n_bins"]
    ws = Workspace.create(tmp_path / "ws", annotations=None)
    store = TrackStore.create(ws.store_path, RegionSet(keep[["name", "chrom", "start", "end",
                                                             "n_bins", "first_bin_start"]]))
    store.add_tracks((*p.name.split(".")[:2], np.load(p)["arr_0"][:N])
                     for p in sorted(pilot_dir.glob("*.pilot.arcsinh.npz"))
                     if not p.name.startswith("E065.H3K4me3"))
    folder = data_mirror / "original-avocado" / "two-layer"
    read_original(folder / "avocado-pilot40k", device="cpu").save(ws.model_path)
    ws = Workspace(ws.path)
    assert ws.status().loc["E065", "H3K4me3"] != "observed"
    start, end = store.regions.locus_bins("chr1:151,200,000-151,210,000")
    observed, imputed = ws.window("E065", "H3K4me3", start, end)
    assert observed is None
    expected = np.load(folder / "predictions.npz")["E065.H3K4me3"][start:end]
    np.testing.assert_allclose(imputed, expected, atol=1e-6)
    _, tracks, _ = locus.locus_view(ws, "chr1:151,200,000-151,210,000",
                                    [("E065", "H3K4me3"), ("E003", "H3K4me3")])
    np.testing.assert_allclose(tracks[0].imputed, expected, atol=1e-6)
    assert tracks[1].observed is not None and len(tracks[1].imputed) == end - start
    # and to bigWig, as `avocado impute --bigwig-dir` does
    from avocado_core.datasets import HG19_CHROM_SIZES
    from avocado_core.imputation import impute_experiments

    impute_experiments(ws.model, store, [("E065", "H3K4me3")], into_store=False,
                       bigwig_dir=tmp_path / "bw", chrom_sizes=HG19_CHROM_SIZES, progress=False)
    with pyBigWig.open(str(tmp_path / "bw" / "E065.H3K4me3.imputed.bw")) as bw:
        got = bw.values("chr1", 151_200_000, 151_210_000, numpy=True)[::25]
    np.testing.assert_allclose(got, expected, atol=1e-6)
