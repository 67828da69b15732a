"""RegionSet and locus parsing, including the real pilot layout checked against real tracks."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet, format_locus, parse_locus


# ---------------------------------------------------------------- parse_locus
@pytest.mark.parametrize("text, expected", [
    ("chr1:151,200,000-151,300,000", ("chr1", 151_200_000, 151_300_000)),
    ("chr1:151.2M-151.3M", ("chr1", 151_200_000, 151_300_000)),
    ("chr1:10k-20k", ("chr1", 10_000, 20_000)),
    ("chr1:10kb-20Kb", ("chr1", 10_000, 20_000)),
    (" chrX : 5 - 30 ", ("chrX", 5, 30)),
    ("2:1.5m-2m", ("2", 1_500_000, 2_000_000)),
    ("chr7:1000\u20132000", ("chr7", 1000, 2000)),
])
def test_parse_locus_forms(text, expected):
    assert parse_locus(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("chr1:1000", "chrom:start-end"),
    ("chr1", "chrom:start-end"),
    ("chr1:2000-1000", "start 2,000 must be below end 1,000"),
    ("chr1:1.00001k-2k", "not a whole number"),
])
def test_parse_locus_errors(text, fragment):
    with pytest.raises(AvocadoValueError, match=fragment):
        parse_locus(text)
    with pytest.raises(ValueError):  # the contract: a ValueError subclass
        parse_locus(text)


def test_format_locus_round_trip():
    assert format_locus("chr1", 151_200_000, 151_300_000) == "chr1:151,200,000-151,300,000"
    assert parse_locus(format_locus("chr3", 5, 77)) == ("chr3", 5, 77)


# ---------------------------------------------------------------- the pilot layout
@pytest.fixture(scope="module")
def pilot() -> RegionSet:
    return RegionSet.roadmap_pilot()


def test_pilot_total_and_known_bins(pilot, pilot_dir):
    assert pilot.n_bins == 1_126_469
    assert len(pilot) == 42
    assert pilot.chroms[0] == "chr1" and pilot.chroms[-1] == "chr22"
    assert "chrX" not in pilot.chroms
    # Known bins from the layout rule: first bin of a region starts at (start // 25 - 1) * 25.
    chrom, start = pilot.bin_coordinates([0, 20_001, 20_002, 1_058_467, 1_126_468])
    assert list(chrom) == ["chr1", "chr1", "chr2", "chr22", "chr22"]
    assert list(start) == [151_158_025, 151_658_050, 51_658_675, 31_803_925, 33_503_950]
    # The shared layout table agrees row by row.
    layout = pd.read_csv(pilot_dir / "pilot-regions-layout.hg19.tsv", sep="\t", comment=None,
                         skiprows=2, header=None)
    iv = pilot.intervals
    assert list(iv["name"]) == list(layout[0])
    np.testing.assert_array_equal(iv["offset"], layout[4])
    np.testing.assert_array_equal(iv["n_bins"], layout[5])
    np.testing.assert_array_equal(iv["first_bin_start"], layout[6])
    np.testing.assert_array_equal(iv["first_bin_start"] + 25 * iv["n_bins"], layout[7])


def test_pilot_layout_matches_real_signal(pilot, pilot_dir, data_mirror):
    """H3K4me3 (a promoter mark) is far higher on GENCODE TSS bins than elsewhere in H1."""
    signal = np.load(pilot_dir / "E003.H3K4me3.pilot.arcsinh.npz")["arr_0"]
    assert signal.shape == (pilot.n_bins,)
    with gzip.open(data_mirror / "annotations-hg19" / "gencode.v19.tss.pilot.bed.gz", "rt") as fh:
        tss = pd.read_csv(fh, sep="\t", header=None)
        bins = pilot.bins_of(tss[0].to_numpy(), tss[1].to_numpy())
    bins = bins[bins >= 0]
    assert len(bins) > 500
    at_tss = signal[bins].mean()
    shifted = signal[np.clip(bins + 400, 0, pilot.n_bins - 1)].mean()  # 10 kb away
    assert at_tss > 3.0 * signal.mean()  # measured: 4.2x
    assert at_tss > 3.0 * shifted  # measured: 3.9x


def test_bins_of_round_trip(pilot):
    rng = np.random.default_rng(0)
    bins = rng.integers(0, pilot.n_bins, 50_000)
    chrom, start = pilot.bin_coordinates(bins)
    np.testing.assert_array_equal(pilot.bins_of(chrom, start + rng.integers(0, 25, len(bins))),
                                  bins)
    # chr prefix is matched either way; uncovered positions give -1
    c, s = pilot.bin_coordinates(20_002)
    assert int(pilot.bins_of(c[0][3:], s[0])) == 20_002
    chr1_bins = pilot.bins_of("chr1", [0, 151_158_024, 151_158_025, 151_658_075])
    assert chr1_bins[[0, 1, 2, 3]].tolist() == [-1, -1, 0, -1]
    assert int(pilot.bins_of("chrX", 5)) == -1
    assert pilot.bins_of("chr1", np.zeros((2, 3), dtype=int)).shape == (2, 3)


def test_locus_bins(pilot):
    start, end = pilot.locus_bins("chr1:151,158,025-151,158,100")
    assert (start, end) == (0, 3)
    assert pilot.locus_bins(("chr2", 51_658_675, 51_658_676)) == (20_002, 20_003)
    assert pilot.locus_bins("chr1:151.2M-151.3M") == ((151_200_000 - 151_158_025) // 25,
                                                      (151_300_000 - 151_158_025) // 25)
    with pytest.raises(AvocadoValueError, match="ENr231"):
        pilot.locus_bins("chr1:151.6M-151.7M")
    assert pilot.locus_bins("chr1:151.6M-151.7M", clip=True) == (
        (151_600_000 - 151_158_025) // 25, 20_002)
    with pytest.raises(AvocadoKeyError, match="chrX"):
        pilot.locus_bins("chrX:1-100")
    with pytest.raises(KeyError):
        pilot.locus_bins("chrX:1-100")
    assert pilot.bin_locus(0, 4) == "chr1:151,158,025-151,158,125"


def test_region_of_bin_and_errors(pilot):
    assert pilot.region_of_bin(20_002)["name"] == "ENr112"
    assert pilot.region_of_bin(1_126_468)["name"] == "ENm004"
    with pytest.raises(AvocadoValueError, match="1126469"):
        pilot.region_of_bin(1_126_469)
    with pytest.raises(AvocadoValueError, match="outside"):
        pilot.bin_coordinates([-1])
    with pytest.raises(AvocadoValueError, match="not consecutive"):
        RegionSet(pd.DataFrame({"chrom": ["a", "b", "a"], "start": [0, 0, 100],
                                "end": [50, 50, 150]})).chrom_bins("a")


# ---------------------------------------------------------------- other constructors
def test_from_chrom_sizes(tmp_path):
    sizes = tmp_path / "dm3.chrom.sizes"
    sizes.write_text("chrX\t22422827\nchr2L\t23011544\nchrM\t19517\n")
    rs = RegionSet.from_chrom_sizes(sizes)
    assert rs.chroms == ["chrX", "chr2L", "chrM"]
    assert rs.n_bins == -(-22_422_827 // 25) + -(-23_011_544 // 25) + -(-19_517 // 25)
    first_2l = -(-22_422_827 // 25)
    assert rs.chrom_bins("chr2L") == (first_2l, first_2l - (-23_011_544 // 25))
    assert rs.chrom_bins("X") == (0, 896_914)
    sub = RegionSet.from_chrom_sizes({"chr1": 1000, "chr2": 60}, chroms=["chr2"])
    assert sub.n_bins == 3 and sub.chroms == ["chr2"]
    with pytest.raises(AvocadoKeyError, match="chr9"):
        RegionSet.from_chrom_sizes({"chr1": 1000}, chroms=["chr9"])


def test_from_bed_read_write(tmp_path, pilot_dir):
    rs = RegionSet.from_bed(pilot_dir / "encodePilotRegions.hg19.bed", sort=True)
    assert len(rs) == 44 and rs.chroms[-1] == "chrX"
    assert rs.chroms[:3] == ["chr1", "chr2", "chr4"]
    # aligned bins covering each interval
    row = rs.intervals.iloc[0]
    assert row["first_bin_start"] == 151_158_050 and row["n_bins"] == 20_001
    path = tmp_path / "rs.tsv"
    rs.write(path)
    assert RegionSet.read(path) == rs
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_overlapping_intervals_refused():
    with pytest.raises(AvocadoValueError, match="share 25 bp bins"):
        RegionSet(pd.DataFrame({"chrom": ["chr1", "chr1"], "start": [0, 110],
                                "end": [120, 300]}))
    with pytest.raises(AvocadoValueError, match="empty or negative"):
        RegionSet(pd.DataFrame({"chrom": ["chr1"], "start": [10], "end": [10]}))
