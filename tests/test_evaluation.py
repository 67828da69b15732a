"""Held-out evaluation on a tiny planted compendium with a tiny model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avocado_core import evaluation
from avocado_core.baselines import average_activity
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.metrics import score_track
from avocado_core.regions import RegionSet

TINY = {"preset": "small", "n_nodes": 16, "n_biosample_factors": 4, "n_assay_factors": 4,
        "n_25bp_factors": 2, "n_250bp_factors": 2, "n_5kbp_factors": 2, "batch_size": 256}


def _regions(n_bins: int) -> RegionSet:
    return RegionSet.from_chrom_sizes({"chr1": n_bins * 25})


@pytest.fixture(scope="module")
def compendium() -> dict[tuple[str, str], np.ndarray]:
    """6 biosamples in 2 planted groups x 3 assays over 2,000 positions.

    Each group has its own position pattern; an assay scales and shifts it. Imputing (b, a)
    well needs b's group, learnt from b's other assays: average activity mixes both groups.
    """
    rng = np.random.default_rng(0)
    n = 2000
    patterns = np.cumsum(rng.normal(size=(2, n)), axis=1)
    patterns = (patterns - patterns.mean(1, keepdims=True)) / patterns.std(1, keepdims=True)
    scale, shift = np.array([1.5, 1.0, 2.0]), np.array([0.0, 0.5, -0.5])
    tracks = {}
    for i in range(6):
        for j in range(3):
            signal = np.log1p(np.exp(scale[j] * patterns[i % 2] + shift[j]))
            tracks[f"B{i}", f"A{j}"] = (signal + 0.05 * rng.normal(size=n)).astype(np.float32)
    return tracks


def test_make_folds_latin_square_on_a_complete_grid():
    exps = [(f"E{b}", f"M{a}") for b in range(5) for a in range(5)]
    folds = evaluation.make_folds(exps, 5, seed=3)
    assert sorted(e for f in folds for e in f) == sorted(exps)
    for f in folds:
        assert len(f) == 5
        assert len({b for b, _ in f}) == 5 and len({a for _, a in f}) == 5
    assert evaluation.make_folds(exps, 5, seed=3) == folds  # deterministic
    loo = evaluation.make_folds(exps, None)
    assert len(loo) == 25 and all(len(f) == 1 for f in loo)


def test_make_folds_sparse_grid_keeps_training_experiments():
    rng = np.random.default_rng(0)
    exps = [(f"E{b}", f"M{a}") for b in range(8) for a in range(6) if rng.random() < 0.5]
    exps += [(f"E{b}", "M0") for b in range(8)] + [("E0", f"M{a}") for a in range(6)]
    exps = sorted(set(exps))
    folds = evaluation.make_folds(exps, 4, seed=1)
    assert sorted(e for f in folds for e in f) == exps
    for f in folds:
        train = set(exps) - set(f)
        assert {b for b, _ in train} == {b for b, _ in exps}
        assert {a for _, a in train} == {a for _, a in exps}
    with pytest.raises(AvocadoValueError, match=r"\('E9', 'M9'\)"):
        evaluation.make_folds(exps + [("E9", "M9")], 4)
    with pytest.raises(AvocadoValueError, match="n_folds=1"):
        evaluation.make_folds(exps, 1)


def test_cross_validate_scores_resumes_and_summarizes(compendium, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    res = evaluation.cross_validate(compendium, n_folds=3, config=TINY, n_epochs=2,
                                    cache_dir=cache, progress=False)
    assert len(res) == 18 * 3
    assert set(res["method"]) == {"avocado", "average_activity", "assay_mean"}
    assert (res.groupby("method").size() == 18).all()
    varying = res[res["method"] != "assay_mean"]
    assert varying[["mse", "pearson", "aucobs1"]].notna().all().all()
    # a constant prediction has no correlation: NaN, not a made-up number
    assert res[res["method"] == "assay_mean"]["pearson"].isna().all()
    assert len(list(cache.glob("fold*.tsv"))) == 3

    # the baseline rows are the baseline scored against the truth, trained without the fold
    row = res[(res["method"] == "average_activity")].iloc[0]
    fold = res[res["fold"] == row["fold"]][["biosample", "assay"]].drop_duplicates()
    held = set(map(tuple, fold.to_numpy()))
    train = {k: v for k, v in compendium.items() if k not in held}
    want = score_track(compendium[row["biosample"], row["assay"]],
                       average_activity(train, row["biosample"], row["assay"]))
    assert row["mse"] == pytest.approx(want["mse"], rel=1e-5)
    assert row["pearson"] == pytest.approx(want["pearson"], rel=1e-5)

    # a rerun reads every finished fold and trains nothing
    from avocado_core.model import Avocado

    def boom(*args, **kwargs):
        raise AssertionError("a cached fold was retrained")

    monkeypatch.setattr(Avocado, "fit", boom)
    again = evaluation.cross_validate(compendium, n_folds=3, config=TINY, n_epochs=2,
                                      cache_dir=cache, progress=False)
    pd.testing.assert_frame_equal(res, again, check_dtype=False)
    # other settings are a different cache key: they would retrain
    with pytest.raises(AssertionError, match="retrained"):
        evaluation.cross_validate(compendium, n_folds=3, config=TINY, n_epochs=3,
                                  cache_dir=cache, progress=False)
    monkeypatch.undo()

    md = evaluation.summarize(res, command="python -m avocado_core.evaluation --pilot")
    assert md.startswith("<!-- python -m avocado_core.evaluation --pilot -->")
    wins, n = evaluation._wins(res, "average_activity", "mse")
    assert f"| average_activity | {wins}/{n} |" in md and n == 18
    assert "### Mean per assay" in md and "| A2 |" in md
    png = evaluation.plot_evaluation(res, tmp_path / "eval.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_model_learns_the_planted_structure(compendium, tmp_path):
    res = evaluation.evaluate_to_dir(
        compendium, tmp_path, n_folds=3, config=dict(TINY, learning_rate=0.01), n_epochs=20,
        progress=False)
    means = res.groupby("method")[["mse", "pearson"]].mean()
    # measured: model MSE 0.14, r 0.88; average activity 0.22, 0.81; assay mean 0.59
    assert means.loc["avocado", "mse"] < means.loc["average_activity", "mse"]
    assert means.loc["avocado", "mse"] < means.loc["assay_mean", "mse"]
    assert means.loc["avocado", "pearson"] > means.loc["average_activity", "pearson"]
    assert {p.name for p in tmp_path.iterdir()} == {"evaluation.tsv", "evaluation.md",
                                                     "evaluation.png"}
    assert len(pd.read_csv(tmp_path / "evaluation.tsv", sep="\t")) == 18 * 3


def test_errors(compendium):
    with pytest.raises(AvocadoKeyError, match="median"):
        evaluation.cross_validate(compendium, baselines=["median"], progress=False)
    with pytest.raises(AvocadoValueError, match="lengths"):
        evaluation.cross_validate({**compendium, ("B0", "A9"): np.zeros(5)}, progress=False)
    with pytest.raises(AvocadoValueError, match="config='huge'"):
        evaluation.cross_validate(compendium, n_folds=3, config="huge", progress=False)


def test_the_cli_records_the_command_without_the_notes(compendium, tmp_path, monkeypatch):
    """``avocado evaluate`` is the one command line (``python -m avocado_core.evaluation`` is
    gone): the model options, ``--average-from`` and ``--cache`` reach ``cross_validate``."""
    import sys

    from click.testing import CliRunner

    from avocado_core.cli import evaluate as cli_evaluate
    from avocado_core.cli import main
    from avocado_core.store import TrackStore

    assert not hasattr(evaluation, "main")
    store = TrackStore.create(tmp_path / "store", _regions(2000))
    store.add_tracks((b, a, v) for (b, a), v in compendium.items())
    seen = {}
    done = pd.DataFrame({"method": ["avocado"], "mse": [0.1], "pearson": [0.5]})
    monkeypatch.setattr(evaluation, "evaluate_to_dir",
                        lambda data, out, **kw: seen.update(kw) or done)
    argv = ["evaluate", str(tmp_path / "store"), "results", "--epochs", "3", "--batch-size",
            "40000", "--average-from", "1", "--cache", "cache", "--notes",
            "A paragraph.\n\nAnother one.", "-q"]
    monkeypatch.setattr(sys, "argv", ["avocado", *argv])  # as run from the shell
    result = CliRunner().invoke(main, argv, env={"AVOCADO_DEBUG": "1"})
    assert result.exit_code == 0, result.output
    assert seen["command"] == cli_evaluate.command_line(argv) == (
        f"avocado evaluate {tmp_path / 'store'} results --epochs 3 --batch-size 40000 "
        "--average-from 1 --cache cache -q")
    assert seen["notes"] == "A paragraph.\n\nAnother one."
    assert seen["config"] == {"preset": "small", "batch_size": 40000}
    assert seen["fit_kwargs"] == {"sampling": "sequential", "average_from": 1}
    assert seen["n_epochs"] == 3 and str(seen["cache_dir"]) == "cache"
