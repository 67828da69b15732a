"""TrackStore: layout, lazy windows, validation, atomic writes (crashes simulated), metadata."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import avocado_core.store as store_mod
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet
from avocado_core.store import TrackStore


@pytest.fixture(scope="module")
def pilot_regions() -> RegionSet:
    return RegionSet.roadmap_pilot()


@pytest.fixture(scope="module")
def real_tracks(pilot_dir) -> dict[tuple[str, str], np.ndarray]:
    return {(b, a): np.load(pilot_dir / f"{b}.{a}.pilot.arcsinh.npz")["arr_0"]
            for b in ("E003", "E116") for a in ("H3K4me3", "H3K27me3")}


@pytest.fixture()
def store(tmp_path, pilot_regions, real_tracks) -> TrackStore:
    s = TrackStore.create(tmp_path / "store", pilot_regions,
                          biosamples=pd.DataFrame({"name": ["E003"], "anatomy": ["ESC"]}))
    for (b, a), v in real_tracks.items():
        s.add_track(b, a, v, source=f"{b}.{a}.pilot.arcsinh.npz")
    return s


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_layout_and_round_trip(store, real_tracks, pilot_regions):
    root = store.path
    for name in ("regions.tsv", "catalog.tsv", "biosamples.tsv", "assays.tsv", "store.json"):
        assert (root / name).is_file()
    assert (root / "tracks/observed/E003.H3K4me3.npy").is_file()
    reopened = TrackStore(root)
    assert reopened.regions == pilot_regions and reopened.n_bins == 1_126_469
    cat = reopened.catalog
    assert list(cat.columns[:6]) == ["biosample", "assay", "kind", "source", "transform", "n_bins"]
    assert len(cat) == 4 and set(cat["kind"]) == {"observed"}
    assert cat["n_bins"].tolist() == [1_126_469] * 4
    assert reopened.experiments() == list(real_tracks)
    for key, values in real_tracks.items():
        mm = reopened.track(*key)
        assert isinstance(mm, np.memmap) and mm.dtype == np.float32 and not mm.flags.writeable
        np.testing.assert_array_equal(mm, values)
    # np.load on the file itself reads the same (plain .npy)
    np.testing.assert_array_equal(np.load(root / "tracks/observed/E116.H3K27me3.npy"),
                                  real_tracks[("E116", "H3K27me3")])


def test_fetch_windows(store, real_tracks, pilot_regions):
    v = real_tracks[("E003", "H3K4me3")]
    start, end = pilot_regions.locus_bins("chr1:151.2M-151.3M")
    np.testing.assert_array_equal(store.fetch("E003", "H3K4me3", "chr1:151.2M-151.3M"),
                                  v[start:end])
    np.testing.assert_array_equal(store.fetch("E003", "H3K4me3", (10, 20)), v[10:20])
    np.testing.assert_array_equal(store.fetch("E003", "H3K4me3", ("chr2", 51_658_675, 51_658_775)),
                                  v[20_002:20_006])
    np.testing.assert_array_equal(store.fetch("E003", "H3K4me3"), v)
    out = store.fetch("E003", "H3K4me3", (0, 5))
    assert out.dtype == np.float32 and not isinstance(out, np.memmap)
    with pytest.raises(AvocadoValueError, match="outside"):
        store.fetch("E003", "H3K4me3", (5, 2_000_000))
    with pytest.raises(AvocadoValueError, match="ENr231"):
        store.fetch("E003", "H3K4me3", "chr1:100-200")
    with pytest.raises(AvocadoKeyError, match="E003/H3K4me3"):
        store.fetch("E999", "H3K4me3", (0, 5))


def test_fetch_many(store, real_tracks, pilot_regions):
    keys = [("E116", "H3K27me3"), ("E003", "H3K4me3")]
    out = store.fetch_many(keys, "chr2:51.7M-51.8M")
    start, end = pilot_regions.locus_bins("chr2:51.7M-51.8M")
    assert out.shape == (2, end - start) and out.dtype == np.float32
    for row, key in zip(out, keys):
        np.testing.assert_array_equal(row, real_tracks[key][start:end])
    with pytest.raises(AvocadoKeyError, match="E017"):
        store.fetch_many([("E017", "H3K4me3")], (0, 10))


def test_fetch_reads_only_the_window(store, monkeypatch):
    """A window fetch touches only the window's bytes of the memory map."""
    seen = []
    real_load = np.load

    class Spy(np.ndarray):
        def __getitem__(self, item):
            seen.append(item)
            return np.ndarray.__getitem__(self, item)

    def spy_load(*args, **kwargs):
        out = real_load(*args, **kwargs)
        assert kwargs.get("mmap_mode") == "r"
        return out.view(Spy)

    monkeypatch.setattr(store_mod.np, "load", spy_load)
    store.fetch("E116", "H3K4me3", (1000, 1100))
    assert seen == [slice(1000, 1100, None)]


def test_imputed_beside_observed(store, real_tracks):
    imputed = real_tracks[("E003", "H3K4me3")] * 0.5
    store.add_track("E003", "H3K4me3", imputed, kind="imputed", source="model-dir")
    assert store.has_track("E003", "H3K4me3", kind="imputed")
    assert (store.path / "tracks/imputed/E003.H3K4me3.npy").is_file()
    np.testing.assert_array_equal(store.fetch("E003", "H3K4me3", (0, 100), kind="imputed"),
                                  imputed[:100])
    np.testing.assert_array_equal(store.fetch("E003", "H3K4me3", (0, 100)),
                                  real_tracks[("E003", "H3K4me3")][:100])
    assert store.experiments("imputed") == [("E003", "H3K4me3")]
    assert len(store.experiments(None)) == 4
    assert not store.has_track("E116", "H3K4me3", kind="imputed")
    with pytest.raises(AvocadoValueError, match="'predicted'.*observed.*imputed"):
        store.has_track("E003", "H3K4me3", kind="predicted")


def test_tracks_mapping(store, real_tracks):
    tracks = store.tracks()
    assert len(tracks) == 4 and set(tracks) == set(real_tracks)
    assert ("E003", "H3K4me3") in tracks and ("E003", "H3K9me3") not in tracks
    np.testing.assert_array_equal(tracks[("E116", "H3K4me3")][:50],
                                  real_tracks[("E116", "H3K4me3")][:50])
    with pytest.raises(KeyError, match="H3K9me3"):
        tracks[("E003", "H3K9me3")]
    with pytest.raises(TypeError):
        tracks[("E003", "H3K4me3")] = np.zeros(3)  # read-only mapping


@pytest.mark.parametrize("values, fragment", [
    (np.zeros(10, np.float32), "10 values; the store's region set has 1,126,469 bins"),
    (np.zeros((2, 1_126_469), np.float32), r"shape \(2, 1126469\)"),
    (np.array(["a"] * 1_126_469), "dtype <U1"),
    (np.zeros(1_126_469, bool), "dtype bool"),
])
def test_validation(store, values, fragment):
    with pytest.raises(AvocadoValueError, match=fragment):
        store.add_track("E017", "H3K4me3", values)
    assert not store.has_track("E017", "H3K4me3")


def test_nan_inf_reported_with_count_and_first_index(store):
    v = np.zeros(1_126_469, np.float64)
    v[[7, 900_000]] = np.nan
    v[1000] = np.inf
    with pytest.raises(AvocadoValueError, match=r"3 non-finite.*first at bin 7"):
        store.add_track("E017", "H3K4me3", v)
    big = np.zeros(1_126_469, np.float64)
    big[42] = 1e300  # finite in float64, inf in float32
    with pytest.raises(AvocadoValueError,
                       match="first at bin 42.*float32|float32.*first at bin 42"):
        store.add_track("E017", "H3K4me3", big)
    ints = np.arange(1_126_469, dtype=np.int64) % 7
    store.add_track("E017", "H3K4me3", ints, transform="none")
    assert store.track("E017", "H3K4me3").dtype == np.float32


def test_overwrite(store, real_tracks):
    key = ("E003", "H3K4me3")
    with pytest.raises(AvocadoValueError, match="overwrite=True"):
        store.add_track(*key, np.zeros(store.n_bins))
    old_map = store.track(*key)
    store.add_track(*key, np.ones(store.n_bins), overwrite=True, source="ones", transform="none")
    np.testing.assert_array_equal(store.fetch(*key, (0, 3)), [1, 1, 1])
    row = store.catalog.query("biosample == 'E003' and assay == 'H3K4me3'").iloc[0]
    assert row["source"] == "ones" and row["transform"] == "none"
    # a reader that mapped the old track keeps the old values
    np.testing.assert_array_equal(old_map[:100], real_tracks[key][:100])
    # the replaced file is gone; one file per track
    assert len(list((store.path / "tracks/observed").glob("*.npy"))) == 4
    store.add_track(*key, np.full(store.n_bins, 2.0), overwrite=True)
    assert store.fetch(*key, (5, 6))[0] == 2.0
    assert len(list((store.path / "tracks/observed").glob("*.npy"))) == 4


def test_reader_keeps_maps_open_and_sees_another_writers_tracks(store, real_tracks):
    """A store keeps its memory maps between reads (the app reads the same tracks on every
    request) and opens a track again once another process has replaced its file."""
    key = ("E003", "H3K4me3")
    reader = TrackStore(store.path)
    assert reader.track(*key) is reader.track(*key)
    np.testing.assert_array_equal(reader.fetch(*key, (0, 5)), real_tracks[key][:5])
    for value in (1.0, 2.0):  # the writer may reuse the file name: the stat key tells
        TrackStore(store.path).add_track(*key, np.full(store.n_bins, value), overwrite=True)
        np.testing.assert_array_equal(reader.fetch(*key, (0, 5)), np.full(5, value))


def test_crash_mid_write_leaves_store_unchanged(store, monkeypatch):
    """Simulated crashes while writing values or the catalog leave every byte as it was."""
    before = _snapshot(store.path)
    key = ("E003", "H3K4me3")

    real_save = np.save

    def save_half_then_die(handle, arr, **kwargs):
        real_save(handle, arr[: len(arr) // 2], **kwargs)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(store_mod.np, "save", save_half_then_die)
    with pytest.raises(OSError, match="simulated"):
        store.add_track(*key, np.ones(store.n_bins), overwrite=True)
    with pytest.raises(OSError, match="simulated"):
        store.add_track("E017", "H3K4me3", np.ones(store.n_bins))
    monkeypatch.undo()
    assert _snapshot(store.path) == before

    def catalog_dies(self, df):
        raise OSError("killed before the catalog rename (simulated)")

    monkeypatch.setattr(TrackStore, "_write_catalog", catalog_dies)
    with pytest.raises(OSError, match="simulated"):
        store.add_track(*key, np.ones(store.n_bins), overwrite=True)
    with pytest.raises(OSError, match="simulated"):
        store.add_track("E017", "H3K4me3", np.ones(store.n_bins))
    with pytest.raises(OSError, match="simulated"):
        store.remove_track(*key)
    monkeypatch.undo()
    assert _snapshot(store.path) == before

    real_replace = os.replace
    calls = []

    def replace_dies_on_catalog(src, dst):
        calls.append(dst)
        if str(dst).endswith("catalog.tsv"):
            raise OSError("power cut during the catalog rename (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_dies_on_catalog)
    with pytest.raises(OSError, match="simulated"):
        store.add_track(*key, np.ones(store.n_bins), overwrite=True)
    monkeypatch.undo()
    assert _snapshot(store.path) == before
    reopened = TrackStore(store.path)
    assert reopened.fetch(*key, (0, 3)).tolist() != [1, 1, 1]


def test_vacuum_removes_crash_leftovers(store):
    orphan = store.path / "tracks/observed/E999.H3K4me3.npy"
    np.save(orphan, np.zeros(3, np.float32))
    (store.path / "tracks/observed/.x.npy.tmp-1-abcd").write_bytes(b"junk")
    removed = store.vacuum()
    assert sorted(p.name for p in removed) == [".x.npy.tmp-1-abcd", "E999.H3K4me3.npy"]
    assert len(store.experiments()) == 4


def test_remove_track(store):
    store.remove_track("E116", "H3K27me3")
    assert not store.has_track("E116", "H3K27me3")
    assert not (store.path / "tracks/observed/E116.H3K27me3.npy").exists()
    with pytest.raises(AvocadoKeyError, match="E116"):
        store.remove_track("E116", "H3K27me3")


def test_metadata_travels_with_store(store, pilot_dir):
    bios = store.biosamples
    assert bios.loc["E003", "anatomy"] == "ESC"
    assert "E116" in bios.index  # every catalog biosample has a row
    assert list(store.assays.index) == ["H3K4me3", "H3K27me3"]
    table = pd.read_csv(pilot_dir / "roadmap-biosamples.tsv", sep="\t", usecols=[0, 1, 3])
    table.columns = ["name", "description", "anatomy"]
    store.set_metadata(biosamples=table[table["name"].isin(["E116", "E003"])],
                       assays=pd.DataFrame({"type": ["histone"]}, index=["H3K4me3"]))
    reopened = TrackStore(store.path)
    assert reopened.biosamples.loc["E116", "anatomy"] == "BLOOD"
    assert reopened.biosamples.loc["E003", "description"] == "H1 Cells"
    assert reopened.assays.loc["H3K4me3", "type"] == "histone"
    store.set_metadata(biosamples=pd.DataFrame({"anatomy": ["ESC-H1"]}, index=["E003"]))
    assert store.biosamples.loc["E003", "anatomy"] == "ESC-H1"
    assert store.biosamples.loc["E116", "anatomy"] == "BLOOD"  # update, not replace
    with pytest.raises(AvocadoValueError, match="'E003' more than once"):
        store.set_metadata(biosamples=pd.DataFrame({"name": ["E003", "E003"]}))


def test_create_and_open_errors(tmp_path, pilot_regions):
    with pytest.raises(AvocadoValueError, match="not a track store"):
        TrackStore(tmp_path)
    path = tmp_path / "s"
    TrackStore.create(path, pilot_regions)
    with pytest.raises(AvocadoValueError, match="exist_ok=True"):
        TrackStore.create(path, pilot_regions)
    assert TrackStore.create(path, pilot_regions, exist_ok=True).n_bins == pilot_regions.n_bins
    other = RegionSet.from_chrom_sizes({"chr1": 1000})
    with pytest.raises(AvocadoValueError, match="different region set"):
        TrackStore.create(path, other, exist_ok=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary directory left


def test_odd_names_are_file_safe(tmp_path):
    regions = RegionSet.from_chrom_sizes({"chr1": 100})
    s = TrackStore.create(tmp_path / "s", regions)
    s.add_track("a.b", "c", np.zeros(4))
    s.add_track("a", "b.c", np.ones(4))
    s.add_track("x/y z", "H3K4me3", np.full(4, 2.0))
    assert s.fetch("a.b", "c").tolist() == [0, 0, 0, 0]
    assert s.fetch("a", "b.c").tolist() == [1, 1, 1, 1]
    assert s.fetch("x/y z", "H3K4me3").tolist() == [2, 2, 2, 2]
    assert len(list((tmp_path / "s/tracks/observed").iterdir())) == 3
    with pytest.raises(AvocadoValueError, match="tab"):
        s.add_track("a\tb", "c", np.zeros(4))



def _writer(path: str, prefix: str) -> None:
    store = TrackStore(path)
    for i in range(6):
        store.add_track(f"{prefix}{i}", "H3K4me3", np.full(store.n_bins, i, np.float32))


def test_concurrent_writers_keep_every_row(tmp_path):
    """Two processes adding tracks at once: the catalog lock keeps all 12 rows."""
    import multiprocessing

    regions = RegionSet.from_chrom_sizes({"chr1": 2_500_000})
    path = tmp_path / "s"
    TrackStore.create(path, regions)
    ctx = multiprocessing.get_context("fork")  # children start at once, modules imported
    procs = [ctx.Process(target=_writer, args=(str(path), name)) for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    store = TrackStore(path)
    assert sorted(store.experiments()) == sorted(
        (f"{n}{i}", "H3K4me3") for n in "ab" for i in range(6))
    assert store.fetch("b5", "H3K4me3", (0, 3)).tolist() == [5, 5, 5]


def test_add_tracks_commits_all_or_nothing(tmp_path):
    regions = RegionSet.from_chrom_sizes({"chr1": 100 * 25})
    store = TrackStore.create(tmp_path / "bulk", regions)
    good = [(f"B{i}", "H3K4me3", np.full(100, i, dtype=np.float32)) for i in range(5)]
    assert store.add_tracks(good, source="test") == 5
    assert sorted(store.experiments()) == sorted((b, a) for b, a, _ in good)
    np.testing.assert_array_equal(store.fetch("B3", "H3K4me3"), np.full(100, 3, np.float32))

    before = store.catalog.copy()
    files_before = sorted(p.name for p in (tmp_path / "bulk" / "tracks" / "observed").iterdir())
    bad = [("B9", "H3K4me3", np.zeros(100)), ("B10", "H3K4me3", np.full(100, np.nan))]
    with pytest.raises(AvocadoValueError, match="non-finite"):
        store.add_tracks(bad)
    pd.testing.assert_frame_equal(store.catalog, before)
    observed_dir = tmp_path / "bulk" / "tracks" / "observed"
    assert sorted(p.name for p in observed_dir.iterdir()) == files_before


def test_info_records_fields_beside_the_format(store):
    assert store.info == {"format_version": 1, "bin_size": 25, "n_bins": 1_126_469}
    store.update_info(synthetic={"description": "generated", "seed": 3})
    reopened = TrackStore(store.path)
    assert reopened.info["synthetic"] == {"description": "generated", "seed": 3}
    assert reopened.info["n_bins"] == 1_126_469
    with pytest.raises(AvocadoValueError, match="n_bins of store .* are fixed"):
        store.update_info(n_bins=5)
    assert TrackStore(store.path).info["n_bins"] == 1_126_469
