"""The settings a fit chooses itself, on validation tracks split off its training tracks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from avocado_core import Avocado, AvocadoEnsemble, evaluation
from avocado_core.choice import (
    AVERAGING_CANDIDATES,
    BLEND_CANDIDATES,
    SMOOTHING_CANDIDATES,
    VALIDATION_FOLDS,
    describe_choice,
    fit_grid,
)
from avocado_core.cli import main
from avocado_core.folds import validation_folds
from avocado_core.regions import RegionSet
from avocado_core.store import TrackStore
from cpu_cli import on_cpu
from planted import mean_of_others

#: A narrow network over the small preset (average activity as an input, as by default).
TINY = {"preset": "small", "n_nodes": 16, "n_biosample_factors": 4, "n_assay_factors": 4,
        "n_25bp_factors": 2, "n_250bp_factors": 2, "n_5kbp_factors": 2, "batch_size": 500}
N = 1500


@pytest.fixture(scope="module")
def compendium() -> dict[tuple[str, str], np.ndarray]:
    """5 biosamples x 3 assays with a planted answer: B4's tracks are the mean of the others'
    (exactly what average activity imputes), B0-B3 follow patterns of their own."""
    return mean_of_others(N)


def _model(compendium, seed=0):
    return Avocado.from_preset(TINY, compendium, N, seed=seed, device="cpu")


@pytest.fixture(scope="module")
def fitted(compendium):
    """A model fitted with the defaults (but for 4 epochs), and every copy the choice trained."""
    copies = []
    original = Avocado.fit

    def keep(self, *args, **kwargs):
        copies.append((self, kwargs))
        return original(self, *args, **kwargs)

    Avocado.fit = keep
    try:
        model = _model(compendium)
        original(model, compendium, n_epochs=4, progress=False)
    finally:
        Avocado.fit = original
    return model, copies


def test_a_default_fit_chooses_its_settings_on_validation_folds(fitted, compendium):
    model, copies = fitted
    windows = [w for w in AVERAGING_CANDIDATES if w < 4]
    # one copy per candidate window and validation fold, none of which chooses again
    assert len(copies) == len(windows) * VALIDATION_FOLDS
    assert all(kw["options"].choose_settings is False for _, kw in copies)
    assert sorted(kw["options"].average_from for _, kw in copies) == sorted(
        windows * VALIDATION_FOLDS)
    # every copy starts from the model's own initialization and trains without its fold
    splits = validation_folds(compendium.keys(), VALIDATION_FOLDS, VALIDATION_FOLDS, 0)
    assert sorted(len(c.trained_on) for c, _ in copies) == sorted(
        len(compendium) - len(val) for val in splits for _ in windows)
    choice = model.choice
    assert choice["average_from"] in windows
    assert choice["validation_tracks"] == sorted(map(list, compendium))
    assert choice["validation_folds"] == VALIDATION_FOLDS
    assert choice["candidates"] == len(fit_grid(4, None, True))
    assert set(choice["biosample_settings"]) == {f"B{i}" for i in range(5)}
    assert model.biosample_settings == choice["biosample_settings"]
    # the final model trained on every track, with the chosen window (its history: 4 epochs)
    assert model.trained_on == sorted(compendium)
    assert len(model.history["loss"]) == 4


def test_the_planted_blend_is_found(fitted):
    """B4 is the mean of the others: it leans furthest towards average activity of all."""
    settings = fitted[0].biosample_settings
    assert settings["B4"]["activity_blend"] == max(BLEND_CANDIDATES)
    assert min(settings[f"B{i}"]["activity_blend"] for i in range(4)) < max(BLEND_CANDIDATES)
    assert {s["smoothing"] for s in settings.values()} <= set(SMOOTHING_CANDIDATES)


def test_the_choice_is_saved_printed_and_kept_by_new_positions(fitted, compendium, tmp_path):
    model = fitted[0]
    model.save(tmp_path / "m")
    loaded = Avocado.load(tmp_path / "m", device="cpu")
    assert loaded.choice == json.loads(json.dumps(model.choice))
    assert loaded.biosample_settings == model.biosample_settings
    text = describe_choice(loaded.choice)
    assert f"from epoch {model.choice['average_from'] + 1}" in text
    assert "B4 blend 0.75" in text and "15 validation tracks" in text
    genome = model.fit_positions({k: v[:300] for k, v in compendium.items()}, 300, n_epochs=1,
                                 progress=False)
    assert genome.choice == model.choice and genome.biosample_settings == model.biosample_settings


def test_fixed_settings_and_continued_fits_choose_nothing(compendium):
    given = {"B0": {"smoothing": 3}}
    plain = _model(compendium)
    plain.biosample_settings = given
    plain.fit(compendium, n_epochs=2, progress=False, choose_settings=False)
    assert plain.choice is None and plain.biosample_settings == given
    # a fixed window is kept; only the prediction settings are chosen
    fixed = _model(compendium)
    fixed.fit(compendium, n_epochs=3, average_from=1, progress=False)
    assert fixed.choice["average_from"] == 1
    # a fit that continues the optimizer state keeps the settings it has
    chosen = dict(fixed.biosample_settings)
    fixed.fit(compendium, n_epochs=1, progress=False)
    assert fixed.biosample_settings == chosen


def test_a_track_alone_in_its_biosample_always_trains(compendium, monkeypatch):
    """B0 keeps one track: it cannot be held out without leaving B0 untrained, so it trains in
    every copy, B0 keeps the overall settings (with a warning) and the others choose theirs."""
    sparse = {k: v for k, v in compendium.items() if k not in (("B0", "A1"), ("B0", "A2"))}
    trained = []
    original = Avocado.fit

    def keep(self, data, **kwargs):
        trained.append(set(data))
        return original(self, data, **kwargs)

    monkeypatch.setattr(Avocado, "fit", keep)
    model = _model(compendium)
    with pytest.warns(UserWarning, match="B0 have no validation track"):
        model.fit(sparse, n_epochs=2, progress=False)
    assert all(("B0", "A0") in data for data in trained)  # every copy and the final fit
    assert ["B0", "A0"] not in model.choice["validation_tracks"]
    assert len(model.choice["validation_tracks"]) == len(sparse) - 1
    assert "B0" not in model.biosample_settings and "B1" in model.biosample_settings


def test_too_few_tracks_to_validate_warn_and_train_as_given(compendium):
    """No track can be held out (each biosample has one): the fit says so and trains."""
    alone = {(f"B{i}", f"A{i % 3}"): compendium[f"B{i}", f"A{i % 3}"] for i in range(3)}
    model = _model(compendium)
    with pytest.warns(UserWarning, match="choose_settings: .*no experiment can be held out.*"
                                         "choose_settings=False"):
        model.fit(alone, n_epochs=2, progress=False)
    assert model.choice is None and len(model.history["loss"]) == 2


def test_an_ensemble_shares_the_choice_of_its_first_member(compendium, monkeypatch):
    fits = []
    original = Avocado.fit

    def count(self, *args, **kwargs):
        fits.append(kwargs.get("choose_settings", True))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Avocado, "fit", count)
    ensemble = AvocadoEnsemble.fit(lambda s: _model(compendium, s), compendium, 2, seed=3,
                                   n_epochs=3, progress=False)
    first, second = ensemble.models
    # member 0's fit and its copies (one window under 3 epochs x 5 folds), then member 1 alone
    assert len(fits) == 1 + VALIDATION_FOLDS + 1 and fits[-1] is False
    assert second.biosample_settings == first.biosample_settings
    assert second.choice == first.choice and second.seed == first.seed + 100


def test_held_out_tracks_are_never_read_by_the_choice(compendium):
    """cross_validate with the defaults: each fold's model chooses on its training tracks only,
    so garbage in fold 0's held-out tracks leaves fold 0's choice exactly as it was."""
    fold0 = evaluation.make_folds(compendium.keys(), 3, seed=0)[0]
    corrupt = {k: (np.full(N, 1e3, np.float32) if k in fold0 else v)
               for k, v in compendium.items()}
    runs = [evaluation.cross_validate(tracks, n_folds=3, config=TINY, n_epochs=3,
                                      progress=False, device="cpu")
            for tracks in (compendium, corrupt)]
    chosen = [r.loc[(r["method"] == "avocado") & (r["fold"] == 0), "chosen"] for r in runs]
    assert chosen[0].nunique() == 1 and chosen[0].iloc[0] == chosen[1].iloc[0]
    assert json.loads(chosen[0].iloc[0])["biosample_settings"]
    summary = evaluation.summarize(runs[0])
    assert "### Settings chosen by each fold's training" in summary


def test_cli_trains_chooses_prints_and_shows_the_choice(compendium, tmp_path):
    regions = RegionSet(pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [N * 25]}))
    store = TrackStore.create(tmp_path / "store", regions)
    for (b, a), v in compendium.items():
        store.add_track(b, a, v)
    runner = CliRunner()
    out = runner.invoke(main, on_cpu(["train", str(tmp_path / "store"), str(tmp_path / "m"),
                                      "--epochs", "3", "--n-nodes", "16", "--batch-size",
                                      "500"]))
    assert out.exit_code == 0, out.output
    assert "chosen on validation tracks: weights averaged from epoch 3 on" in out.output
    info = runner.invoke(main, ["info", str(tmp_path / "m")])
    assert info.exit_code == 0 and "chosen on validation tracks" in info.output
    assert "B4 blend 0.75" in info.output
    plain = runner.invoke(main, on_cpu(["train", str(tmp_path / "store"), str(tmp_path / "p"),
                                        "--epochs", "2", "--n-nodes", "16", "--no-choose"]))
    assert plain.exit_code == 0 and "chosen" not in plain.output
    assert Avocado.load(tmp_path / "p", device="cpu").choice is None
    fixed = runner.invoke(main, ["train", str(tmp_path / "store"), str(tmp_path / "f"),
                                 "--smoothing", "9"])
    assert fixed.exit_code == 2 and "--smoothing fixes a setting" in fixed.output
    assert "--no-choose" in fixed.output


def test_a_large_compendium_is_scored_on_a_sample_of_positions():
    """Up to SCORED_TRACKS training tracks every position is scored; past it, the same sample of
    SCORED_BLOCK-bin blocks in every track, SCORED_TRACKS / n_tracks of the positions, so that
    the scoring costs a fixed number of track-lengths however many tracks there are."""
    from avocado_core.choice import SCORED_BLOCK, SCORED_TRACKS, scored_blocks

    assert scored_blocks(100_000, SCORED_TRACKS, 0) is None
    blocks = scored_blocks(1_000_000, 4 * SCORED_TRACKS, 0)
    starts = [lo for lo, _ in blocks]
    assert starts == sorted(set(starts)) and all(lo % SCORED_BLOCK == 0 for lo in starts)
    assert all(hi - lo == SCORED_BLOCK for lo, hi in blocks)
    assert len(blocks) * SCORED_BLOCK == pytest.approx(1_000_000 / 4, abs=SCORED_BLOCK)
    assert blocks == scored_blocks(1_000_000, 4 * SCORED_TRACKS, 0)  # from the seed alone
    (lo, hi), = scored_blocks(10_000, 10 * SCORED_TRACKS, 0)  # at least one block
    assert hi - lo == SCORED_BLOCK
