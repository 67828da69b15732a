"""Prediction settings per biosample: ``Avocado(biosample_settings=...)`` and their selection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from avocado_core import Avocado, evaluation
from avocado_core.baselines import average_activity, windowed_mean
from avocado_core.cli import main
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.evaluation import nested
from planted import mean_of_others

B, A, N = ["B0", "B1", "B2"], ["A0", "A1"], 1000
TINY = {"preset": "small", "n_nodes": 16, "n_biosample_factors": 4, "n_assay_factors": 4,
        "n_25bp_factors": 2, "n_250bp_factors": 2, "n_5kbp_factors": 2, "batch_size": 256,
        "average_activity": "input"}


@pytest.fixture(scope="module")
def data() -> dict[tuple[str, str], np.ndarray]:
    rng = np.random.default_rng(0)
    return {(b, a): rng.gamma(1.0, 1.0, N).astype(np.float32) for b in B for a in A
            if (b, a) != ("B2", "A1")}


@pytest.fixture(scope="module")
def model(data) -> Avocado:
    m = Avocado.small(B, A, N, n_nodes=16, batch_size=200, seed=0, device="cpu",
                      average_activity="input", activity_blend=0.25)
    m.fit(data, n_epochs=2, progress=False, choose_settings=False)
    return m


def test_each_biosample_is_imputed_with_its_own_settings(model, data, tmp_path):
    pairs = [("B2", "A1"), ("B0", "A1"), ("B1", "A0")]
    plain = model.predict_many(pairs)
    model.biosample_settings = {"B2": {"activity_blend": 1.0, "smoothing": 5},
                                "B1": {"smoothing": 3}}
    try:
        mixed = model.predict_many(pairs)
        # known answer: a blend of 1 imputes average activity (the mean of A1's training
        # tracks), here smoothed over 5 bins
        mean_a1 = np.mean([data["B0", "A1"], data["B1", "A1"]], axis=0)
        np.testing.assert_allclose(mixed[0], windowed_mean(mean_a1, 5), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(mixed[1], plain[1])  # B0: the model's own settings
        np.testing.assert_allclose(mixed[2], windowed_mean(plain[2], 3), rtol=1e-5, atol=1e-6)
        # one pair alone, or a range of it, gives the same values
        np.testing.assert_allclose(model.predict("B1", "A0", 100, 300), mixed[2, 100:300],
                                   rtol=1e-6)
        model.save(tmp_path / "m")
        loaded = Avocado.load(tmp_path / "m", device="cpu")
        assert loaded.biosample_settings == {"B2": {"activity_blend": 1.0, "smoothing": 5},
                                             "B1": {"smoothing": 3}}
        np.testing.assert_array_equal(loaded.predict_many(pairs), mixed)
    finally:
        model.biosample_settings = None
    np.testing.assert_array_equal(model.predict_many(pairs), plain)


def test_several_settings_from_one_pass_equal_predict(model):
    grid = [{}, {"activity_blend": 0.5}, {"smoothing": 7}, {"activity_blend": 1.0, "smoothing": 3}]
    model.biosample_settings = {"B2": {"smoothing": 5}}
    try:
        many = model.predict_settings("B2", "A1", grid)
        assert many.shape == (4, N) and many.dtype == np.float32
        for entry, got in zip(grid, many):
            saved = model.activity_blend, model.biosample_settings
            # what an entry leaves out is the biosample's own setting (smoothing 5 for B2)
            model.activity_blend = entry.get("activity_blend", model.activity_blend)
            model.biosample_settings = {"B2": {"smoothing": entry.get("smoothing", 5)}}
            np.testing.assert_array_equal(got, model.predict("B2", "A1"))
            # over part of the positions: the same values, to float32 rounding (the moving
            # mean reads past the ends of the range, as predict's does)
            part = model.predict_settings("B2", "A1", [entry], 100, 400)[0]
            np.testing.assert_allclose(part, got[100:400], rtol=1e-6, atol=1e-6)
            model.activity_blend, model.biosample_settings = saved
    finally:
        model.biosample_settings = None
    with pytest.raises(AvocadoValueError, match="expected a dict with some of activity_blend"):
        model.predict_settings("B2", "A1", [{"blend": 1}])
    with pytest.raises(AvocadoValueError, match="smoothing must be a whole number"):
        model.predict_settings("B2", "A1", [{"smoothing": 0}])
    with pytest.raises(AvocadoValueError, match="at least one settings entry"):
        model.predict_settings("B2", "A1", [])


@pytest.mark.parametrize("settings, error, message", [
    ({"B9": {"smoothing": 3}}, AvocadoKeyError, "unknown biosample 'B9'"),
    ({"B0": {"blend": 0.5}}, AvocadoValueError, "expected a dict with some of activity_blend"),
    ({"B0": {}}, AvocadoValueError, "expected a dict with some of"),
    ({"B0": {"smoothing": 0}}, AvocadoValueError, "smoothing must be a whole number"),
    ({"B0": {"activity_blend": 1.5}}, AvocadoValueError, r"activity_blend must be in \[0, 1\]"),
    ([("B0", 3)], AvocadoValueError, "must be a dict of biosample -> settings"),
])
def test_bad_biosample_settings_are_refused(settings, error, message):
    with pytest.raises(error, match=message):
        Avocado.small(B, A, N, average_activity="input", biosample_settings=settings)


def test_a_blend_needs_average_activity_for_one_biosample_too():
    with pytest.raises(AvocadoValueError, match="needs average_activity"):
        Avocado.small(B, A, N, average_activity=None,
                      biosample_settings={"B0": {"activity_blend": 0.5}})


def test_choice_per_biosample_among_candidates_of_the_best_model():
    rows = [  # two trained models (average_from 2 or 5), two blends each
        ({"average_from": 2, "activity_blend": 0.0}, 0.30, {"X": 0.20, "Y": 0.40}),
        ({"average_from": 2, "activity_blend": 0.5}, 0.25, {"X": 0.30, "Y": 0.20}),
        ({"average_from": 5, "activity_blend": 0.0}, 0.27, {"X": 0.10, "Y": 0.44}),
        ({"average_from": 5, "activity_blend": 0.5}, 0.26, {"X": 0.12, "Y": 0.40}),
    ]
    scores = pd.DataFrame({"params": [json.dumps(p, sort_keys=True) for p, _, _ in rows],
                           "val_mse": [v for _, v, _ in rows],
                           "val_mse_by_biosample": [json.dumps(b) for _, _, b in rows]})
    assert nested.choose(scores, per_biosample=False) == rows[1][0]
    # X is best with average_from 5, but the fold trains one model: X chooses among the
    # blends of the best candidate's model (average_from 2)
    assert nested.choose(scores, per_biosample=True) == {
        **rows[1][0], "biosample_settings": {"X": {"activity_blend": 0.0},
                                             "Y": {"activity_blend": 0.5}}}


@pytest.fixture(scope="module")
def compendium() -> dict[tuple[str, str], np.ndarray]:
    """5 biosamples x 3 assays; B4's tracks are the mean of the others' (average activity's)."""
    return mean_of_others(1500)


def test_per_biosample_selection_scores_each_biosample_on_its_own_tracks(compendium,
                                                                       monkeypatch):
    models = []
    original = Avocado.fit

    def keep(self, *args, **kwargs):
        models.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Avocado, "fit", keep)
    select = {"activity_blend": [0.0, 1.0], "smoothing": [1, 5]}
    best, scores = evaluation.select_hyperparameters(
        compendium, select, TINY, n_epochs=3, inner_folds=3, inner_splits=3, seed=1,
        per_biosample=True, device="cpu")
    assert len(models) == 3  # one model per inner split, scored with all four settings
    # known answer: with a blend of 1 (no smoothing) each biosample's validation MSE is that
    # of average activity over the inner training tracks, on its own validation tracks
    splits = evaluation.make_folds(compendium.keys(), 3, seed=1)
    errors: dict[str, list[float]] = {}
    for val in splits:
        inner = {k: v for k, v in compendium.items() if k not in set(val)}
        for b, a in val:
            d = average_activity(inner, b, a).astype(np.float64) - compendium[b, a]
            errors.setdefault(b, []).append(float(np.mean(d ** 2)))
    by = json.loads(scores.set_index("params").loc[
        json.dumps({"activity_blend": 1.0, "smoothing": 1}, sort_keys=True),
        "val_mse_by_biosample"])
    assert set(by) == {f"B{i}" for i in range(5)}  # every biosample validated
    for b, e in errors.items():
        assert by[b] == pytest.approx(np.mean(e), rel=1e-5)
    # each biosample's settings are its own best among the four
    table = {json.dumps({k: p[k] for k in ("activity_blend", "smoothing")}):
             json.loads(v) for p, v in zip(map(json.loads, scores["params"]),
                                           scores["val_mse_by_biosample"])}
    for b, settings in best["biosample_settings"].items():
        mine = table[json.dumps(settings)][b]
        assert mine == min(t[b] for t in table.values())
    # B4 is the others' mean: average activity (blend 1) imputes it best
    assert best["biosample_settings"]["B4"]["activity_blend"] == 1.0


def test_cross_validation_trains_the_final_model_with_the_per_biosample_choice(
        compendium, tmp_path):
    select = {"activity_blend": [0.0, 1.0]}
    res = evaluation.cross_validate(compendium, n_folds=3, config=TINY, n_epochs=3,
                                    select=select, inner_folds=3, inner_splits=3,
                                    per_biosample=True, cache_dir=tmp_path / "c",
                                    baselines=["average_activity"], progress=False, device="cpu")
    model = res[res["method"] == "avocado"]
    aa = res[res["method"] == "average_activity"].set_index(["biosample", "assay"])["mse"]
    for _, row in model.iterrows():
        chosen = json.loads(row["selected"])
        settings = chosen["biosample_settings"]
        assert set(settings) == {f"B{i}" for i in range(5)}
        if settings[row["biosample"]]["activity_blend"] == 1.0:
            # the held-out track was imputed by average activity of the fold's training tracks
            assert row["mse"] == pytest.approx(aa[row["biosample"], row["assay"]], rel=1e-5)
    # the selection alone, from the same cache, reports the same choices
    alone = evaluation.nested_selection(compendium, select, n_folds=3, config=TINY, n_epochs=3,
                                        inner_folds=3, inner_splits=3, per_biosample=True,
                                        cache_dir=tmp_path / "c", progress=False, device="cpu")
    per_fold = alone.attrs["biosample_settings"]
    for f, g in model.groupby("fold"):
        assert per_fold[f] == json.loads(g["selected"].iloc[0])["biosample_settings"]
    md = evaluation.summarize_selection(alone)
    assert "### Prediction settings chosen per biosample" in md and "| 2 | B4 |" in md
    # with one inner split of 3, some biosamples have no validation track: said, not hidden
    with pytest.warns(UserWarning, match="1 of 5 inner splits validate.*have no validation track"):
        best, _ = evaluation.select_hyperparameters(
            {k: v for k, v in compendium.items() if k[1] != "A2"}, select, TINY, n_epochs=1,
            inner_folds=5, inner_splits=1, per_biosample=True, device="cpu")
    assert 0 < len(best["biosample_settings"]) < 5
    with pytest.raises(AvocadoValueError, match="select candidate values of at least one"):
        evaluation.cross_validate(compendium, n_folds=3, config=TINY, n_epochs=1,
                                  select={"n_epochs": [1]}, per_biosample=True, progress=False,
                                  device="cpu")


def test_cli_trains_with_per_biosample_settings(tmp_path):
    from avocado_core import TrackStore

    rng = np.random.default_rng(2)
    store = TrackStore.create(tmp_path / "store", _regions(600))
    for b in B:
        for a in A:
            store.add_track(b, a, rng.gamma(1.0, 1.0, 600).astype(np.float32))
    runner = CliRunner()
    args = ["train", str(tmp_path / "store"), str(tmp_path / "model"), "--epochs", "1",
            "--device", "cpu", "--n-nodes", "8", "--batch-size", "100", "--average-activity",
            "input",
            "--biosample-setting", "B1:activity-blend=0.75", "--biosample-setting",
            "B1:smoothing=5", "--no-choose", "--quiet"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    loaded = Avocado.load(tmp_path / "model", device="cpu")
    assert loaded.biosample_settings == {"B1": {"activity_blend": 0.75, "smoothing": 5}}
    info = runner.invoke(main, ["info", str(tmp_path / "model"), "--json"])
    assert json.loads(info.output)["config"]["biosample_settings"] == {
        "B1": {"activity_blend": 0.75, "smoothing": 5}}
    bad = runner.invoke(main, [*args[:-6], "--biosample-setting", "B1:blend=1", "--overwrite"])
    assert bad.exit_code == 2
    assert "expected BIOSAMPLE:NAME=VALUE with NAME one of activity-blend, smoothing" in \
        bad.output


def _regions(n_bins: int):
    from avocado_core.regions import RegionSet

    return RegionSet.from_chrom_sizes({"chr1": n_bins * 25})


def test_choice_by_another_metric_on_a_hand_made_table():
    rows = [  # one trained model, two blends; Match1 is higher-is-better
        ({"activity_blend": 0.0}, 0.30, 0.40, {"X": 0.50, "Y": 0.30}),
        ({"activity_blend": 0.5}, 0.25, 0.35, {"X": 0.20, "Y": 0.50}),
    ]
    scores = pd.DataFrame({"params": [json.dumps(p, sort_keys=True) for p, *_ in rows],
                           "val_mse": [v for _, v, _, _ in rows],
                           "val_match1": [m for _, _, m, _ in rows],
                           "val_match1_by_biosample": [json.dumps(b) for *_, b in rows]})
    assert nested.choose(scores, False) == rows[1][0]  # the lower MSE
    assert nested.choose(scores, False, "match1") == rows[0][0]  # the higher Match1
    assert nested.choose(scores, True, "match1")["biosample_settings"] == {
        "X": {"activity_blend": 0.0}, "Y": {"activity_blend": 0.5}}
    best, every = evaluation.summarize_selection(scores.assign(fold=0)).split(
        "### Every candidate, by mean validation Match1 over the folds")
    assert '| 0 | {"activity_blend": 0.0} | 0.4000 |' in best  # the fold's best: the highest
    assert every.index('{"activity_blend": 0.0}') < every.index('{"activity_blend": 0.5}')


def test_selection_by_the_peaks_scores_every_candidate_with_mse1obs(compendium):
    from avocado_core.metrics import mse1obs, pearson

    select = {"activity_blend": [0.0, 1.0]}
    best, scores = evaluation.select_hyperparameters(
        compendium, select, TINY, n_epochs=2, inner_folds=3, inner_splits=3, seed=1,
        per_biosample=True, select_by="mse1obs", device="cpu")
    # known answer: a blend of 1 imputes average activity of the inner training tracks
    peaks: dict[str, list[float]] = {}
    for val in evaluation.make_folds(compendium.keys(), 3, seed=1):
        inner = {k: v for k, v in compendium.items() if k not in set(val)}
        for b, a in val:
            peaks.setdefault(b, []).append(mse1obs(compendium[b, a],
                                                   average_activity(inner, b, a)))
    table = scores.set_index("params")
    row = table.loc[json.dumps({"activity_blend": 1.0})]
    assert row["val_mse1obs"] == pytest.approx(np.mean(sum(peaks.values(), [])), rel=1e-5)
    by = json.loads(row["val_mse1obs_by_biosample"])
    for b, values in peaks.items():
        assert by[b] == pytest.approx(np.mean(values), rel=1e-5)
    assert {"val_mse", "val_mse_by_biosample"} <= set(scores.columns)  # MSE is kept
    # the choice, overall and per biosample, is the lower MSE1obs
    assert best["activity_blend"] == [0.0, 1.0][int(scores["val_mse1obs"].argmin())]
    per_b = [json.loads(v) for v in scores["val_mse1obs_by_biosample"]]
    for b, settings in best["biosample_settings"].items():
        assert settings["activity_blend"] == [0.0, 1.0][int(np.argmin([t[b] for t in per_b]))]
    # Pearson: higher is better
    best, scores = evaluation.select_hyperparameters(
        compendium, select, TINY, n_epochs=2, inner_folds=3, seed=1, select_by="pearson",
        device="cpu")
    assert best == {"activity_blend": [0.0, 1.0][int(scores["val_pearson"].argmax())]}
    val = evaluation.make_folds(compendium.keys(), 3, seed=1)[0]
    inner = {k: v for k, v in compendium.items() if k not in set(val)}
    assert scores["val_pearson"].iloc[1] == pytest.approx(np.mean(
        [pearson(compendium[k], average_activity(inner, *k)) for k in val]), rel=1e-5)


def test_a_bad_selection_metric_fails_before_any_training(compendium, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(Avocado, "fit", no_training)
    with pytest.raises(AvocadoValueError,
                       match="select_by='mse1imp'; expected one of mse, pearson, mse1obs"):
        evaluation.cross_validate(compendium, n_folds=3, config=TINY, select={
            "activity_blend": [0.0, 1.0]}, select_by="mse1imp", progress=False, device="cpu")


def test_cli_evaluates_with_a_selection_by_the_peaks(compendium, tmp_path):
    from avocado_core import TrackStore
    from avocado_core.cli.evaluate import evaluate as command

    option = next(p for p in command.params if p.name == "select_by")
    assert list(option.type.choices) == list(evaluation.SELECTION_METRICS)
    store = TrackStore.create(tmp_path / "store", _regions(1500))
    for (b, a), y in compendium.items():
        store.add_track(b, a, y)
    runner = CliRunner()
    args = ["evaluate", str(tmp_path / "store"), str(tmp_path / "out"), "--folds", "3",
            "--inner-folds", "3", "--epochs", "1", "--n-nodes", "8", "--batch-size", "300",
            "--average-activity", "input", "--select", "activity-blend=0,1", "--device", "cpu",
            "--quiet"]
    result = runner.invoke(main, [*args, "--select-by", "mse1obs"])
    assert result.exit_code == 0, result.output
    res = pd.read_csv(tmp_path / "out" / "evaluation.tsv", sep="\t")
    model = res[res["method"] == "avocado"]
    assert model["val_mse1obs"].notna().all() and "val_mse" not in res
    md = (tmp_path / "out" / "evaluation.md").read_text()
    assert "chose its settings by the mean MSE1obs" in md and "fold 0 val MSE1obs" in md
    # the choice by MSE is another selection (its own cache key), not a reuse of this one
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out" / "folds").glob("*.selection.tsv"))) == 6
    # the selection alone, by a higher-is-better metric: the best candidates come first
    result = runner.invoke(main, [*args[:2], str(tmp_path / "study"), *args[3:], "--select-by",
                                  "pearson", "--selection-only"])
    assert result.exit_code == 0, result.output
    assert "Best candidates by mean validation Pearson over the folds:" in result.output
    scores = pd.read_csv(tmp_path / "study" / "evaluation-selection.tsv", sep="\t")
    means = scores.groupby("params")["val_pearson"].mean()
    first = result.output.split("over the folds:\n")[1].splitlines()[0].split(maxsplit=1)
    assert float(first[0]) == pytest.approx(means.max(), abs=1e-4)
    bad = runner.invoke(main, ["evaluate", str(tmp_path / "store"), str(tmp_path / "o2"),
                               "--select-by", "pearson"])
    assert bad.exit_code == 2 and "--select-by needs --select" in bad.output
