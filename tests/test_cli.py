"""The ``avocado`` command line, driven through click's CliRunner on small real files.

Real data: the UCSC-written bigWigs of ../shared/data/bigwig-real (Drosophila chrX, one file
naming it ``chrX`` and the other ``X``) and the first 2,000 bins (50 kb of chr1) of a few real
Roadmap pilot tracks. Models are tiny (16 hidden nodes, a few factors, 1 epoch), so the module
runs in well under a minute on two cores.
"""

from __future__ import annotations

import shutil
import sys
import threading
import urllib.request
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pyBigWig
import pytest
from click.testing import CliRunner

from avocado_core import model_format
from avocado_core.cli import main
from avocado_core.ensemble import load_model
from avocado_core.model import Avocado
from avocado_core.regions import RegionSet
from avocado_core.store import TrackStore
from cpu_cli import on_cpu

N_BINS = 2000
#: ENr231 (chr1) starts at bin 151,158,025 of the pilot layout; its first 2,000 bins.
PILOT_BED = f"chr1\t151158025\t{151158025 + N_BINS * 25}\tENr231a\n"
BIOSAMPLES = ["E003", "E017", "E116"]
ASSAYS = ["H3K4me3", "H3K27me3", "H3K36me3"]
MISSING = ("E116", "H3K27me3")  # left out of the store: something to impute
TINY = [
    "--n-nodes", "16", "--n-25bp-factors", "4", "--n-250bp-factors", "4",
    "--n-5kbp-factors", "4", "--n-assay-factors", "4", "--n-biosample-factors", "4",
    "--batch-size", "500",
]
#: Training as given: one model, no settings chosen on validation tracks (for tests whose
#: subject is something else; the defaults are tested on their own).
PLAIN = ["--no-choose", "--models", "1"]


def run(*args, ok: bool = True):
    """Invoke ``avocado ARGS``; with ok=True, fail the test (showing the output) on a bad exit.

    With ok=True errors are not caught (AVOCADO_DEBUG=1), so a failure shows its traceback.
    """
    env = {"AVOCADO_DEBUG": "1"} if ok else {"AVOCADO_DEBUG": "0"}
    result = CliRunner().invoke(main, on_cpu([str(a) for a in args]), env=env)
    if ok and result.exit_code != 0:
        import traceback

        tb = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        command = " ".join(map(str, args))
        pytest.fail(f"avocado {command} -> {result.exit_code}\n{result.output}\n{tb}")
    return result


def assert_one_line_error(result, *fragments: str) -> None:
    """A failure: non-zero exit, exactly one line on stderr starting 'Error:', no traceback."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


def _pilot(pilot_dir: Path, biosample: str, assay: str) -> np.ndarray:
    return np.load(pilot_dir / f"{biosample}.{assay}.pilot.arcsinh.npz")["arr_0"][:N_BINS]


def _pilot_store(path: Path, pilot_dir: Path, experiments) -> TrackStore:
    bed = path.parent / "pilot50k.bed"
    bed.write_text(PILOT_BED)
    meta = pd.read_csv(pilot_dir / "roadmap-biosamples.tsv", sep="\t")
    store = TrackStore.create(path, RegionSet.from_bed(bed))
    for b, a in experiments:
        store.add_track(b, a, _pilot(pilot_dir, b, a), source="roadmap pilot")
    biosamples = sorted({b for b, _ in experiments})
    store.set_metadata(biosamples=meta.set_index(meta.columns[0]).loc[biosamples])
    return store


@pytest.fixture(scope="module")
def store_path(work, pilot_dir) -> Path:
    """8 real pilot tracks (3 biosamples x 3 assays, one missing) over 2,000 bins of chr1."""
    experiments = [(b, a) for b in BIOSAMPLES for a in ASSAYS if (b, a) != MISSING]
    _pilot_store(work / "store", pilot_dir, experiments)
    return work / "store"


@pytest.fixture(scope="module")
def model_path(work, store_path) -> Path:
    path = work / "model"
    result = run("train", store_path, path, *TINY, "--epochs", "1", "--seed", "0", "-q")
    assert "Saved model" in result.output and "final loss" in result.output
    return path


def test_train_builds_the_model_with_the_preset_constructor(store_path, model_path):
    """Names sorted (the store lists H3K4me3 first), the same model as Avocado.from_preset."""
    from avocado_core.store import TrackStore

    model = Avocado.load(model_path, device="cpu")
    assert [a for a in dict.fromkeys(a for _, a in TrackStore(store_path).experiments())] == ASSAYS
    assert model.assays == sorted(ASSAYS) and model.biosamples == sorted(BIOSAMPLES)
    overrides = dict(zip(TINY[::2], TINY[1::2]))
    config = {"preset": "small", **{k[2:].replace("-", "_"): int(v) for k, v in overrides.items()}}
    fresh = Avocado.from_preset(config, TrackStore(store_path).experiments(), N_BINS, seed=0,
                                device="cpu")
    chosen = ("precision", "biosample_settings")  # the settings training chose
    assert {k: v for k, v in fresh.config.items() if k not in chosen} == {
        k: v for k, v in model.config.items() if k not in chosen}
    # by default: 3 models (the others under members/), settings chosen on validation tracks
    assert model.biosample_settings == model.choice["biosample_settings"]
    assert sorted(p.name for p in (model_path / "members").iterdir()) == ["1", "2"]


# ---------------------------------------------------------------------- help and entry points
def _all_commands():
    out = []
    for name, cmd in main.commands.items():
        out.append([name])
        out += [[name, sub] for sub in getattr(cmd, "commands", {})]
    return out


@pytest.mark.parametrize("words", _all_commands(), ids=lambda w: " ".join(w))
def test_every_command_has_help_with_an_example(words):
    result = run(*words, "--help")
    assert "Usage: " in result.output
    assert "Example" in result.output and "avocado " in result.output.split("Example", 1)[1]


def test_group_help_lists_the_commands():
    text = run("--help").output
    for name in ["ingest", "train", "fit-biosamples", "impute", "export", "embed", "evaluate",
                 "select", "serve", "info", "demo", "fit-genome", "fit-positions"]:
        assert f"\n  {name} " in text, name


def test_python_dash_m_and_version(monkeypatch, capsys):
    # `python -m avocado_core`, run in this process (a subprocess would re-import torch: slow)
    import runpy

    monkeypatch.setattr(sys, "argv", ["avocado", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("avocado_core", run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("avocado, version ")


# ---------------------------------------------------------------------- ingest / export / info
@pytest.fixture(scope="module")
def bigwig_store(work, data_mirror, hg19_sizes) -> Path:
    """Both real bigWigs ingested over 100 kb of fly chrX (named chrX in one, X in the other)."""
    real = data_mirror / "bigwig-real"
    bed = work / "fly.bed"
    bed.write_text("chrX\t2600000\t2700000\twindow\n")
    manifest = work / "manifest.tsv"
    manifest.write_text(
        "biosample\tassay\tpath\n"
        f"fly1\tsignal\t{real / 'bigwig_chrx_2e6_5e6.bw'}\n"
        f"fly2\tsignal\t{real / 'bigwig2_X_2.5e6_3.5e6.bw'}\n"
    )
    sizes = work / "dm3.sizes"
    sizes.write_text("chrX\t22422827\n")
    result = run("ingest", work / "bwstore", "--regions", bed, "-m", manifest,
                 "--genome-sizes", sizes, "-q")
    assert "2 tracks ingested" in result.output
    return work / "bwstore"


def test_ingest_matches_pybigwig_statistics(bigwig_store, data_mirror):
    store = TrackStore(bigwig_store)
    assert store.n_bins == 4000
    for biosample, name, chrom in [("fly1", "bigwig_chrx_2e6_5e6.bw", "chrX"),
                                   ("fly2", "bigwig2_X_2.5e6_3.5e6.bw", "X")]:
        bw = pyBigWig.open(str(data_mirror / "bigwig-real" / name))
        means = np.array(bw.stats(chrom, 2_600_000, 2_700_000, type="mean", nBins=4000, exact=True),
                         dtype=float)
        expected = np.arcsinh(np.nan_to_num(means, nan=0.0))
        np.testing.assert_allclose(store.track(biosample, "signal"), expected, rtol=1e-5, atol=1e-6)
        assert np.count_nonzero(expected) > 100


def test_ingest_rerun_skips_and_single_file(bigwig_store, data_mirror, work):
    manifest = work / "manifest.tsv"
    out = run("ingest", bigwig_store, "-m", manifest, "-q").output
    assert "0 tracks ingested, 2 already there" in out
    bw = data_mirror / "bigwig-real" / "bigwig2_X_2.5e6_3.5e6.bw"
    out = run("ingest", bigwig_store, bw, "-b", "fly2", "-a", "raw",
              "--transform", "none", "-q").output
    assert "1 tracks ingested" in out and "3 observed tracks" in out
    store = TrackStore(bigwig_store)
    np.testing.assert_allclose(np.arcsinh(store.track("fly2", "raw")),
                               store.track("fly2", "signal"), rtol=1e-5, atol=1e-6)


def test_export_then_ingest_reproduces_the_track(bigwig_store, work, store_path, hg19_sizes):
    # The exported file records that its values are arcsinh signal: ingest (arcsinh by default)
    # takes them as they are instead of applying arcsinh again (E116 H3K4me3's largest value
    # came back as arcsinh of itself). Same bins, one 25 bp item per bin: bit for bit.
    out = work / "fly1.bw"
    assert "-> " in run("export", bigwig_store, "fly1", "signal", out).output
    bw = pyBigWig.open(str(out))
    assert bw.chroms() == {"chrX": 22422827}
    bw.close()
    again = work / "again"
    run("ingest", again, out, "-b", "fly1", "-a", "signal", "--regions", work / "fly.bed", "-q")
    np.testing.assert_array_equal(TrackStore(again).track("fly1", "signal"),
                                  TrackStore(bigwig_store).track("fly1", "signal"))
    # a real Roadmap track over its pilot bins
    pilot = work / "E116.H3K4me3.bw"
    run("export", store_path, "E116", "H3K4me3", pilot, "--chrom-sizes", hg19_sizes)
    run("ingest", work / "again-pilot", pilot, "-b", "E116", "-a", "H3K4me3",
        "--regions", work / "pilot50k.bed", "-q")
    expected = TrackStore(store_path).track("E116", "H3K4me3")
    assert expected.max() > 3  # real peaks, where a second arcsinh would show
    np.testing.assert_array_equal(TrackStore(work / "again-pilot").track("E116", "H3K4me3"),
                                  expected)
    # asked for the signal itself, the file's values are brought back from arcsinh
    run("ingest", work / "again-pilot", pilot, "-b", "E116", "-a", "signal",
        "--transform", "none", "-q")
    np.testing.assert_allclose(TrackStore(work / "again-pilot").track("E116", "signal"),
                               np.sinh(expected), rtol=1e-6)


def test_ingest_errors_are_one_line(work, data_mirror):
    real = data_mirror / "bigwig-real" / "bigwig_chrx_2e6_5e6.bw"
    bed = work / "fly2L.bed"
    bed.write_text("chr2L\t1000\t2000\n")
    result = run("ingest", work / "s2L", real, "-b", "x", "-a", "y", "--regions", bed, ok=False)
    assert_one_line_error(result, "chr2L", "bigwig_chrx_2e6_5e6.bw")
    assert not (work / "s2L").exists()  # a failed first ingest leaves no empty store behind
    (work / "empty-s2L").mkdir()  # nor fills a folder that was there, empty
    result = run("ingest", work / "empty-s2L", real, "-b", "x", "-a", "y", "--regions", bed,
                 ok=False)
    assert_one_line_error(result, "chr2L")
    assert list((work / "empty-s2L").iterdir()) == []
    result = run("ingest", work / "nostore", real, "-b", "x", "-a", "y", ok=False)
    assert_one_line_error(result, "--regions")
    result = run("ingest", work / "nostore", real, ok=False)
    assert_one_line_error(result, "--biosample")


def test_info_store_and_model(store_path, model_path):
    text = run("info", store_path).output
    assert "2,000 bins" in text and "Observed tracks: 8 of 9" in text and "E116" in text
    import json

    as_json = json.loads(run("info", store_path, "--json", "--tracks").output)
    assert as_json["tracks"] == {"observed": 8} and len(as_json["catalog"]) == 8
    text = run("info", model_path).output
    assert "Positions:      2,000" in text and "n_nodes:" in text and "Epochs trained: 1" in text


def test_info_errors(work):
    assert_one_line_error(run("info", work / "nothing-here", ok=False), "does not exist")
    empty = work / "empty"
    empty.mkdir()
    assert_one_line_error(run("info", empty, ok=False), "not a track store")


# ---------------------------------------------------------------------- train / impute
def test_train_holdout_and_refuses_to_overwrite(store_path, model_path, work):
    assert_one_line_error(run("train", store_path, model_path, ok=False), "--overwrite")
    out = run("train", store_path, work / "m2", *TINY, "--epochs", "1", "--holdout",
              "E003:H3K36me3", "-q").output
    assert "7 tracks" in out and "held-out MSE" in out
    assert_one_line_error(
        run("train", store_path, work / "m3", "--holdout", "E116:H3K27me3", ok=False),
        "E116:H3K27me3")


def test_train_biosample_decay_is_part_of_the_model(store_path, work):
    run("train", store_path, work / "decayed", *TINY, "--epochs", "1", "--biosample-decay",
        "0.1", "-q")
    assert Avocado.load(work / "decayed", device="cpu").config["biosample_decay"] == 0.1
    assert_one_line_error(
        run("train", store_path, work / "bad", *TINY, "--biosample-decay", "2", ok=False),
        "biosample_decay must be in [0, 1), got 2.0")


def test_train_with_average_activity(store_path, work):
    run("train", store_path, work / "aa", *TINY, *PLAIN, "--epochs", "1",
        "--average-activity", "input",
        "--activity-blend", "0.25", "--smoothing", "5", "-q")
    model = Avocado.load(work / "aa", device="cpu")
    assert model.config["average_activity"] == "input" and model.activity_blend == 0.25
    assert model.smoothing == 5
    assert model.activity is not None
    assert model.predict("E003", "H3K4me3").shape == (model.n_positions,)
    assert_one_line_error(
        run("train", store_path, work / "bad", *TINY, *PLAIN, "--average-activity", "none",
            "--activity-blend", "0.5", ok=False),
        "activity_blend=0.5 needs average_activity")


def test_evaluate_nested_selection(work, store_path):
    from avocado_core.synthetic import synthetic_compendium

    # complete 6 x 4: each fold's 12 training tracks can be split again
    comp = synthetic_compendium(n_biosamples=6, n_assays=4, n_positions=2000, n_groups=2,
                                observed_fraction=1.0, seed=0)
    grid_store = comp.write_store(work / "grid-store", progress=False)
    out_dir = work / "nested"
    run("evaluate", grid_store.path, out_dir, "--folds", "2", *TINY, "--epochs", "1",
        "--average-activity", "residual", "--select", "biosample-decay=0,0.1",
        "--select", "epochs=1,2", "--inner-folds", "2", "-q")
    results = pd.read_csv(out_dir / "evaluation.tsv", sep="\t")
    chosen = results[results["method"] == "avocado"]["selected"]
    assert chosen.str.contains('"biosample_decay"').all()
    assert chosen.str.contains('"n_epochs"').all()
    grid = pd.read_csv(out_dir / "evaluation-selection.tsv", sep="\t")
    assert len(grid) == 2 * 4 and "### Nested model selection" in (
        out_dir / "evaluation.md").read_text()
    # the selection alone: the same scores, no held-out evaluation
    study = work / "study"
    out = run("evaluate", grid_store.path, study, "--folds", "2", *TINY, "--epochs", "1",
              "--average-activity", "residual", "--select", "biosample-decay=0,0.1",
              "--select", "epochs=1,2", "--inner-folds", "2", "-q", "--selection-only")
    assert "Best candidates by mean validation MSE" in out.output
    pd.testing.assert_frame_equal(pd.read_csv(study / "evaluation-selection.tsv", sep="\t"), grid)
    assert "### Every candidate" in (study / "evaluation-selection.md").read_text()
    assert not (study / "evaluation.tsv").exists()
    assert_one_line_error(run("evaluate", store_path, work / "bad", *TINY, "--selection-only",
                              ok=False), "--selection-only needs --select")
    for bad, fragment in (("decay=0,1", "cannot select ['decay']"),
                          ("biosample-decay", "expected NAME=V1,V2")):
        assert_one_line_error(run("evaluate", store_path, work / "bad", *TINY, "--select", bad,
                                  ok=False), fragment)
    # 8 tracks of 3 x 3: in a fold's training tracks some are the only ones of their
    # biosample or assay; they train in every inner split, and the others validate
    run("evaluate", store_path, work / "sparse", *TINY, "--folds", "2", "--select",
        "epochs=1,2", "-q")
    sparse = pd.read_csv(work / "sparse" / "evaluation-selection.tsv", sep="\t")
    assert (sparse["val_tracks"] > 0).all()
    assert_one_line_error(
        run("evaluate", store_path, work / "bad", *TINY, "--select", "epochs=1,2",
            "--inner-splits", "9", ok=False), "inner_splits=9")


def test_train_average_from_averages_epochs(store_path, work):
    args = (*TINY, *PLAIN, "--epochs", "3", "--seed", "0", "-q")
    run("train", store_path, work / "last", *args)
    run("train", store_path, work / "averaged", *args, "--average-from", "1")
    last, averaged = (Avocado.load(work / n, device="cpu") for n in ("last", "averaged"))
    assert last.history["loss"] == averaged.history["loss"]  # the same run ...
    assert not np.array_equal(last.predict("E003", "H3K4me3"),  # ... a different end point
                              averaged.predict("E003", "H3K4me3"))
    assert_one_line_error(
        run("train", store_path, work / "bad", *args, "--average-from", "3", ok=False),
        "average_from=3")


def test_train_init_continues_a_saved_optimizer(store_path, model_path, work):
    args = ("--seed", "0", "-q")
    run("train", store_path, work / "two", *TINY, *args, "--epochs", "2")
    out = run("train", store_path, work / "first", *TINY, *args, "--epochs", "1",
              "--save-optimizer").output
    assert "Continued" not in out and "Started" not in out
    out = run("train", store_path, work / "second", *args, "--epochs", "1", "--init",
              work / "first").output
    assert "continued the optimizer state of" in out and "Adam steps)" in out
    two, second = (Avocado.load(work / n, device="cpu") for n in ("two", "second"))
    np.testing.assert_allclose(second.history["loss"], two.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(second.predict("E003", "H3K4me3"), two.predict("E003", "H3K4me3"),
                               atol=1e-4)
    # a model saved without its optimizer state: a fresh optimizer, said so
    out = run("train", store_path, work / "third", *args, "--epochs", "1", "--init",
              model_path).output
    assert "started a fresh Adam optimizer" in out and "--save-optimizer" in out


def _with_state(work, store_path, name: str, edit=None, **fit) -> Path:
    """A model of the store trained one epoch with its optimizer state saved (``fit``: more
    options of the fit), the state then changed by ``edit(meta, tensors)``."""
    keys = TrackStore(store_path).experiments()
    model = Avocado.from_preset({"preset": "small", "n_nodes": 16, "batch_size": 500}, keys,
                                N_BINS, seed=0, device="cpu")
    model.fit(TrackStore(store_path), n_epochs=1, progress=False, **fit)
    model.save(work / name, optimizer=True)
    if edit is not None:
        meta, tensors = model_format.read_tensors_dir(work / name, "config.json")
        edit(meta, tensors)
        model_format.write_tensors_dir(work / name, meta, tensors, "config.json")
    return work / name


def test_train_init_with_a_damaged_optimizer_state(store_path, work):
    # Before: "Error: trainer", "Error: rowadam.25bp.m", NaN moments trained on and saved
    # NaN weights with exit 0. Now one line naming the --init folder and the entry.
    def nan(meta, tensors):
        tensors["optimizer.rowadam.25bp.m"][3, 1] = float("nan")

    cases = [
        (lambda meta, tensors: meta["optimizer"].pop("trainer"), "optimizer.trainer"),
        (lambda meta, tensors: tensors.pop("optimizer.rowadam.25bp.m"),
         "entry optimizer.rowadam.25bp.m is missing"),
        (lambda meta, tensors: meta.update(optimizer="adam"), "optimizer is a str"),
        (nan, "'optimizer.rowadam.25bp.m' holds 1 value(s) that are NaN"),
    ]
    for i, (edit, fragment) in enumerate(cases):
        init = _with_state(work, store_path, f"damaged-{i}", edit)
        result = run("train", store_path, work / f"from-damaged-{i}", "--init", init,
                     "--epochs", "1", "-q", ok=False)
        assert_one_line_error(result, str(init), fragment)
        assert not (work / f"from-damaged-{i}" / "config.json").exists()


def test_train_init_says_once_what_became_of_the_state(store_path, work):
    # A state that does not fit the training (another optimizer mode; another kind of fit) is
    # left for a fresh Adam optimizer, said once: before, "starting a fresh Adam optimizer"
    # was followed by "continued the optimizer state of ...".
    import functools

    from avocado_core.training import Trainer

    dense = _with_state(work, store_path, "dense-state",
                        trainer=functools.partial(Trainer, optimizer="dense"))
    result = run("train", store_path, work / "from-dense", "--init", dense, "--epochs", "1",
                 "--save-optimizer", "-q")
    assert "started a fresh Adam optimizer: the optimizer state of" in result.output
    assert "(different mode)" in result.output
    assert "ontinued" not in result.output and "starting a fresh" not in result.output
    # fresh indeed: the 4 steps of this epoch, not 8
    assert Avocado.load(work / "from-dense", device="cpu").optimizer_steps == 4

    # the state of another model (16 hidden nodes) in a model of 32: refused by name
    other = _with_state(work, store_path, "other-state")
    theirs, their_tensors = model_format.read_tensors_dir(other, "config.json")
    Avocado.from_preset({"preset": "small", "n_nodes": 32, "batch_size": 500},
                        TrackStore(store_path).experiments(), N_BINS, seed=0,
                        device="cpu").save(work / "wide")
    meta, tensors = model_format.read_tensors_dir(work / "wide", "config.json")
    meta["optimizer"] = theirs["optimizer"]
    tensors.update({k: v for k, v in their_tensors.items() if k.startswith("optimizer.")})
    model_format.write_tensors_dir(work / "wide", meta, tensors, "config.json")
    result = run("train", store_path, work / "from-wide", "--init", work / "wide",
                 "--epochs", "1", "-q", ok=False)
    assert_one_line_error(result, str(work / "wide"), "is the state of another model")


def test_impute_one_into_store_equals_predict(work, store_path, model_path):
    store_copy = work / "impute-store"
    shutil.copytree(store_path, store_copy)
    out = run("impute", store_copy, model_path, "-e", "E116:H3K27me3", "-q").output
    assert "Imputed 1 experiments" in out
    store = TrackStore(store_copy)
    model = load_model(model_path, device="cpu")  # the 3 models avocado train saves
    assert len(model) == 3
    np.testing.assert_allclose(store.track("E116", "H3K27me3", kind="imputed"),
                               model.predict("E116", "H3K27me3"), rtol=1e-6, atol=1e-6)
    out = run("impute", store_copy, model_path, "--missing", "-q").output
    assert "(1 already imputed, skipped)" in out
    run("impute", store_copy, model_path, "--all", "-q")
    assert len(TrackStore(store_copy).experiments("imputed")) == 9


def test_impute_with_several_models_writes_their_mean(work, store_path, model_path, pilot_dir):
    second = work / "model-s100"
    run("train", store_path, second, *TINY, *PLAIN, "--epochs", "1", "--seed", "100", "-q")
    store_copy = work / "ensemble-store"
    shutil.copytree(store_path, store_copy)
    run("impute", store_copy, model_path, second, "-e", "E116:H3K27me3", "-q")
    members = [m.predict("E116", "H3K27me3")
               for m in load_model(model_path, device="cpu").models
               + [Avocado.load(second, device="cpu")]]
    assert np.abs(members[0] - members[1]).max() > 1e-3
    got = TrackStore(store_copy).track("E116", "H3K27me3", kind="imputed")
    np.testing.assert_allclose(got, np.mean(members, axis=0), rtol=1e-5, atol=1e-6)
    other = work / "model-other-assays"
    _pilot_store(work / "store-other", pilot_dir,
                 [(b, a) for b in BIOSAMPLES for a in ("H3K4me3", "H3K4me1")])
    run("train", work / "store-other", other, *TINY, *PLAIN, "--epochs", "1", "-q")
    assert_one_line_error(run("impute", store_copy, second, other, "--missing", ok=False),
                          "model 1 of the ensemble has assays")


def test_impute_spread_and_a_band_calibrated_on_held_out_tracks(work, store_path):
    held = ("-x", "E003:H3K36me3")
    members = [work / f"band-m{s}" for s in (0, 100)]
    for path, seed in zip(members, (0, 100)):
        run("train", store_path, path, *TINY, *PLAIN, "--epochs", "1", "--seed", str(seed),
            *held, "-q")
    assert ("E003", "H3K36me3") not in Avocado.load(members[0], device="cpu").trained_on
    store_copy = work / "band-store"
    shutil.copytree(store_path, store_copy)
    out = run("impute", store_copy, *members, "--all", "--spread", "--calibrate-on",
              "E003:H3K36me3", "-q").output
    assert "Calibrated the 90% band on 1 held-out experiments" in out
    store = TrackStore(store_copy)
    assert len(store.experiments("spread")) == 9
    preds = [Avocado.load(p, device="cpu").predict("E116", "H3K27me3") for p in members]
    np.testing.assert_allclose(store.track("E116", "H3K27me3", kind="spread"),
                               np.std(preds, axis=0), rtol=1e-4, atol=1e-6)
    (source, entry), = store.imputation_info["sources"].items()
    assert entry["n_models"] == 2 and ["E116", "H3K27me3"] not in entry["trained_on"]
    assert entry["band"]["experiments"] == [["E003", "H3K36me3"]]
    # a training track cannot calibrate the band; --calibrate-on needs --spread
    assert_one_line_error(run("impute", store_copy, *members, "--all", "--spread", "--overwrite",
                              "--calibrate-on", "E003:H3K4me3", "-q", ok=False),
                          "were used for training")
    assert_one_line_error(run("impute", store_copy, *members, "--all", "--calibrate-on",
                              "E003:H3K36me3", ok=False), "--spread")
    assert_one_line_error(run("impute", store_copy, members[0], "--all", "--spread", ok=False),
                          "--spread needs an ensemble")


def test_impute_all_to_bigwig(work, store_path, model_path, hg19_sizes):
    out_dir = work / "imputed-bw"
    result = run("impute", store_path, model_path, "--all", "--no-store", "--bigwig-dir", out_dir,
                 "--chrom-sizes", hg19_sizes, "-q")
    assert "Imputed 9 experiments" in result.output
    files = sorted(p.name for p in out_dir.glob("*.bw"))
    assert len(files) == 9 and "E116.H3K27me3.imputed.bw" in files
    assert not TrackStore(store_path).experiments("imputed")
    bw = pyBigWig.open(str(out_dir / "E003.H3K4me3.imputed.bw"))
    values = np.array(bw.values("chr1", 151158025, 151158025 + N_BINS * 25))[::25]
    expected = load_model(model_path, device="cpu").predict("E003", "H3K4me3")
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)


def test_impute_errors(store_path, model_path, work):
    assert_one_line_error(run("impute", store_path, model_path, ok=False), "--missing")
    assert_one_line_error(run("impute", store_path, model_path, "-e", "E999:H3K4me3", ok=False),
                          "E999", "E003")
    assert_one_line_error(run("impute", store_path, model_path, "-e", "E003", ok=False),
                          "BIOSAMPLE:ASSAY")
    # the tiny store records no genome sizes and is not made of whole chromosomes
    assert_one_line_error(run("impute", store_path, model_path, "--all", "--bigwig-dir",
                              work / "nobw", ok=False), "--chrom-sizes")


# ---------------------------------------------------------------------- new rows, genome phase
def test_fit_biosamples_and_assays(work, pilot_dir, model_path):
    new_b = _pilot_store(work / "e117", pilot_dir, [("E117", "H3K4me3"), ("E117", "H3K36me3")])
    out = run("fit-biosamples", new_b.path, model_path, "-o", work / "m-e117", "--epochs", "1",
              "-q").output
    assert "Added 1 biosamples (E117)" in out
    grown = Avocado.load(work / "m-e117", device="cpu")
    old = Avocado.load(model_path, device="cpu")
    assert grown.biosamples == BIOSAMPLES + ["E117"]
    np.testing.assert_array_equal(grown.predict("E003", "H3K4me3"), old.predict("E003", "H3K4me3"))

    new_a = _pilot_store(work / "k9", pilot_dir, [("E003", "H3K9me3"), ("E017", "H3K9me3")])
    out = run("fit-assays", new_a.path, model_path, "-o", work / "m-k9",
              "--epochs", "1", "-q").output
    assert "Added 1 assays (H3K9me3)" in out
    assert_one_line_error(run("fit-biosamples", new_a.path, model_path, ok=False), "does not know")


def test_fit_genome_per_chromosome(work, store_path, model_path):
    args = ["fit-genome", model_path, store_path, work / "genome",
            "--chrom", "chr1", "--epochs", "1", "-q"]
    assert "chr1: 2,000 positions" in run(*args).output
    part = work / "genome" / "chr1"
    new = Avocado.load(part, device="cpu")
    old = Avocado.load(model_path, device="cpu")
    np.testing.assert_array_equal(new.biosample_embedding(), old.biosample_embedding())
    assert new.n_positions == N_BINS
    mtime = (part / "config.json").stat().st_mtime_ns
    run(*args)  # a finished part of the same model is skipped
    assert (part / "config.json").stat().st_mtime_ns == mtime
    run("assemble-genome", model_path, store_path, work / "genome-model",
        "-p", work / "genome", "-q")
    text = run("info", work / "genome-model").output
    assert text.startswith("Genome model: ") and "Chromosomes: 1 (chr1)" in text
    assert_one_line_error(run("fit-positions", model_path, store_path, work / "genome", "--chrom",
                              "chr5", ok=False), "chr5")


# ---------------------------------------------------------------------- embed / select / evaluate
def test_embed_biosamples_and_genome(work, store_path, model_path, data_mirror):
    out = work / "biosamples.tsv"
    run("embed", model_path, out, "--method", "pca", "--store", store_path)
    df = pd.read_csv(out, sep="\t")
    assert list(df["name"]) == BIOSAMPLES and np.isfinite(df[["x", "y"]].to_numpy()).all()
    # UMAP on 3 points falls back to PCA; the library's warning reads as one line
    result = run("embed", model_path, work / "b-umap.tsv")
    warning_lines = [line for line in result.stderr.splitlines() if "UMAP" in line]
    assert warning_lines and warning_lines[0].startswith("Warning: UMAP needs at least")
    assert "UserWarning" not in result.stderr
    ann = data_mirror / "annotations-hg19"
    out = work / "genome.tsv"
    run("embed", model_path, out, "--axis", "genome", "--method", "pca", "--n-points", "400",
        "--store", store_path, "--genes", ann / "gencode.v19.genes.pilot.bed.gz",
        "--tss", ann / "gencode.v19.tss.pilot.bed.gz")
    df = pd.read_csv(out, sep="\t")
    assert len(df) == 400 and set(df["chrom"]) == {"chr1"}
    assert {"promoter", "gene body"} <= set(df["stratum"])
    assert (df["start"] == 151158025 + 25 * df["bin"]).all()


def test_select_biosamples_and_positions(work, store_path, model_path):
    out = run("select", "biosamples", model_path, store_path, "--assay", "H3K27me3", "-k", "1",
              "-o", work / "picks.tsv").output
    assert "E116" in out  # the only biosample without H3K27me3
    bed = work / "picks.bed"
    run("select", "positions", model_path, "-k", "5", "--store", store_path, "--bed", bed,
        "--ground-size", "500", "--pool-size", "200", "-q")
    picks = pd.read_csv(bed, sep="\t", header=None)
    assert len(picks) == 5 and set(picks[0]) == {"chr1"} and ((picks[2] - picks[1]) == 25).all()
    assert_one_line_error(run("select", "biosamples", model_path, store_path, "--assay", "H3K9ac",
                              ok=False), "H3K9ac")
    assert_one_line_error(run("select", "positions", model_path, "--bed", bed, ok=False), "--store")


def test_evaluate_writes_tables_and_resumes(work, store_path):
    out_dir = work / "evaluation"
    args = ["evaluate", store_path, out_dir, "--folds", "2", *TINY, "--epochs", "1", "-q"]
    out = run(*args).output
    assert "average_activity" in out and "avocado" in out
    results = pd.read_csv(out_dir / "evaluation.tsv", sep="\t")
    assert set(results["method"]) == {"avocado", "average_activity", "assay_mean"}
    assert len(results) == 8 * 3
    assert (out_dir / "evaluation.md").is_file() and (out_dir / "evaluation.png").is_file()
    folds = sorted((out_dir / "folds").iterdir())
    assert len(folds) == 2
    mtimes = [f.stat().st_mtime_ns for f in folds]
    run(*args)  # resumes: finished folds are read back, not recomputed
    assert [f.stat().st_mtime_ns for f in folds] == mtimes
    # an ensemble of 2 models per fold is another setting: new folds, another model score
    run(*args, "--models", "2")
    both = pd.read_csv(out_dir / "evaluation.tsv", sep="\t")
    assert len(list((out_dir / "folds").iterdir())) == 4
    pd.testing.assert_frame_equal(both[both["method"] != "avocado"].reset_index(drop=True),
                                  results[results["method"] != "avocado"].reset_index(drop=True))
    assert not np.allclose(both[both["method"] == "avocado"]["mse"],
                           results[results["method"] == "avocado"]["mse"])


# ---------------------------------------------------------------------- serve
def test_serve_answers_http(work, store_path, model_path, data_mirror, monkeypatch):
    from werkzeug.serving import BaseWSGIServer

    ws = work / "ws"
    ws.mkdir()
    shutil.copytree(store_path, ws / "store")
    shutil.copytree(model_path, ws / "model")
    ann = data_mirror / "annotations-hg19"
    seen = {}

    def serve_once(self):  # serve in a thread, fetch the page, stop: as a user would
        thread = threading.Thread(target=original, args=(self,), daemon=True)
        thread.start()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.server_port}/", timeout=30) as r:
            seen["status"], seen["body"] = r.status, r.read().decode()
        self.shutdown()
        thread.join(10)

    original = BaseWSGIServer.serve_forever
    monkeypatch.setattr(BaseWSGIServer, "serve_forever", serve_once)
    out = run("serve", ws, "--port", "0", "--workers", "1",
              "--genes", ann / "gencode.v19.genes.pilot.bed.gz").output
    assert "Created" in out and "Serving the Avocado app at http://127.0.0.1:" in out
    assert seen["status"] == 200 and "<html" in seen["body"].lower()
    assert (ws / "workspace.json").is_file()
    assert "Workspace: " in run("info", ws).output


def test_serve_with_two_workers(work, store_path, model_path, tmp_path):
    """The default where there are cores: gunicorn, each worker with its app; a clean stop."""
    import os
    import re
    import signal
    import subprocess
    import tempfile
    import time

    import psutil

    from avocado_core.workspace import Workspace

    ws = work / "ws-workers"
    ws.mkdir()
    shutil.copytree(store_path, ws / "store")
    shutil.copytree(model_path, ws / "model")
    Workspace.create(ws, genome="hg19")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]),
                                                       *sys.path]))
    server = subprocess.Popen(
        [sys.executable, "-m", "avocado_core", "serve", str(ws), "--port", "0", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+) with 2 worker processes", line)
        assert match, line + server.stdout.read(2000) if server.poll() is not None else line
        url = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + 60
        while len(workers := psutil.Process(server.pid).children()) < 2 \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers) == 2
        for _ in range(6):  # each worker builds its own app when it starts
            with urllib.request.urlopen(f"{url}/locus", timeout=120) as r:
                assert r.status == 200 and "<html" in r.read().decode().lower()
        temp = list(Path(tempfile.gettempdir()).glob(f".avocado-serve.*-{server.pid}-*"))
        assert len(temp) == 1  # the server's one runtime folder (uploads, the job store)
        assert not [p for w in workers for p in Path(tempfile.gettempdir()).glob(
            f"avocado-dash-{w.pid}-*")]  # and no folder of a worker's own
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert server.returncode == 0, out
    assert not [p for p in temp if p.exists()], "temporary folders left after the stop"


def test_serve_errors(work, store_path):
    assert_one_line_error(run("serve", store_path, ok=False), "not a workspace")


# ---------------------------------------------------------------------- features / fetch
def test_features_of_regions(work, store_path, model_path):
    bed = work / "windows.bed"
    bed.write_text("chr1\t151160000\t151161000\ta\nchr1\t151170000\t151170500\tb\nchr2\t1000\t2000\tc\n")
    out = work / "features.tsv"
    text = run("features", model_path, store_path, bed, out, "-e", "E003:H3K4me3", "-q").output
    assert "3 regions (2 covered by the model)" in text
    df = pd.read_csv(out, sep="\t")
    model = Avocado.load(model_path, device="cpu")
    assert list(df["first_bin"]) == [79, 479, -1]
    assert df.loc[2, "E003.H3K4me3"] != df.loc[2, "E003.H3K4me3"]  # NaN
    np.testing.assert_allclose(df.loc[0, "E003.H3K4me3"],
                               model.predict("E003", "H3K4me3")[79:119].mean(), rtol=1e-5)
    n_factors = model.genome_embedding(0, 1).shape[1]
    assert sum(c.startswith("factor_") for c in df.columns) == n_factors


def test_fetch_roadmap_pilot_store(work):
    out = run("fetch", "roadmap-pilot", work / "pilot", "-q").output
    assert "25 observed tracks, 5 biosamples x 5 assays, 1,126,469 bins" in out
    text = run("info", work / "pilot").output
    assert "42 intervals" in text and "E065" in text
    assert_one_line_error(run("fetch", "hg19-annotations", work / "x", ok=False), "PATH")


def test_unexpected_errors_are_one_line_unless_debug(monkeypatch, store_path):
    import avocado_core.cli.info

    def broken(store):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(avocado_core.cli.info, "describe_store", broken)
    assert_one_line_error(run("info", store_path, ok=False),
                          "RuntimeError: disk on fire second line", "--debug")
    result = run("--debug", "info", store_path, ok=False)
    assert isinstance(result.exception, RuntimeError)


def test_a_closed_pipe_is_not_an_error():
    # `avocado info store/ --tracks | head`: the reader leaves early; exit quietly with 0.
    from avocado_core.cli._common import AvocadoGroup

    @click.group(cls=AvocadoGroup)
    def group():
        pass

    @group.command()
    def talk():
        raise BrokenPipeError(32, "Broken pipe")

    result = CliRunner().invoke(group, ["talk"])
    assert result.exit_code == 0
    assert "Error" not in result.output
