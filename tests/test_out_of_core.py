"""Out-of-core training: fit streams from the store's memory maps with bounded memory."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from avocado_core import Avocado, RegionSet, TrackStore
from avocado_core.errors import AvocadoValueError
from avocado_core.streaming import StreamingSource, make_source, memory_budget, parse_size
from avocado_core.training import Sampler, TrackSource

REPO = Path(__file__).resolve().parents[1]


def _store(path: Path, n_biosamples: int, n_assays: int, n_positions: int) -> TrackStore:
    rng = np.random.default_rng(0)
    store = TrackStore.create(path, RegionSet.from_chrom_sizes({"chr1": n_positions * 25}))
    for b in range(n_biosamples):
        for a in range(n_assays):
            values = rng.random(n_positions, dtype=np.float32) * 2
            store.add_track(f"B{b}", f"A{a}", values)
    return store


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> TrackStore:
    return _store(tmp_path_factory.mktemp("ooc") / "store", 5, 3, 3000)


@pytest.mark.parametrize("sampling", ["sequential", "permuted", "random"])
def test_streaming_values_match_the_tracks(small_store: TrackStore, sampling: str) -> None:
    tracks = [small_store.tracks()[k] for k in small_store.experiments()]
    source = StreamingSource(tracks, max_resident_bytes=4096)  # release after every batch
    sampler = Sampler(small_store.n_bins, len(tracks), 700, sampling, seed=1)
    stacked = np.stack([np.asarray(t) for t in tracks])
    for _ in range(6):  # the sequential scan wraps around the end
        e, p = sampler.next_batch()
        np.testing.assert_array_equal(source.values(e, p), stacked[e, p])
    assert source.bytes_released > 0
    # experiments absent from a batch, and an empty batch
    e = np.array([4, 4, 0], dtype=np.int64)
    p = np.array([2999, 0, 17], dtype=np.int64)
    np.testing.assert_array_equal(source.values(e, p), stacked[e, p])
    assert source.values(e[:0], p[:0]).shape == (0,)


def test_one_gather_over_all_tracks_equals_the_per_track_path(small_store: TrackStore) -> None:
    tracks = [small_store.tracks()[k] for k in small_store.experiments()]
    joint = StreamingSource(tracks)
    # windows of the tracks (as a chromosome of a genome store) and plain in-memory arrays
    windows = StreamingSource([t[1001:2901] for t in tracks])
    in_memory = StreamingSource([np.array(t) for t in tracks])
    assert joint._joint is not None and windows._joint is not None and in_memory._joint is None
    rng = np.random.default_rng(3)
    e = rng.integers(0, len(tracks), 5000)
    p = rng.integers(0, 1900, 5000)
    expected = np.stack([np.asarray(t) for t in tracks])[e, p]
    np.testing.assert_array_equal(joint.values(e, p), expected)
    np.testing.assert_array_equal(in_memory.values(e, p), expected)
    np.testing.assert_array_equal(windows.values(e, p), np.stack(tracks)[e, p + 1001])
    assert not joint._joint.flat.flags.writeable


def test_make_source_honours_the_budget(small_store: TrackStore) -> None:
    tracks = [small_store.tracks()[k] for k in small_store.experiments()]
    size = len(tracks) * small_store.n_bins * 4
    assert isinstance(make_source(tracks, size), TrackSource)
    assert isinstance(make_source(tracks, size - 1), StreamingSource)
    assert parse_size("4G") == 4 * 2**30 and parse_size("512M") == 512 * 2**20
    assert parse_size(1000) == 1000
    with pytest.raises(AvocadoValueError, match="'lots'"):
        parse_size("lots")
    with pytest.raises(AvocadoValueError, match="positive"):
        parse_size(0)


def _small_model(store: TrackStore) -> Avocado:
    """A small model over the store's biosamples and assays (the same one every call)."""
    exps = store.experiments()
    return Avocado.small(list(dict.fromkeys(b for b, _ in exps)),
                         list(dict.fromkeys(a for _, a in exps)), store.n_bins,
                         n_nodes=16, batch_size=500, seed=0, device="cpu")


def test_fit_under_a_budget_streams_and_trains_identically(
    small_store: TrackStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_memory = _small_model(small_store)
    in_memory.fit(small_store, n_epochs=2, epoch_size=4, progress=False, choose_settings=False)

    calls = []
    original = StreamingSource.values
    monkeypatch.setattr(StreamingSource, "values",
                        lambda self, e, p: calls.append(len(p)) or original(self, e, p))
    streamed = _small_model(small_store)
    with memory_budget("16k"):
        streamed.fit(small_store, n_epochs=2, epoch_size=4, progress=False, choose_settings=False)
    # every batch came from the memory maps, batch by batch: 8 trained, and a 9th read ahead
    # (on a helper thread, which may not have started it yet) while the last step computed
    assert calls[:8] == [500] * 8 and len(calls) <= 9
    for name, value in in_memory.network.state_dict().items():
        assert torch.equal(value, streamed.network.state_dict()[name]), name
    assert in_memory.history == streamed.history
    # the budget is scoped to the block (a fit after it streams nothing); the explicit option
    # does what the block does
    _small_model(small_store).fit(small_store, n_epochs=1, epoch_size=2, progress=False,
                                  choose_settings=False)
    assert len(calls) <= 9
    explicit = _small_model(small_store)
    explicit.fit(small_store, n_epochs=2, epoch_size=4, progress=False, choose_settings=False,
                 source=functools.partial(make_source, max_memory="16k"))
    assert len(calls) >= 16 and set(calls) == {500}
    assert explicit.history == streamed.history


def test_streamed_fit_resumes_the_same_loss_curve(small_store: TrackStore, tmp_path: Path) -> None:
    # The checkpoint records the sampler as it was before the batch read ahead.
    with memory_budget("16k"):
        straight = _small_model(small_store)
        full = straight.fit(small_store, n_epochs=4, epoch_size=3, progress=False,
                            choose_settings=False)
        first = _small_model(small_store)
        first.fit(small_store, n_epochs=2, epoch_size=3, checkpoint_dir=tmp_path / "ckpt",
                  progress=False, choose_settings=False)
        resumed = _small_model(small_store)
        hist = resumed.fit(small_store, n_epochs=4, epoch_size=3,
                           checkpoint_dir=tmp_path / "ckpt", progress=False, choose_settings=False)
    assert hist["loss"] == full["loss"]
    for name, value in straight.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[name]), name


def test_streamed_fit_calls_continue_one_trajectory(small_store: TrackStore) -> None:
    # Streamed: the state a call leaves records the sampler before the batch read ahead.
    tracks = small_store.tracks()
    validation = {("B0", "A0"): tracks[("B0", "A0")]}  # (rows current after every epoch)
    with memory_budget("16k"):
        one = _small_model(small_store)
        one.fit(small_store, n_epochs=3, epoch_size=3, sampling="permuted",
                validation=validation, progress=False, choose_settings=False)
        loop = _small_model(small_store)
        for _ in range(3):
            loop.fit(small_store, n_epochs=1, epoch_size=3, sampling="permuted",
                     validation=validation, progress=False, choose_settings=False)
    assert loop.history == one.history
    for name, value in one.network.state_dict().items():
        assert torch.equal(value, loop.network.state_dict()[name]), name


_CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    from avocado_core import Avocado, TrackStore
    from avocado_core.streaming import memory_budget

    def anon_kb():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])

    def peak_growth(run):
        base, peak, done = anon_kb(), [0], [False]
        def watch():
            while not done[0]:
                peak[0] = max(peak[0], anon_kb())
                time.sleep(0.002)
        thread = threading.Thread(target=watch)
        thread.start()
        try:
            run()
        finally:
            done[0] = True
            thread.join()
        return (max(peak[0], anon_kb()) - base) / 1024

    store = TrackStore(sys.argv[1])
    exps = store.experiments()
    def fit(data=store, n=store.n_bins):
        m = Avocado.small(sorted({b for b, _ in exps}), sorted({a for _, a in exps}), n,
                          n_nodes=8, n_25bp_factors=2, n_250bp_factors=2, n_5kbp_factors=2,
                          batch_size=2000, seed=0, device="cpu")
        m.fit(data, n_epochs=1, epoch_size=20, progress=False, choose_settings=False)
    # torch's one-time set-up (allocator arenas, kernels) is not the data's
    fit({k: v[:4000] for k, v in store.tracks().items()}, 4000)
    def streamed():
        with memory_budget("8M"):
            fit()
    out = {"streamed_mb": peak_growth(streamed), "in_memory_mb": peak_growth(fit)}
    print(json.dumps(out))
    """
)


def test_fit_memory_stays_bounded_when_streaming(tmp_path: Path) -> None:
    """Peak anonymous memory of a fit: streamed it stays far below the data; gathered it holds it.

    Anonymous memory is what the process owns; pages of the memory-mapped store belong to the
    kernel's page cache (shared and evictable) and are released by the streaming source.
    """
    store = _store(tmp_path / "store", 16, 8, 200_000)  # 128 tracks, 100 MiB
    data_mb = 128 * 200_000 * 4 / 2**20
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(store.path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["in_memory_mb"] > 0.9 * data_mb, result  # the gathered copy: the measure works
    assert result["streamed_mb"] < 0.25 * data_mb, result


def _mapped_bytes(lo: int, hi: int) -> int:
    """Resident bytes of this process's mappings that start in [lo, hi) (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):
                inside = lo <= int(head.split("-")[0], 16) < hi
            elif inside and head == "Rss:":
                total += int(line.split()[1]) * 1024
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="joint mapping is Linux-only")
def test_released_pages_leave_the_process(tmp_path: Path) -> None:
    # 64 tracks x 400,000 positions (100 MiB), two sequential passes under a 4 MiB budget:
    # the store's pages mapped into the process are released again and again (on a helper
    # thread), so they stay far below the unbounded run's, which maps the whole store. (How
    # far depends on the kernel: a fault may map a whole large page-cache folio per track.)
    store = _store(tmp_path / "store", 8, 8, 400_000)
    tracks = [store.tracks()[k] for k in store.experiments()]
    budget = 4 * 2**20
    peaks, means = {}, {}
    for name, limit in (("budget", budget), ("unbounded", 2**40)):
        source = StreamingSource(tracks, max_resident_bytes=limit)
        joint = source._joint
        assert joint is not None
        sampler = Sampler(store.n_bins, len(tracks), 4000, "sequential", seed=0)
        mapped = []
        for step in range(200):
            source.values(*sampler.next_batch())
            if step % 5 == 4:  # (reading smaps costs far more than a batch)
                mapped.append(_mapped_bytes(joint.base, joint.base + joint.total))
        peaks[name] = max(mapped)
        means[name] = float(np.mean(mapped))
        if name == "budget":
            assert source.bytes_released > 50 * budget
        source.release()
        assert _mapped_bytes(joint.base, joint.base + joint.total) == 0
    assert peaks["unbounded"] > 0.95 * 64 * 400_000 * 4, peaks  # the measure works
    # measured: mean 12 MiB mapped under the budget, 79 MiB unbounded (peaks 47 and 98 MiB)
    assert means["budget"] < 0.4 * means["unbounded"], means
