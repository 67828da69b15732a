"""Our bigWig writer against pyBigWig's files of the same data, read back through pyBigWig.

The reference files are written with pyBigWig exactly as ``write_bigwigs`` wrote them before
(fixed-step entries per interval, the clipped last bin as an entry of its own). Everything a
reader sees must agree: header, chromosomes, values, intervals, and ``stats`` from the data
(``exact=True``) and from the zoom levels (``exact=False``); the zoom records themselves are
compared one by one (libBigWig leaves the sum of the last record of each block at 0; ours
holds the true sum, checked against the data).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest

from avocado_core.bigwig import check_bigwig_file, write_bigwig, write_bigwigs
from avocado_core.bigwig_writer import BigWigWriter, zoom_levels
from avocado_core.errors import AvocadoDiskFullError, AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet

ZOOM_RECORD = np.dtype([("chrom", "<u4"), ("start", "<u4"), ("end", "<u4"), ("valid", "<u4"),
                        ("min", "<f4"), ("max", "<f4"), ("sum", "<f4"), ("sumsq", "<f4")])
STATS = ("mean", "min", "max", "coverage", "std")

# Synthetic layout: a long chromosome with a clipped last bin (one interval of > 65,535
# bins), a chromosome of a single clipped bin, one of a single whole bin, and one with gaps
# between three intervals, the last clipped at its end.
SIZES = {"chrA": 9_000 * 25 + 13 + 25 * 70_000, "chrB": 19, "chrC": 25, "chrD": 260_011}
SYNTHETIC = pd.DataFrame({
    "chrom": ["chrA", "chrB", "chrC", "chrD", "chrD", "chrD"],
    "start": [0, 0, 0, 1_000, 52_340, 200_000],
    "end": [SIZES["chrA"], 19, 25, 40_000, 52_400, SIZES["chrD"]],
})


def _reference(path: Path, regions: RegionSet, values: np.ndarray, sizes: dict) -> None:
    """The file pyBigWig writes (fixed-step entries per interval, clipped last bins apart);
    NaN bins are left out as bedGraph entries of the others."""
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader([(c, sizes[c]) for c in regions.chroms], maxZooms=10)
    iv = regions.intervals
    for chrom, first, n, offset in zip(iv["chrom"], iv["first_bin_start"], iv["n_bins"],
                                       iv["offset"]):
        first, n, offset, size = int(first), int(n), int(offset), sizes[chrom]
        full = min(n, (size - first) // 25)
        v = values[offset:offset + full].astype(np.float64)
        if np.isnan(v).any():
            keep = np.flatnonzero(~np.isnan(v))
            starts = (first + 25 * keep).tolist()
            bw.addEntries([chrom] * len(keep), starts, ends=[s + 25 for s in starts],
                          values=v[keep].tolist())
        elif full:
            bw.addEntries(chrom, first, values=v, span=25, step=25)
        if full < n and not np.isnan(values[offset + full]):
            bw.addEntries([chrom], [first + 25 * full], ends=[size],
                          values=[float(values[offset + full])])
    bw.close()


def _zoom_records(path: Path) -> list[tuple[int, np.ndarray]]:
    """(level, records) of every zoom level, read through the file's own indexes."""
    data = path.read_bytes()
    n_zooms = struct.unpack_from("<H", data, 6)[0]
    out = []
    for k in range(n_zooms):
        level, _, _, index = struct.unpack_from("<IIQQ", data, 64 + 24 * k)
        leaves, stack = [], [index + 48]
        while stack:
            node = stack.pop()
            is_leaf, _, count = struct.unpack_from("<BBH", data, node)
            for j in range(count):
                if is_leaf:
                    leaves.append(struct.unpack_from("<IIIIQQ", data, node + 4 + 32 * j)[4:])
                else:
                    stack.append(struct.unpack_from("<IIIIQ", data, node + 4 + 24 * j)[4])
        blocks = [np.frombuffer(zlib.decompress(data[o:o + n]), dtype=ZOOM_RECORD)
                  for o, n in sorted(leaves)]
        out.append((level, np.concatenate(blocks)))
    return out


def _none_to_nan(stats: list) -> np.ndarray:
    return np.array([np.nan if s is None else s for s in stats], dtype=np.float64)


def _ranges(windows: list[tuple[str, int, int]], sizes: dict, rng: np.random.Generator,
            n: int = 5) -> list[tuple[str, int, int]]:
    """Whole chromosomes, the windows of data, and tiny to mid-sized ranges in and around them."""
    out = [(chrom, 0, size) for chrom, size in sizes.items()] + list(windows)
    for chrom, start, end in windows:
        lo, hi = max(0, start - 1_000), min(sizes[chrom], end + 1_000)
        for length in (1, 30, 900, 20_000, 300_000):
            if length < hi - lo:
                out += [(chrom, int(s), int(s) + length) for s in rng.integers(lo, hi - length, n)]
    return out


def _defects(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Zoom records pyBigWig wrote with a zero sum over nonzero data (its last per block)."""
    names = list(pyBigWig.open(str(path)).chroms())
    out: dict[str, list[tuple[int, int]]] = {}
    for _, rec in _zoom_records(path):
        bad = rec[(rec["sum"] == 0) & ((rec["min"] != 0) | (rec["max"] != 0))]
        for r in bad:
            out.setdefault(names[r["chrom"]], []).append((int(r["start"]), int(r["end"])))
    return out


def assert_same_file(ours: Path, ref: Path, sizes: dict, seed: int = 0,
                     windows: list[tuple[str, int, int]] | None = None) -> None:
    """What pyBigWig reads from our file is what it reads from its own.

    ``windows``: where the data are (default: the whole chromosomes of ``sizes``).
    """
    windows = windows or [(chrom, 0, size) for chrom, size in sizes.items()]
    check_bigwig_file(ours)
    a, b = pyBigWig.open(str(ours)), pyBigWig.open(str(ref))
    try:
        ha, hb = a.header(), b.header()
        for key in ("version", "nLevels", "nBasesCovered", "minVal", "maxVal"):
            assert ha[key] == hb[key], (key, ha[key], hb[key])
        for key in ("sumData", "sumSquared"):
            assert ha[key] == pytest.approx(hb[key], rel=1e-9), key
        assert a.chroms() == b.chroms()
        for chrom in sizes:
            assert a.intervals(chrom) == b.intervals(chrom), chrom
        for chrom, start, end in windows:
            np.testing.assert_array_equal(a.values(chrom, start, end, numpy=True),
                                          b.values(chrom, start, end, numpy=True))
        defects = _defects(ref)
        for chrom, start, end in _ranges(windows, sizes, np.random.default_rng(seed)):
            touched = any(s < end and start < e for s, e in defects.get(chrom, []))
            for kind in STATS:
                for exact in (True, False):
                    if not exact and touched and kind in ("mean", "std"):
                        continue  # pyBigWig's own file is wrong there (see the zoom records)
                    got = _none_to_nan(a.stats(chrom, start, end, type=kind, exact=exact))
                    want = _none_to_nan(b.stats(chrom, start, end, type=kind, exact=exact))
                    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6,
                                               err_msg=f"{kind} {exact} {chrom}:{start}-{end}")
    finally:
        a.close()
        b.close()
    assert_same_zoom_records(ours, ref)


def assert_same_zoom_records(ours: Path, ref: Path) -> None:
    """Record by record: same windows, counts, min and max; sums equal, or, where pyBigWig
    left 0 (the last record of its blocks), the true sum over the record's bases."""
    za, zb = _zoom_records(ours), _zoom_records(ref)
    assert [level for level, _ in za] == [level for level, _ in zb]
    with pyBigWig.open(str(ours)) as bw:
        names = list(bw.chroms())
        for (_, a), (_, b) in zip(za, zb):
            assert len(a) == len(b)
            for key in ("chrom", "start", "end", "valid", "min", "max"):
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            zero = (b["sum"] == 0) & (b["sumsq"] == 0) & ((b["min"] != 0) | (b["max"] != 0))
            for key in ("sum", "sumsq"):
                np.testing.assert_allclose(a[key][~zero], b[key][~zero], rtol=1e-5, atol=1e-3,
                                           err_msg=key)
            for r in a[zero]:  # libBigWig's zero sums: ours is the true sum of the data
                mean = bw.stats(names[r["chrom"]], int(r["start"]), int(r["end"]), type="mean",
                                exact=True)[0]
                assert r["sum"] == pytest.approx(mean * r["valid"], rel=1e-5, abs=1e-4)


@pytest.fixture(scope="module")
def synthetic() -> tuple[RegionSet, np.ndarray]:
    regions = RegionSet(SYNTHETIC)
    rng = np.random.default_rng(7)
    values = rng.gamma(0.6, 2.0, regions.n_bins).astype(np.float32)
    values[rng.random(regions.n_bins) < 0.2] = 0.0
    values[0] = 0.1  # not the maximum: libBigWig's header misses a first-item maximum
    values[5:9] = -1.5  # negative values too
    return regions, values


def test_synthetic_layout_matches_pybigwig(synthetic, tmp_path):
    regions, values = synthetic
    assert regions.n_bins > 65_535 + 9_000  # one section longer than a block's 16-bit count
    ref = tmp_path / "ref.bw"
    _reference(ref, regions, values, SIZES)
    ours = tmp_path / "ours.bw"
    write_bigwig(values, regions, ours, SIZES)
    assert_same_file(ours, ref, SIZES)
    with pyBigWig.open(str(ours)) as bw:
        assert bw.header()["nLevels"] >= 2
        for chrom, end in (("chrB", 19), ("chrC", 25)):  # a single bin, clipped or whole
            value = float(values[regions.chrom_bins(chrom)[0]])
            assert bw.intervals(chrom) == ((0, end, pytest.approx(value)),)
        assert bw.intervals("chrA")[-1][:2] == (SIZES["chrA"] - 13, SIZES["chrA"])
        assert bw.intervals("chrD", 39_000, 53_000)[-1][:2] == (52_375, 52_400)  # gap before


def test_chunked_streaming_writes_the_same_file(synthetic, tmp_path):
    """Chunk boundaries inside intervals (the zoom records carry over) change nothing."""
    regions, values = synthetic
    whole, chunked = tmp_path / "whole.bw", tmp_path / "chunked.bw"
    write_bigwigs([whole], regions, SIZES, lambda lo, hi: values[None, lo:hi],
                  chunk_bins=10**7)
    calls = []

    def chunk(lo: int, hi: int) -> np.ndarray:
        calls.append((lo, hi))
        return np.stack([values[lo:hi], -values[lo:hi]])

    write_bigwigs([chunked, tmp_path / "negated.bw"], regions, SIZES, chunk, chunk_bins=777)
    assert len(calls) > 100 and max(hi - lo for lo, hi in calls) == 777
    assert whole.read_bytes() != chunked.read_bytes()  # other data blocks, the same content:
    assert_same_file(chunked, whole, SIZES, seed=2)
    ref = tmp_path / "negated-ref.bw"
    _reference(ref, regions, -values, SIZES)
    with pyBigWig.open(str(tmp_path / "negated.bw")) as a, pyBigWig.open(str(ref)) as b:
        assert a.intervals("chrD") == b.intervals("chrD")
        assert a.header()["minVal"] == b.header()["minVal"]
    assert_same_zoom_records(tmp_path / "negated.bw", ref)


def test_nan_bins_are_no_data(synthetic, tmp_path):
    """NaN bins are left out (pyBigWig's own files with NaN entries crash it on reading)."""
    regions, values = synthetic
    values = values.copy()
    rng = np.random.default_rng(3)
    values[rng.random(len(values)) < 0.05] = np.nan
    values[regions.chrom_bins("chrB")[0]] = np.nan  # a chromosome with no data at all
    values[-1] = np.nan  # the clipped last bin of chrD
    ref, ours = tmp_path / "ref.bw", tmp_path / "ours.bw"
    _reference(ref, regions, values, SIZES)
    write_bigwig(values, regions, ours, SIZES)
    assert_same_file(ours, ref, SIZES, seed=1)
    with pyBigWig.open(str(ours)) as bw:
        assert bw.intervals("chrB") is None
        got = bw.values("chrD", 1_000, 40_000, numpy=True)[::25]
        first, _ = regions.chrom_bins("chrD")
        np.testing.assert_array_equal(got, values[first:first + len(got)])  # NaN where NaN


def test_real_pilot_track_matches_pybigwig(tmp_path, pilot_dir):
    """A real Roadmap track: 42 regions on 20 hg19 chromosomes, 1,126,469 bins."""
    from avocado_core.datasets import HG19_CHROM_SIZES

    regions = RegionSet.roadmap_pilot()
    values = np.sinh(np.load(pilot_dir / "E116.H3K4me3.pilot.arcsinh.npz")["arr_0"])
    values = values.astype(np.float32)
    sizes = {c: int(HG19_CHROM_SIZES[c]) for c in regions.chroms}
    ref, ours = tmp_path / "ref.bw", tmp_path / "ours.bw"
    _reference(ref, regions, values, sizes)
    write_bigwig(values, regions, ours, sizes)
    with pyBigWig.open(str(ours)) as bw:
        assert bw.header()["nLevels"] >= 3 and len(bw.chroms()) == len(regions.chroms) == 20
    iv = regions.intervals
    windows = [(c, int(f), int(f) + 25 * int(n))
               for c, f, n in zip(iv["chrom"], iv["first_bin_start"], iv["n_bins"])]
    assert_same_file(ours, ref, sizes, windows=windows)


def test_zoom_levels_follow_libbigwig():
    assert zoom_levels(25, 10**9) == [400 * 4**k for k in range(10)]
    assert zoom_levels(24.99, 2_500_007) == [384, 1536, 6144, 24576, 98304, 393216, 1572864]
    assert zoom_levels(25, 1000) == [400]
    assert zoom_levels(25, 300) == [300]  # never past the longest chromosome
    assert zoom_levels(0.5, 10**6)[0] == 10


def test_writer_errors(tmp_path):
    with open(tmp_path / "x.bw", "w+b") as fh:
        writer = BigWigWriter(fh, [("chr1", 1000)], 25)
        with pytest.raises(AvocadoKeyError, match="'chr2'"):
            writer.add_fixed_step("chr2", 0, 25, np.ones(3))
        writer.add_fixed_step("chr1", 100, 25, np.ones(3))
        with pytest.raises(AvocadoValueError, match="in order"):
            writer.add_fixed_step("chr1", 0, 25, np.ones(3))
        with pytest.raises(AvocadoValueError, match="past its length"):
            writer.add_fixed_step("chr1", 900, 25, np.ones(5))
        with pytest.raises(AvocadoValueError, match="NaN"):
            writer.add_intervals("chr1", [500], [510], [np.nan])
        writer.close()
    check_bigwig_file(tmp_path / "x.bw")
    with pyBigWig.open(str(tmp_path / "x.bw")) as bw:
        assert bw.intervals("chr1") == ((100, 125, 1.0), (125, 150, 1.0), (150, 175, 1.0))


def test_a_full_disk_or_a_failing_chunk_leaves_nothing(synthetic, tmp_path, monkeypatch):
    import errno
    import shutil

    regions, values = synthetic
    target = tmp_path / "out" / "x.bw"

    def full(src, dst, length=0):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)  # the zoom levels' copy at the end
    with pytest.raises(AvocadoDiskFullError, match=f"no space left on device writing {target}"):
        write_bigwig(values, regions, target, SIZES)
    monkeypatch.undo()
    assert list(target.parent.iterdir()) == []

    def failing(lo: int, hi: int) -> np.ndarray:
        if lo > 50_000:
            raise RuntimeError("the model broke")
        return values[None, lo:hi]

    with pytest.raises(RuntimeError, match="the model broke"):
        write_bigwigs([target], regions, SIZES, failing, chunk_bins=10_000)
    assert list(target.parent.iterdir()) == []
    write_bigwig(values, regions, target, SIZES)
    assert [p.name for p in target.parent.iterdir()] == ["x.bw"]


def test_header_summary_known_answer(tmp_path):
    """Total summary of 5, 1, 2 over 25 bp each and a 10 bp item of -3 (pyBigWig's own header
    says max 2 here: it misses a maximum that comes first)."""
    path = tmp_path / "s.bw"
    with open(path, "w+b") as fh:
        writer = BigWigWriter(fh, [("chr1", 1000), ("chr2", 10)], 25)
        writer.add_fixed_step("chr1", 0, 25, np.array([5.0, 1.0, 2.0]))
        writer.add_intervals("chr2", [0], [10], [-3.0])
        writer.close()
    with pyBigWig.open(str(path)) as bw:
        header = bw.header()
        assert (header["nBasesCovered"], header["minVal"], header["maxVal"]) == (85, -3, 5)
        assert header["sumData"] == 5 * 25 + 25 + 2 * 25 - 30
        assert header["sumSquared"] == 25 * 25 + 25 + 4 * 25 + 90
        assert bw.stats("chr1", 0, 75, type="max", exact=False) == [5.0]
        assert bw.stats("chr1", 0, 1000, type="mean", exact=False) == [pytest.approx(8 / 3)]


def test_an_all_nan_track_is_an_empty_readable_file(synthetic, tmp_path):
    regions, values = synthetic
    path = tmp_path / "empty.bw"
    write_bigwig(np.full_like(values, np.nan), regions, path, SIZES)
    check_bigwig_file(path)
    with pyBigWig.open(str(path)) as bw:
        assert bw.header()["nLevels"] == 0 and bw.header()["nBasesCovered"] == 0
        assert bw.chroms() == SIZES and bw.intervals("chrA") is None
        assert bw.stats("chrD", 0, SIZES["chrD"]) == [None]
        assert np.isnan(bw.values("chrA", 0, 100, numpy=True)).all()
