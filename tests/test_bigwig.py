"""bigWig binning, ingestion and export, on UCSC-written files nobody in this project wrote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyBigWig
import pytest

from avocado_core.bigwig import (
    bin_bigwig,
    export_bigwig,
    ingest_bigwig,
    ingest_manifest,
    recorded_transform,
    write_bigwig,
)
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet
from avocado_core.store import TrackStore

DM3_CHRX = 22_422_827


@pytest.fixture(scope="module")
def bw_dir(data_mirror):
    return data_mirror / "bigwig-real"


@pytest.fixture(scope="module")
def chrx_regions() -> RegionSet:
    """Two intervals with ragged edges over the data of both files (chrX 2-5 Mb, X 2.5-3.5 Mb)."""
    return RegionSet(pd.DataFrame({"name": ["a", "b"], "chrom": ["chrX", "chrX"],
                                   "start": [2_499_990, 3_000_013], "end": [2_600_000, 3_199_007]}))


def _pybigwig_means(path, regions: RegionSet) -> np.ndarray:
    """pyBigWig's own exact per-bin means (None -> 0), one stats call per interval."""
    bw = pyBigWig.open(str(path))
    chrom = list(bw.chroms())[0]
    out = []
    for first, n in zip(regions.intervals["first_bin_start"], regions.intervals["n_bins"]):
        stats = bw.stats(chrom, int(first), int(first) + 25 * int(n), type="mean", nBins=int(n),
                         exact=True)
        out.append(np.array([0.0 if s is None else s for s in stats]))
    bw.close()
    return np.concatenate(out)


@pytest.mark.parametrize("name", ["bigwig_chrx_2e6_5e6.bw", "bigwig2_X_2.5e6_3.5e6.bw"])
def test_bin_means_match_pybigwig_stats(bw_dir, chrx_regions, name):
    """Both files, one naming the chromosome chrX and one X, read through a chrX region set."""
    values = bin_bigwig(bw_dir / name, chrx_regions, transform="none")
    expected = _pybigwig_means(bw_dir / name, chrx_regions)
    assert values.dtype == np.float32 and values.shape == (chrx_regions.n_bins,)
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6)
    assert (values > 0).mean() > 0.15  # real signal, not an empty read
    np.testing.assert_allclose(bin_bigwig(bw_dir / name, chrx_regions), np.arcsinh(values),
                               rtol=1e-6)
    # the other naming in the region set reads the same values
    no_prefix = RegionSet(chrx_regions.intervals.assign(chrom="X"))
    np.testing.assert_array_equal(bin_bigwig(bw_dir / name, no_prefix, transform=None), values)


def test_bin_means_match_the_bedgraph(bw_dir, chrx_regions):
    """An independent check: the bedGraph the first file was made from, averaged with NumPy."""
    bg = pd.read_csv(bw_dir / "bedgraph_chrx_2e6_5e6.bg.bgz", sep="\t", header=None,
                     compression="gzip")
    base = np.full(5_000_000, np.nan)
    lengths = (bg[2] - bg[1]).to_numpy()
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pos = np.repeat(bg[1].to_numpy(), lengths) + within
    base[pos] = np.repeat(bg[3].to_numpy(), lengths)
    expected = []
    intervals = chrx_regions.intervals
    for first, n in zip(intervals["first_bin_start"], intervals["n_bins"]):
        block = base[first:first + 25 * n].reshape(n, 25)
        count = (~np.isnan(block)).sum(1)
        expected.append(np.where(count > 0, np.nansum(block, 1) / np.maximum(count, 1), 0.0))
    values = bin_bigwig(bw_dir / "bigwig_chrx_2e6_5e6.bw", chrx_regions, transform="none")
    np.testing.assert_allclose(values, np.concatenate(expected), rtol=1e-6, atol=1e-6)


def test_covered_bins_span_the_files_data_in_each_interval(bw_dir):
    """A file with data over chrX 2-5 Mb only: intervals (or their parts) outside its data, and
    a chromosome it lacks, are not covered; a gap inside its data is (zeros left out)."""
    bg = pd.read_csv(bw_dir / "bedgraph_chrx_2e6_5e6.bg.bgz", sep="\t", header=None,
                     compression="gzip")
    lo, hi = int(bg[1].min()), int(bg[2].max())  # the file's data: [lo, hi) on chrX
    # the file has no data over chrX:3,050,000-3,060,000 (a gap between two bedGraph rows)
    assert ((bg[1] < 3_060_000) & (bg[2] > 3_050_000)).sum() == 0
    regions = RegionSet(pd.DataFrame({
        "chrom": ["chrX", "chrX", "chrX", "chrX", "chr2L"],
        "start": [lo - 10_000, 3_040_000, hi - 5_000, hi + 10_000, 0],
        "end": [lo + 10_000, 3_070_000, hi + 5_000, hi + 20_000, 1_000]}))
    values, covered = bin_bigwig(bw_dir / "bigwig_chrx_2e6_5e6.bw", regions, transform="none",
                                 allow_missing_chroms=True, return_covered=True)
    np.testing.assert_array_equal(values, bin_bigwig(bw_dir / "bigwig_chrx_2e6_5e6.bw", regions,
                                                     transform="none",
                                                     allow_missing_chroms=True))
    chrom, starts = regions.bin_coordinates(np.arange(regions.n_bins))
    ends = starts + 25
    # the bins with any base in [lo, hi) on chrX, from the bedGraph's own extent
    expected = (chrom == "chrX") & (ends > lo) & (starts < hi)
    np.testing.assert_array_equal(covered, expected)
    assert covered.dtype == bool and 0 < covered.sum() < regions.n_bins
    gap = (chrom == "chrX") & (starts >= 3_050_000) & (ends <= 3_060_000)
    assert gap.sum() == 400 and covered[gap].all() and (values[gap] == 0).all()


def test_missing_chromosome_error_names_file_and_chrom(bw_dir):
    regions = RegionSet(pd.DataFrame({"chrom": ["chrX", "chr2L"], "start": [2_000_000, 0],
                                      "end": [2_001_000, 1000]}))
    with pytest.raises(AvocadoKeyError, match=r"bigwig2_X_2.5e6_3.5e6.bw.*'chr2L'.*X"):
        bin_bigwig(bw_dir / "bigwig2_X_2.5e6_3.5e6.bw", regions)
    values = bin_bigwig(bw_dir / "bigwig_chrx_2e6_5e6.bw", regions, transform="none",
                        allow_missing_chroms=True)
    assert (values[40:] == 0).all() and values[:40].sum() > 0
    with pytest.raises(AvocadoValueError, match="not a readable bigWig"):
        bin_bigwig(bw_dir / "LICENSE", regions)
    with pytest.raises(AvocadoValueError, match="'sqrt'"):
        bin_bigwig(bw_dir / "bigwig_chrx_2e6_5e6.bw", regions, transform="sqrt")


def test_region_past_chromosome_end_reads_zero(bw_dir):
    regions = RegionSet.from_chrom_sizes({"X": DM3_CHRX})
    values = bin_bigwig(bw_dir / "bigwig2_X_2.5e6_3.5e6.bw", regions, transform=None)
    assert values.shape == (-(-DM3_CHRX // 25),)
    assert values[:100_000].sum() == 0 and values[100_000:140_000].sum() > 0
    assert values[-1] == 0


@pytest.fixture()
def store(tmp_path, chrx_regions):
    return TrackStore.create(tmp_path / "store", chrx_regions, chrom_sizes={"chrX": DM3_CHRX})


def test_ingest_and_rerun(store, bw_dir, tmp_path):
    path = bw_dir / "bigwig_chrx_2e6_5e6.bw"
    assert ingest_bigwig(store, path, "S2", "H3K4me3") is True
    row = store.catalog.iloc[0]
    assert (row["source"], row["transform"], row["kind"]) == (str(path.resolve()), "arcsinh",
                                                               "observed")
    np.testing.assert_allclose(store.fetch("S2", "H3K4me3"),
                               np.arcsinh(_pybigwig_means(path, store.regions)), rtol=1e-6)
    mtime = (store.path / "catalog.tsv").stat().st_mtime_ns
    assert ingest_bigwig(store, path, "S2", "H3K4me3") is False  # rerun: skipped
    assert (store.path / "catalog.tsv").stat().st_mtime_ns == mtime
    other = bw_dir / "bigwig2_X_2.5e6_3.5e6.bw"
    with pytest.raises(AvocadoValueError, match="overwrite=True"):
        ingest_bigwig(store, other, "S2", "H3K4me3")
    assert ingest_bigwig(store, other, "S2", "H3K4me3", overwrite=True) is True
    assert store.catalog.iloc[0]["source"] == str(other.resolve())


def test_ingest_manifest(store, bw_dir, tmp_path, capsys):
    manifest = tmp_path / "manifest.tsv"
    rel = tmp_path / "links"
    rel.mkdir()
    (rel / "b.bw").symlink_to(bw_dir / "bigwig2_X_2.5e6_3.5e6.bw")
    manifest.write_text("biosample\tassay\tpath\n"
                        f"S2\tH3K4me3\t{bw_dir / 'bigwig_chrx_2e6_5e6.bw'}\n"
                        "Kc167\tH3K4me3\tlinks/b.bw\n")
    report = ingest_manifest(store, manifest)
    assert report["status"].tolist() == ["ingested", "ingested"]
    assert "ingesting bigWigs" in capsys.readouterr().err  # the progress bar
    assert store.experiments() == [("S2", "H3K4me3"), ("Kc167", "H3K4me3")]
    np.testing.assert_allclose(
        store.fetch("Kc167", "H3K4me3"),
        np.arcsinh(_pybigwig_means(bw_dir / "bigwig2_X_2.5e6_3.5e6.bw", store.regions)), rtol=1e-6)
    again = ingest_manifest(store, manifest, progress=False)
    assert again["status"].tolist() == ["skipped", "skipped"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("S3\tH3K27me3\tnowhere.bw\n")  # headerless form
    with pytest.raises(AvocadoValueError, match="nowhere.bw"):
        ingest_manifest(store, bad, progress=False)
    assert len(store.experiments()) == 2


def test_export_ingest_round_trip(store, bw_dir, tmp_path):
    ingest_bigwig(store, bw_dir / "bigwig_chrx_2e6_5e6.bw", "S2", "H3K4me3")
    stored = store.fetch("S2", "H3K4me3")
    store.add_track("S2", "H3K4me3", stored * 0.5 + 0.25, kind="imputed")
    for kind, expected in (("observed", stored), ("imputed", stored * 0.5 + 0.25)):
        out = export_bigwig(store, "S2", "H3K4me3", tmp_path / f"{kind}.bw", kind=kind)
        bw = pyBigWig.open(str(out))
        assert bw.chroms() == {"chrX": DM3_CHRX}
        first = store.regions.intervals["first_bin_start"].iloc[0]
        assert bw.intervals("chrX")[0] == (first, first + 25, pytest.approx(expected[0]))
        bw.close()
        # the file says its values are arcsinh signal: read as arcsinh, they are as stored
        assert recorded_transform(out) == "arcsinh"
        np.testing.assert_array_equal(bin_bigwig(out, store.regions),
                                      expected.astype(np.float32))
        np.testing.assert_allclose(bin_bigwig(out, store.regions, transform="log1p"),
                                   np.log1p(np.sinh(expected)), rtol=1e-6, atol=1e-7)
    # inverse transform: raw signal out (recorded as such), arcsinh on the way back in
    raw = export_bigwig(store, "S2", "H3K4me3", tmp_path / "raw.bw", invert_transform=True)
    assert recorded_transform(raw) == "none"
    np.testing.assert_allclose(bin_bigwig(raw, store.regions), stored, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bin_bigwig(raw, store.regions, transform=None),
                               _pybigwig_means(bw_dir / "bigwig_chrx_2e6_5e6.bw", store.regions),
                               rtol=1e-5, atol=1e-5)


def test_export_whole_chromosome_and_errors(tmp_path, bw_dir):
    regions = RegionSet.from_chrom_sizes({"X": DM3_CHRX})
    store = TrackStore.create(tmp_path / "s", regions)
    ingest_bigwig(store, bw_dir / "bigwig2_X_2.5e6_3.5e6.bw", "S2", "H3K27me3", transform=None)
    values = store.fetch("S2", "H3K27me3")
    out = export_bigwig(store, "S2", "H3K27me3", tmp_path / "x.bw")  # sizes from the region set
    bw = pyBigWig.open(str(out))
    assert bw.chroms() == {"X": DM3_CHRX}
    last = bw.intervals("X", DM3_CHRX - 100, DM3_CHRX)[-1]
    assert last[1] == DM3_CHRX and last[1] - last[0] == DM3_CHRX % 25  # clipped last bin
    bw.close()
    np.testing.assert_array_equal(bin_bigwig(out, regions, transform=None), values)
    with pytest.raises(AvocadoKeyError, match="chr2L"):
        write_bigwig(values, regions, tmp_path / "y.bw", {"chr2L": 100})
    with pytest.raises(AvocadoValueError, match=r"shape \(3,\)"):
        write_bigwig(np.zeros(3), regions, tmp_path / "y.bw", {"X": DM3_CHRX})
    bed_store = TrackStore.create(tmp_path / "t", RegionSet(pd.DataFrame(
        {"chrom": ["X"], "start": [2_500_000], "end": [2_501_000]})))
    bed_store.add_track("a", "b", np.ones(40))
    with pytest.raises(AvocadoValueError, match="chrom_sizes"):
        export_bigwig(bed_store, "a", "b", tmp_path / "z.bw")
    assert not (tmp_path / "y.bw").exists() and not (tmp_path / "z.bw").exists()


def test_export_real_pilot_track_round_trip(tmp_path, pilot_dir):
    """A real 1,126,469-bin Roadmap track out to hg19 bigWig and back, bit for bit."""
    from avocado_core.datasets import HG19_CHROM_SIZES

    regions = RegionSet.roadmap_pilot()
    values = np.load(pilot_dir / "E116.H3K4me3.pilot.arcsinh.npz")["arr_0"]
    path = tmp_path / "E116.H3K4me3.bw"
    write_bigwig(values, regions, path, HG19_CHROM_SIZES)
    bw = pyBigWig.open(str(path))
    assert bw.chroms("chr1") == 249_250_621 and "chrX" not in bw.chroms()
    # bin 0 of the pilot layout is hg19 chr1:151,158,025-151,158,050
    assert list(bw.intervals("chr1", 151_158_025, 151_158_050)) == [
        (151_158_025, 151_158_050, pytest.approx(float(values[0])))]
    bw.close()
    np.testing.assert_array_equal(bin_bigwig(path, regions, transform="none"), values)
    assert recorded_transform(path) is None  # nothing said, nothing recorded


def test_a_files_recorded_transform(tmp_path, bw_dir, chrx_regions):
    # Files of other writers record nothing (ingested as signal); ours only when told, in a
    # note pyBigWig does not see; a note naming an unknown transform is refused by name.
    assert recorded_transform(bw_dir / "bigwig_chrx_2e6_5e6.bw") is None
    values = np.linspace(0, 3, chrx_regions.n_bins, dtype=np.float32)
    sizes = {"chrX": DM3_CHRX}
    write_bigwig(values, chrx_regions, tmp_path / "plain.bw", sizes)
    write_bigwig(values, chrx_regions, tmp_path / "noted.bw", sizes, transform="arcsinh")
    plain, noted = (pyBigWig.open(str(tmp_path / n)) for n in ("plain.bw", "noted.bw"))
    assert noted.header() == plain.header() and noted.chroms() == plain.chroms()
    np.testing.assert_array_equal(noted.values("chrX", 2_499_975, 3_199_025, numpy=True),
                                  plain.values("chrX", 2_499_975, 3_199_025, numpy=True))
    plain.close()
    noted.close()
    np.testing.assert_array_equal(bin_bigwig(tmp_path / "noted.bw", chrx_regions), values)
    np.testing.assert_allclose(bin_bigwig(tmp_path / "plain.bw", chrx_regions),
                               np.arcsinh(values), rtol=1e-6)
    data = (tmp_path / "noted.bw").read_bytes().replace(b'"arcsinh"', b'"x_cubed"')
    (tmp_path / "odd.bw").write_bytes(data)
    with pytest.raises(AvocadoValueError, match="records its values' transform as 'x_cubed'"):
        bin_bigwig(tmp_path / "odd.bw", chrx_regions)
