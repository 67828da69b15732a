"""Baselines on small hand-made compendia."""

from __future__ import annotations

import numpy as np
import pytest

from avocado_core import baselines
from avocado_core.baselines import windowed_mean
from avocado_core.errors import AvocadoKeyError, AvocadoValueError


@pytest.fixture()
def tracks() -> dict[tuple[str, str], np.ndarray]:
    return {
        ("B1", "K4"): np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32),
        ("B2", "K4"): np.array([3.0, 2.0, 1.0, 0.0, np.nan], dtype=np.float32),
        ("B3", "K4"): np.array([5.0, 5.0, 5.0, 5.0, 5.0], dtype=np.float32),
        ("B1", "K27"): np.array([9.0, 9.0, 9.0, 9.0, 9.0], dtype=np.float32),
        ("B2", "K27"): np.array([0.0, 1.0, 0.0, 1.0, 0.0], dtype=np.float32),
    }


def test_average_activity_by_hand(tracks):
    # B3/K4 from B1 and B2: (1+3)/2, (2+2)/2, (3+1)/2, (4+0)/2, and 5 alone (B2 is NaN)
    np.testing.assert_allclose(
        baselines.average_activity(tracks, "B3", "K4"), [2, 2, 2, 2, 5]
    )
    # its own track is never used, even if present: B1/K4 from B2, B3
    np.testing.assert_allclose(
        baselines.average_activity(tracks, "B1", "K4"), [4, 3.5, 3, 2.5, 5]
    )
    # exclude drops further experiments (a fold's held-out set)
    np.testing.assert_allclose(
        baselines.average_activity(tracks, "B1", "K4", exclude=[("B2", "K4")]), [5] * 5
    )
    # a window
    out = baselines.average_activity(tracks, "B3", "K27", start=1, end=3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [5, 4.5])


def test_assay_mean_by_hand(tracks):
    # B3/K4: every observed K4 value of B1 and B2: (15 + 6) / 9
    np.testing.assert_allclose(baselines.assay_mean(tracks, "B3", "K4"), [21 / 9] * 5, rtol=1e-6)
    np.testing.assert_allclose(baselines.assay_mean(tracks, "B1", "K27", end=2), [0.4, 0.4])


def test_chunking_does_not_change_results(tracks, monkeypatch):
    rng = np.random.default_rng(1)
    big = {k: rng.normal(size=1001).astype(np.float32) for k in tracks}
    want = baselines.average_activity(big, "B3", "K4")
    want_mean = baselines.assay_mean(big, "B3", "K4")
    monkeypatch.setattr(baselines, "CHUNK", 7)
    np.testing.assert_allclose(baselines.average_activity(big, "B3", "K4"), want, rtol=1e-6)
    np.testing.assert_allclose(
        baselines.average_activity(big, "B3", "K4", start=5, end=600), want[5:600], rtol=1e-6
    )
    np.testing.assert_allclose(baselines.assay_mean(big, "B3", "K4"), want_mean, rtol=1e-5)
    np.testing.assert_allclose(want, (big["B1", "K4"] + big["B2", "K4"]) / 2, rtol=1e-6)


def test_store_like_objects(tracks):
    class Store:  # duck-typed: tracks(kind) -> mapping
        def tracks(self, kind="observed"):
            assert kind == "observed"
            return tracks

    class Compendium:  # a `tracks` dict attribute
        pass

    comp = Compendium()
    comp.tracks = tracks
    want = baselines.average_activity(tracks, "B3", "K4")
    np.testing.assert_array_equal(baselines.average_activity(Store(), "B3", "K4"), want)
    np.testing.assert_array_equal(baselines.average_activity(comp, "B3", "K4"), want)


def test_errors(tracks):
    with pytest.raises(AvocadoKeyError, match="H3K9me3"):
        baselines.average_activity(tracks, "B1", "H3K9me3")
    with pytest.raises(AvocadoKeyError, match=r"other than 'B1'.*\['B1'\]"):
        baselines.average_activity({("B1", "K4"): np.zeros(3)}, "B1", "K4")
    with pytest.raises(AvocadoValueError, match="window"):
        baselines.average_activity(tracks, "B3", "K4", start=3, end=9)
    with pytest.raises(AvocadoValueError, match="expected a Mapping"):
        baselines.average_activity([1, 2], "B3", "K4")


def test_real_track_store(tracks, tmp_path):
    import pandas as pd

    from avocado_core import RegionSet, TrackStore

    regions = RegionSet(pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [125]}))
    store = TrackStore.create(tmp_path / "store", regions)
    for (b, a), v in tracks.items():
        if not np.isnan(v).any():  # the store refuses NaN
            store.add_track(b, a, v)
    clean = {k: v for k, v in tracks.items() if not np.isnan(v).any()}
    np.testing.assert_array_equal(baselines.average_activity(store, "B2", "K4"),
                                  baselines.average_activity(clean, "B2", "K4"))
    np.testing.assert_allclose(baselines.average_activity(store, "B2", "K4"), [3, 3.5, 4, 4.5, 5])


def test_windowed_mean_by_hand():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 9.0])
    # window 3: the bins present of p - 1 .. p + 1 (cut at the ends, NaN skipped)
    np.testing.assert_allclose(windowed_mean(x, 3), [1.5, 1.5, 3.0, 4.5, 6.0, 7.0])
    # window 4: p - 2 .. p + 1
    np.testing.assert_allclose(windowed_mean(x, 4), [1.5, 1.5, 7 / 3, 11 / 3, 6.0, 6.0])
    np.testing.assert_array_equal(windowed_mean(x, 1)[[0, 1, 3]], x[[0, 1, 3]])
    assert np.isnan(windowed_mean(np.full(3, np.nan), 3)).all()
    # rows of a table are smoothed one by one
    table = np.stack([x, 2 * x])
    np.testing.assert_allclose(windowed_mean(table, 3)[1], 2 * windowed_mean(x, 3))
    with pytest.raises(AvocadoValueError, match="window must be a positive number of bins, got 0"):
        windowed_mean(x, 0)


def test_smoothed_average_activity_is_the_moving_mean_of_average_activity(tracks):
    full = baselines.smoothed_average_activity(tracks, "B1", "K4", window=3)
    np.testing.assert_allclose(
        full, windowed_mean(baselines.average_activity(tracks, "B1", "K4"), 3))
    # B2 and B3 give [4, 3.5, 3, 2.5, 5] (NaN skipped); its moving mean by hand
    np.testing.assert_allclose(full, [3.75, 3.5, 3.0, 3.5, 3.75])
    # a window of bins reads past its ends: the same values as the whole track's
    np.testing.assert_allclose(
        baselines.smoothed_average_activity(tracks, "B1", "K4", start=1, end=3, window=3),
        full[1:3])
    assert baselines.smoothed_average_activity(tracks, "B1", "K4").shape == (5,)


def test_evaluate_offers_every_baseline():
    from avocado_core.cli.evaluate import evaluate
    from avocado_core.evaluation import BASELINES

    choice = next(p for p in evaluate.params if p.name == "baselines").type.choices
    assert sorted(choice) == sorted(BASELINES)
