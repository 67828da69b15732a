"""Held-out evaluation on a tiny planted compendium with a tiny model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from avocado_core import evaluation
from avocado_core.baselines import average_activity, windowed_mean
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.evaluation import nested, reports
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
                                    cache_dir=cache, progress=False, device="cpu")
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
                                      cache_dir=cache, progress=False, device="cpu")
    pd.testing.assert_frame_equal(res, again, check_dtype=False)
    # other settings are a different cache key: they would retrain
    with pytest.raises(AssertionError, match="retrained"):
        evaluation.cross_validate(compendium, n_folds=3, config=TINY, n_epochs=3,
                                  cache_dir=cache, progress=False, device="cpu")
    # and so are other values in the same tracks (same names, same length): a rerun over
    # changed data never reuses stale folds
    changed = dict(compendium)
    key = next(iter(changed))
    changed[key] = changed[key].copy()
    changed[key][7] += 0.5
    with pytest.raises(AssertionError, match="retrained"):
        evaluation.cross_validate(changed, n_folds=3, config=TINY, n_epochs=2,
                                  cache_dir=cache, progress=False, device="cpu")
    monkeypatch.undo()

    md = evaluation.summarize(res, command="python -m avocado_core.evaluation --pilot")
    assert md.startswith("<!-- python -m avocado_core.evaluation --pilot -->")
    wins, n = reports.wins(res, "average_activity", "mse")
    assert f"| average_activity | {wins}/{n} |" in md and n == 18
    assert "### Mean per assay" in md and "| A2 |" in md
    top = md.split("### Top 1% of bins per assay")[1].split("###")[0]
    a2 = res[res["assay"] == "A2"].groupby("method")[["mse1obs", "match1"]].mean()
    model, base = a2.loc["avocado", "mse1obs"], a2.loc["average_activity", "mse1obs"]
    assert f"| A2 | {model:.4f} | {base:.4f}" in top
    assert f"{a2.loc['average_activity', 'match1']:.4f} |" in top
    png = evaluation.plot_evaluation(res, tmp_path / "eval.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_model_learns_the_planted_structure(compendium, tmp_path):
    res = evaluation.evaluate_to_dir(
        compendium, tmp_path, n_folds=3, config=dict(TINY, learning_rate=0.01), n_epochs=20,
        progress=False, device="cpu")
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
        evaluation.cross_validate(compendium, baselines=["median"], progress=False, device="cpu")
    with pytest.raises(AvocadoValueError, match="lengths"):
        evaluation.cross_validate({**compendium, ("B0", "A9"): np.zeros(5)}, progress=False,
                                  device="cpu")
    with pytest.raises(AvocadoValueError, match="config='huge'"):
        evaluation.cross_validate(compendium, n_folds=3, config="huge", progress=False,
                                  device="cpu")


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
    assert seen["fit_kwargs"] == {"sampling": "sequential", "average_from": 1,
                                  "choose_settings": True}
    assert seen["n_epochs"] == 3 and str(seen["cache_dir"]) == "cache"


def test_nested_selection_chooses_on_training_tracks_only(compendium, tmp_path, monkeypatch):
    config = dict(TINY, learning_rate=0.01)
    select = {"n_epochs": [1, 20]}
    res = evaluation.cross_validate(compendium, n_folds=3, config=config, n_epochs=5,
                                    select=select, cache_dir=tmp_path / "c", progress=False,
                                    device="cpu")
    model = res[res["method"] == "avocado"]
    # one epoch is far from trained (measured validation MSE ~0.9 against ~0.15): every fold
    # chooses 20, and the held-out rows are those of a plain 20-epoch run
    assert set(model["selected"]) == {'{"n_epochs": 20}'}
    grid = res.attrs["selection"]
    assert len(grid) == 3 * 2 and set(grid["fold"]) == {0, 1, 2}
    for f, g in grid.groupby("fold"):
        best = g.loc[g["val_mse"].idxmin()]
        assert best["params"] == '{"n_epochs": 20}'
        assert model[model["fold"] == f]["val_mse"].iloc[0] == pytest.approx(best["val_mse"])
    # the selection alone: the same scores from one model per candidate and split (no final
    # model trains), and a summary that ranks the candidates
    fits = []
    real_fit = nested.fit_models

    def counted_fit(*args, **kwargs):
        fits.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(nested, "fit_models", counted_fit)
    alone = evaluation.nested_selection(compendium, select, n_folds=3, config=config, n_epochs=5,
                                        cache_dir=tmp_path / "s", progress=False, device="cpu")
    monkeypatch.undo()
    assert len(fits) == 3 * 2
    pd.testing.assert_frame_equal(alone, grid, check_dtype=False)
    study = evaluation.summarize_selection(alone, command="avocado evaluate --selection-only")
    assert study.startswith("<!-- avocado evaluate --selection-only -->")
    ranked = study.split("### Every candidate")[1]
    assert ranked.index('{"n_epochs": 20}') < ranked.index('{"n_epochs": 1}')
    plain = evaluation.cross_validate(compendium, n_folds=3, config=config, n_epochs=20,
                                      fit_kwargs={"choose_settings": False}, progress=False,
                                      device="cpu")
    mine = model.set_index(["biosample", "assay"])["mse"].sort_index()
    theirs = plain[plain["method"] == "avocado"].set_index(["biosample", "assay"])["mse"]
    np.testing.assert_allclose(mine, theirs.sort_index(), rtol=1e-6)

    # the held-out tracks choose nothing: corrupting fold 0's held-out tracks leaves fold 0's
    # validation scores exactly as they were
    fold0 = evaluation.make_folds(compendium.keys(), 3, seed=0)[0]
    corrupt = {k: (-5 * v if k in fold0 else v) for k, v in compendium.items()}
    again = evaluation.cross_validate(corrupt, n_folds=3, config=config, n_epochs=5,
                                      select=select, progress=False, device="cpu")
    g0, h0 = grid[grid["fold"] == 0], again.attrs["selection"]
    pd.testing.assert_frame_equal(g0.reset_index(drop=True),
                                  h0[h0["fold"] == 0].reset_index(drop=True))

    # a rerun resumes with the selection, and the summary reports it
    cached = evaluation.cross_validate(compendium, n_folds=3, config=config, n_epochs=5,
                                       select=select, cache_dir=tmp_path / "c", progress=False,
                                       device="cpu")
    pd.testing.assert_frame_equal(cached.attrs["selection"], grid, check_dtype=False)
    # an ensemble run reuses the single-model run's selection: only the final models train
    def no_selection(*args, **kwargs):
        raise AssertionError("the selection was run again")

    monkeypatch.setattr(nested, "select_hyperparameters", no_selection)
    ensemble = evaluation.cross_validate(compendium, n_folds=3, config=config, n_epochs=5,
                                         select=select, n_models=2, cache_dir=tmp_path / "c",
                                         progress=False, device="cpu")
    assert set(ensemble[ensemble["method"] == "avocado"]["selected"]) == {'{"n_epochs": 20}'}
    # and so does a full run after the selection alone
    after = evaluation.cross_validate(compendium, n_folds=3, config=config, n_epochs=5,
                                      select=select, cache_dir=tmp_path / "s", progress=False,
                                      device="cpu")
    pd.testing.assert_frame_equal(
        after[after["method"] == "avocado"].drop(columns="train_seconds").reset_index(drop=True),
        model.drop(columns="train_seconds").reset_index(drop=True))
    # so does a run with other baselines (they choose nothing)
    other = evaluation.cross_validate(compendium, n_folds=3, config=config, n_epochs=5,
                                      select=select, cache_dir=tmp_path / "c", progress=False,
                                      baselines=["smoothed_average_activity"], device="cpu")
    assert set(other["method"]) == {"avocado", "smoothed_average_activity"}
    pd.testing.assert_frame_equal(  # the same models (retrained: the fold files differ)
        other[other["method"] == "avocado"].drop(columns="train_seconds").reset_index(drop=True),
        model.drop(columns="train_seconds").reset_index(drop=True))
    monkeypatch.undo()
    md = evaluation.summarize(res)
    assert "### Nested model selection" in md and '{"n_epochs": 20}' in md
    assert "| mse |" not in md.split("### Nested")[1].split("###")[0]  # not a metric column


def test_selection_grid_and_errors():
    grid = evaluation.candidates({"biosample_decay": [0, 0.1], "average_from": [5, 10]})
    assert grid == [{"biosample_decay": 0, "average_from": 5},
                    {"biosample_decay": 0, "average_from": 10},
                    {"biosample_decay": 0.1, "average_from": 5},
                    {"biosample_decay": 0.1, "average_from": 10}]
    assert evaluation.candidates(None) == [{}]
    with pytest.raises(AvocadoKeyError, match="cannot select \\['n_epoch'\\]"):
        evaluation.candidates({"n_epoch": [1]})
    with pytest.raises(AvocadoValueError, match="non-empty list"):
        evaluation.candidates({"n_epochs": []})
    cfg, epochs, fit = nested.apply_candidate(
        "small", 10, {"sampling": "random"},
        {"n_epochs": 30, "average_from": 5, "average_activity": "residual"})
    assert cfg == {"preset": "small", "average_activity": "residual"} and epochs == 30
    assert fit == {"sampling": "random", "average_from": 5}


def test_blend_candidates_share_one_trained_model(compendium, monkeypatch):
    from avocado_core.model import Avocado

    fits = []
    original = Avocado.fit

    def counting(self, *args, **kwargs):
        fits.append(self.config["activity_blend"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Avocado, "fit", counting)
    train = dict(list(compendium.items())[:15])  # B0..B4 x A0..A2
    config = dict(TINY, average_activity="input")
    best, scores = evaluation.select_hyperparameters(
        train, {"activity_blend": [0.0, 0.5, 1.0]}, config, n_epochs=2, inner_folds=3, seed=1,
        device="cpu")
    assert len(fits) == 1  # one model, three blends
    # a blend of 1 predicts average activity of the inner training tracks: a known answer
    val = evaluation.make_folds(train.keys(), 3, seed=1)[0]
    inner = {k: v for k, v in train.items() if k not in set(val)}
    want = np.mean([np.mean((average_activity(inner, *k).astype(np.float64) - train[k]) ** 2)
                    for k in val])
    assert scores["val_mse"].iloc[2] == pytest.approx(want, rel=1e-5)
    assert best == {"activity_blend": [0.0, 0.5, 1.0][int(scores["val_mse"].argmin())]}


def test_smoothing_candidates_share_one_trained_model(compendium, monkeypatch):
    from avocado_core.model import Avocado

    fits, models = [], []
    original = Avocado.fit

    def counting(self, *args, **kwargs):
        fits.append(self.config["smoothing"])
        models.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Avocado, "fit", counting)
    train = dict(list(compendium.items())[:15])
    best, scores = evaluation.select_hyperparameters(
        train, {"smoothing": [1, 5]}, TINY, n_epochs=2, inner_folds=3, seed=1, device="cpu")
    assert fits == [1]  # one model, two smoothings
    # known answer: the second candidate scores the moving mean of the first one's imputations
    model = models[0]
    model.smoothing = 1
    val = evaluation.make_folds(train.keys(), 3, seed=1)[0]
    want = np.mean([np.mean((windowed_mean(model.predict(*k), 5).astype(np.float64)
                             - train[k]) ** 2) for k in val])
    assert scores["val_mse"].iloc[1] == pytest.approx(want, rel=1e-5)
    assert best == {"smoothing": [1, 5][int(scores["val_mse"].argmin())]}


def test_validation_folds_keep_a_lonely_experiment_in_training():
    """An evaluation must hold every experiment out, so a lonely one is refused; validation
    folds (a fit's choice, nested selection) leave it in every training set instead."""
    from avocado_core.folds import validation_folds

    exps = [(f"E{i}", f"M{j}") for i in range(4) for j in range(3)] + [("E9", "M0")]
    with pytest.raises(AvocadoValueError, match=r"\('E9', 'M0'\)"):
        evaluation.make_folds(exps, 3)
    folds = validation_folds(exps, 3, 3, seed=0)
    held = [e for f in folds for e in f]
    assert sorted(held) == sorted(exps[:-1]) and len(held) == len(set(held))
    for f in folds:
        train = set(exps) - set(f)
        assert {b for b, _ in train} == {b for b, _ in exps}
        assert {a for _, a in train} == {a for _, a in exps}
    # with no lonely experiment, the folds are those of make_folds (one random draw)
    assert validation_folds(exps[:-1], 3, 3, seed=0) == evaluation.make_folds(exps[:-1], 3)
