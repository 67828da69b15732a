"""TrackStore: an on-disk collection of experiments over one region set.

Layout of a store directory::

    store/
      store.json                      format version, bin size, number of bins (and what
                                      update_info adds, e.g. ``synthetic``)
      regions.tsv                     the RegionSet (RegionSet.write)
      catalog.tsv                     one row per track: biosample, assay, kind, source,
                                      transform, n_bins, file
      biosamples.tsv                  biosample metadata, first column "name"
      assays.tsv                      assay metadata, first column "name"
      chrom_sizes.tsv                 (optional) the genome's chromosome sizes, for export
      tracks/observed/<biosample>.<assay>.npy
      tracks/imputed/<biosample>.<assay>.npy

Why plain ``.npy`` files, one per track, opened with ``np.load(mmap_mode="r")``
------------------------------------------------------------------------------
The genome-wide case is thousands of tracks of about 124 million 25 bp bins each.

* One float32 file per track is ~500 MB, a size file systems, rsync and object stores handle
  well; one multi-terabyte HDF5 or zarr array of all tracks would add nothing the model needs.
* Tracks are written independently (ingest one bigWig, add one imputed track): each write is
  one new file plus one rename, with no shared container to lock, repack or corrupt. HDF5 has no
  atomic replace and a crash mid-write can damage the whole file; zarr would do, but brings a
  dependency and thousands of chunk files per track for no gain at this access pattern.
* Reads are windows of one or a few tracks (the app's locus view, a training batch of
  contiguous bins): a memory map touches only the pages of the window, served from the OS page
  cache, with no decompression and no extra library. ``np.load(..., mmap_mode="r")`` opens a
  track in about half a millisecond whatever its size (measured on a 124 M-bin track on a
  loaded 2-core machine; a random 4,000-bin window then read in ~4 ms), so opening a store is
  instant.
* Uncompressed is deliberate: the pilot tracks compress only 1.7-3x (their .npz files are
  1.5-2.7 MB against 4.5 MB raw), and decompression would cost more than reading at training
  throughput and would break O(1) random window access.

The catalog is a small TSV rewritten atomically (temporary file in the same directory, then
``os.replace``; every write goes through :mod:`avocado_core._io`, so files get the umask's
permissions and a full disk raises ``AvocadoDiskFullError``). It is the single commit point of
every change: a track's values go to a new file first, and only the catalog rename makes them
visible. A crash at any moment therefore leaves the store as it was before: the temporary file
of a killed writer is removed by the next write to the store, and an unreferenced track file by
:meth:`TrackStore.vacuum`. Mutations take an advisory lock (``.lock``, ``fcntl.flock``) so that
two processes adding tracks at once do not lose each other's catalog rows. Readers holding a
memory map of a replaced track keep seeing the old values (POSIX keeps the unlinked file alive).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _io
from ._lazy_tracks import LazyTracks
from ._paths import file_stem, inside
from .errors import AvocadoKeyError, AvocadoValueError, short_list
from .regions import RegionSet

try:  # POSIX advisory locks; on other systems mutations are simply not serialized
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["TrackStore", "KINDS", "CATALOG_COLUMNS", "IMPUTATION_FILE"]

#: observed: measured signal; imputed: a model's imputation; spread: the standard deviation of
#: an ensemble's members around their mean imputation (``impute_experiments(spread=True)``).
KINDS = ("observed", "imputed", "spread")
IMPUTATION_FILE = "imputation.json"
CATALOG_COLUMNS = ["biosample", "assay", "kind", "source", "transform", "n_bins", "file"]
FORMAT_VERSION = 1
#: Bytes of an ``.npy`` header (at most; numpy pads it to a multiple of 64).
_NPY_HEADER = 128
#: Most track files a store keeps memory-mapped at once.
_OPEN_MAPS = 512


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise AvocadoValueError(f"track kind {kind!r} is not known; expected one of {list(KINDS)}")
    return kind


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AvocadoValueError(f"{what} name must be a non-empty string, got {value!r}")
    if any(ch in value for ch in "\t\n\r\0"):
        raise AvocadoValueError(
            f"{what} name {value!r} contains a tab, newline or NUL; these cannot be stored"
        )
    return value


def _metadata_frame(table: pd.DataFrame | None, what: str) -> pd.DataFrame:
    """Normalize a metadata table to a DataFrame indexed by name (strings)."""
    if table is None:
        return pd.DataFrame(index=pd.Index([], name="name", dtype=object))
    if not isinstance(table, pd.DataFrame):
        raise AvocadoValueError(
            f"{what} metadata must be a pandas DataFrame, got {type(table).__name__}"
        )
    df = table.copy()
    if "name" in df.columns:
        df = df.set_index("name")
    df.index = df.index.astype(str)
    df.index.name = "name"
    if df.index.has_duplicates:
        dup = df.index[df.index.duplicated()][0]
        raise AvocadoValueError(
            f"{what} metadata names {dup!r} more than once; names must be unique"
        )
    return df


def _check_chrom_sizes(chrom_sizes: Mapping[str, int], regions: RegionSet) -> dict[str, int]:
    if not isinstance(chrom_sizes, Mapping):
        raise AvocadoValueError(
            f"chrom_sizes must be a mapping {{chrom: length}}, got {type(chrom_sizes).__name__}")
    sizes = {str(k): int(v) for k, v in chrom_sizes.items()}
    missing = [c for c in regions.chroms if c not in sizes]
    if missing:
        raise AvocadoValueError(
            f"chrom_sizes lack the region-set chromosome(s) {missing}; given: {short_list(sizes)}")
    iv = regions.intervals
    too_long = iv[iv["end"].to_numpy() > iv["chrom"].map(sizes).to_numpy()]
    if len(too_long):
        row = too_long.iloc[0]
        raise AvocadoValueError(
            f"interval {row['name']} ends at {row['end']:,}, past the end of {row['chrom']} "
            f"({sizes[row['chrom']]:,} bp) in chrom_sizes")
    return sizes


def _chrom_sizes_text(sizes: Mapping[str, int]) -> str:
    return "".join(f"{c}\t{n}\n" for c, n in sizes.items())


class _TrackMapping(LazyTracks):
    """Read-only lazy mapping ``(biosample, assay) -> np.memmap`` of one kind of track."""

    def __init__(self, store: "TrackStore", kind: str):
        super().__init__(store.experiments(kind))
        self._store = store
        self._kind = kind

    def _load(self, key: tuple[str, str]) -> np.memmap:
        return self._store.track(key[0], key[1], self._kind)

    def _missing(self, key: object) -> str:
        return (f"experiment {key!r} has no {self._kind} track in the store; available: "
                f"{short_list(map(str, self._keys))}")

    def __repr__(self) -> str:
        return f"<{len(self)} {self._kind} tracks of {self._store.path}>"


class TrackStore:
    """An on-disk collection of tracks (observed and imputed) over one region set.

    ``TrackStore(path)`` opens an existing store; :meth:`create` makes a new one. Tracks are
    float32 ``.npy`` files opened as read-only memory maps, so opening is instant and
    :meth:`fetch` reads only the requested window.

    Parameters
    ----------
    path: str or PathLike
        The store directory.

    Attributes
    ----------
    path: pathlib.Path
    regions: RegionSet
    n_bins: int
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not (self.path / "catalog.tsv").is_file() or not (self.path / "regions.tsv").is_file():
            raise AvocadoValueError(
                f"{self.path} is not a track store (no catalog.tsv / regions.tsv); create one "
                "with TrackStore.create(path, regions)"
            )
        info_path = self.path / "store.json"
        if info_path.is_file():
            info = json.loads(info_path.read_text())
            if info.get("format_version", 1) > FORMAT_VERSION:
                raise AvocadoValueError(
                    f"store {self.path} has format version {info['format_version']}; this "
                    f"version of avocado_core reads up to {FORMAT_VERSION}"
                )
        self.regions: RegionSet = RegionSet.read(self.path / "regions.tsv")
        self._catalog_cache: tuple[tuple[int, int, int], pd.DataFrame] | None = None
        #: The catalog last indexed and its (biosample, assay, kind) -> file dictionary.
        self._file_index: tuple[pd.DataFrame, dict[tuple[str, str, str], str]] | None = None
        self._meta_cache: dict[str, tuple[tuple[int, int, int], pd.DataFrame]] = {}
        #: Open memory maps of track files, each with the file's stat key when it was opened
        #: (a file replaced since, by an atomic rename, is opened again).
        self._maps: OrderedDict[str, tuple[tuple[int, int, int], np.memmap]] = OrderedDict()
        self._maps_lock = threading.Lock()

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: str | os.PathLike, regions: RegionSet,
               biosamples: pd.DataFrame | None = None, assays: pd.DataFrame | None = None,
               exist_ok: bool = False, *,
               chrom_sizes: Mapping[str, int] | None = None) -> "TrackStore":
        """Create an empty store over a region set.

        The directory is assembled under a temporary name beside ``path`` and renamed into
        place, so a half-made store is never seen.

        Parameters
        ----------
        path: str or PathLike
            Directory to create (it must not exist, or be empty).
        regions: RegionSet
        biosamples, assays: pandas.DataFrame, optional
            Metadata tables, indexed by name or with a ``name`` column.
        exist_ok: bool
            If a store already exists at ``path`` with the same region set, open it (and merge
            any given metadata) instead of raising. Default is False.
        chrom_sizes: Mapping[str, int], optional
            The genome's chromosome sizes (used when exporting bigWigs); see
            :meth:`set_chrom_sizes`.
        """
        path = Path(path)
        if not isinstance(regions, RegionSet):
            raise AvocadoValueError(f"regions must be a RegionSet, got {type(regions).__name__}")
        if (path / "catalog.tsv").is_file():
            if not exist_ok:
                raise AvocadoValueError(
                    f"a track store already exists at {path}; pass exist_ok=True to open it"
                )
            store = cls(path)
            if store.regions != regions:
                raise AvocadoValueError(
                    f"the store at {path} has a different region set ({store.regions!r}) from "
                    f"the one given ({regions!r})"
                )
            if biosamples is not None or assays is not None:
                store.set_metadata(biosamples=biosamples, assays=assays)
            if chrom_sizes is not None and store.chrom_sizes != dict(chrom_sizes):
                store.set_chrom_sizes(chrom_sizes)
            return store
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise AvocadoValueError(f"{path} exists and is not an empty directory or a track store")
        path.parent.mkdir(parents=True, exist_ok=True)
        _io.remove_stale(path.parent, path.name)
        try:
            with _io.atomic_dir(path, replace=False) as tmp:
                for kind in KINDS:
                    _io.make_dir(tmp / "tracks" / kind)
                regions.write(tmp / "regions.tsv")
                _io.write_text(tmp / "store.json", json.dumps(
                    {"format_version": FORMAT_VERSION, "bin_size": regions.bin_size,
                     "n_bins": regions.n_bins}, indent=2) + "\n")
                _io.write_text(tmp / "catalog.tsv", pd.DataFrame(columns=CATALOG_COLUMNS)
                               .to_csv(sep="\t", index=False))
                for name, table in (("biosamples", biosamples), ("assays", assays)):
                    _io.write_text(tmp / f"{name}.tsv",
                                   _metadata_frame(table, name).to_csv(sep="\t"))
                if chrom_sizes is not None:
                    _io.write_text(tmp / "chrom_sizes.tsv",
                                   _chrom_sizes_text(_check_chrom_sizes(chrom_sizes, regions)))
        except OSError:
            # another process created the store meanwhile: use theirs if allowed
            if exist_ok and (path / "catalog.tsv").is_file():
                return cls.create(path, regions, biosamples, assays, exist_ok=True,
                                  chrom_sizes=chrom_sizes)
            raise
        return cls(path)

    # ------------------------------------------------------------------ reading tables
    def _stat_key(self, file: Path) -> tuple[int, int, int]:
        st = file.stat()
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _read_catalog(self) -> pd.DataFrame:
        file = self.path / "catalog.tsv"
        key = self._stat_key(file)
        if self._catalog_cache is not None and self._catalog_cache[0] == key:
            return self._catalog_cache[1]
        df = pd.read_csv(file, sep="\t", dtype=str, keep_default_na=False)
        for col in CATALOG_COLUMNS:
            if col not in df.columns:
                df[col] = ""
        df = df[CATALOG_COLUMNS + [c for c in df.columns if c not in CATALOG_COLUMNS]]
        df["n_bins"] = pd.to_numeric(df["n_bins"]).astype(np.int64) if len(df) else \
            df["n_bins"].astype(np.int64)
        for b, a, f in zip(df["biosample"], df["assay"], df["file"]):  # rows, not positions
            inside(self.path, f, f"the file of {b}/{a} in {file}")
        self._catalog_cache = (key, df)
        return df

    def _read_metadata(self, name: str) -> pd.DataFrame:
        file = self.path / f"{name}.tsv"
        if not file.is_file():
            return _metadata_frame(None, name)
        key = self._stat_key(file)
        cached = self._meta_cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        df = pd.read_csv(file, sep="\t", dtype={"name": str}).set_index("name")
        df.index = df.index.astype(str)
        self._meta_cache[name] = (key, df)
        return df

    @property
    def catalog(self) -> pd.DataFrame:
        """One row per track: biosample, assay, kind, source, transform, n_bins, file."""
        return self._read_catalog().copy()

    @property
    def n_bins(self) -> int:
        """Number of bins of every track (that of the region set)."""
        return self.regions.n_bins

    def _with_catalog_names(self, table: pd.DataFrame, column: str) -> pd.DataFrame:
        names = [n for n in dict.fromkeys(self._read_catalog()[column]) if n not in table.index]
        if not names:
            return table.copy()
        return pd.concat([table, pd.DataFrame(index=pd.Index(names, name="name"))])

    @property
    def biosamples(self) -> pd.DataFrame:
        """Biosample metadata indexed by name; every biosample of the catalog has a row."""
        return self._with_catalog_names(self._read_metadata("biosamples"), "biosample")

    @property
    def assays(self) -> pd.DataFrame:
        """Assay metadata indexed by name; every assay of the catalog has a row."""
        return self._with_catalog_names(self._read_metadata("assays"), "assay")

    # ------------------------------------------------------------------ writing tables
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's write lock; first remove the temporary files of killed writers."""
        if fcntl is None:  # pragma: no cover
            self._remove_stale()
            yield
            return
        with open(self.path / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._remove_stale()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _remove_stale(self) -> list[Path]:
        return [p for d in (self.path, *(self.path / "tracks" / k for k in KINDS))
                for p in _io.remove_stale(d)]

    def _write_catalog(self, df: pd.DataFrame) -> None:
        _io.write_text(self.path / "catalog.tsv", df.to_csv(sep="\t", index=False))

    def set_metadata(self, biosamples: pd.DataFrame | None = None,
                     assays: pd.DataFrame | None = None, replace: bool = False) -> None:
        """Add or update biosample / assay metadata.

        Parameters
        ----------
        biosamples, assays: pandas.DataFrame, optional
            Indexed by name or with a ``name`` column; columns such as ``anatomy``,
            ``description``. Rows update the rows of the same name; other rows are kept.
        replace: bool
            Replace the whole table instead of updating it. Default is False.
        """
        with self._locked():
            for name, table in (("biosamples", biosamples), ("assays", assays)):
                if table is None:
                    continue
                new = _metadata_frame(table, name)
                if not replace:
                    old = self._read_metadata(name)
                    new = new.combine_first(old) if len(old) else new
                    order = list(old.index) + [n for n in new.index if n not in old.index]
                    new = new.loc[order, list(dict.fromkeys([*old.columns, *new.columns]))]
                _io.write_text(self.path / f"{name}.tsv", new.to_csv(sep="\t"))

    @property
    def info(self) -> dict:
        """The store's own record (``store.json``): format version, bin size, number of bins,
        and the fields :meth:`update_info` added (e.g. ``synthetic``: how generated signal was
        made, so that nothing built on it passes for measured data)."""
        file = self.path / "store.json"
        return json.loads(file.read_text()) if file.is_file() else {}

    def update_info(self, **fields: Any) -> None:
        """Add or replace fields of ``store.json`` (atomic); its format fields cannot change."""
        fixed = sorted({"format_version", "bin_size", "n_bins"} & set(fields))
        if fixed:
            raise AvocadoValueError(f"{', '.join(fixed)} of store {self.path} are fixed when it "
                                    "is created; expected other fields")
        with self._locked():
            info = {**self.info, **fields}
            _io.write_text(self.path / "store.json", json.dumps(info, indent=2) + "\n")

    @property
    def chrom_sizes(self) -> dict[str, int] | None:
        """The genome's chromosome sizes (``chrom_sizes.tsv``), or None if not recorded."""
        file = self.path / "chrom_sizes.tsv"
        if not file.is_file():
            return None
        table = pd.read_csv(file, sep="\t", header=None, dtype={0: str, 1: np.int64})
        return dict(zip(table[0], table[1]))

    def set_chrom_sizes(self, chrom_sizes: Mapping[str, int]) -> None:
        """Record the genome's chromosome sizes (every region-set chromosome must be there and
        every interval must lie within its chromosome)."""
        sizes = _check_chrom_sizes(chrom_sizes, self.regions)
        with self._locked():
            _io.write_text(self.path / "chrom_sizes.tsv", _chrom_sizes_text(sizes))

    @property
    def imputation_info(self) -> dict:
        """What made the store's imputed tracks (``imputation.json``; {} if never recorded).

        ``{"sources": {source: {"trained_on": [[biosample, assay], ...], "n_models": k,
        "band": {...}}}}``, one entry per ``source`` of the catalog's imputed tracks (written by
        :func:`~avocado_core.imputation.impute_experiments` and
        :func:`~avocado_core.uncertainty.calibrate_store_band`).
        """
        file = self.path / IMPUTATION_FILE
        return json.loads(file.read_text()) if file.is_file() else {}

    def update_imputation_source(self, source: str, **fields: Any) -> None:
        """Add or replace fields of one source's entry in ``imputation.json`` (atomic)."""
        with self._locked():
            info = self.imputation_info
            entry = info.setdefault("sources", {}).setdefault(str(source), {})
            entry.update(fields)
            _io.write_text(self.path / IMPUTATION_FILE,
                           json.dumps(info, indent=1, sort_keys=True) + "\n")

    # ------------------------------------------------------------------ tracks
    def _file(self, biosample: str, assay: str, kind: str) -> str | None:
        """The catalog's file of a track (a dictionary lookup, rebuilt when the catalog changes:
        the app asks for the same few tracks on every request)."""
        cat = self._read_catalog()
        index = self._file_index
        if index is None or index[0] is not cat:
            keys = zip(cat["biosample"], cat["assay"], cat["kind"])
            index = self._file_index = (cat, dict(zip(keys, cat["file"])))
        return index[1].get((biosample, assay, kind))

    def has_track(self, biosample: str, assay: str, kind: str = "observed") -> bool:
        """Whether the store holds a track of this experiment and kind."""
        _check_kind(kind)
        return self._file(biosample, assay, kind) is not None

    def _missing(self, biosample: str, assay: str, kind: str) -> AvocadoKeyError:
        have = self.experiments(kind)
        return AvocadoKeyError(
            f"no {kind} track for biosample {biosample!r}, assay {assay!r} in {self.path}; "
            f"{kind} tracks: {short_list(f'{b}/{a}' for b, a in have) or 'none'}"
        )

    def track(self, biosample: str, assay: str, kind: str = "observed") -> np.memmap:
        """The whole track as a read-only float32 memory map (nothing is read yet)."""
        _check_kind(kind)
        file = self._file(biosample, assay, kind)
        if file is None:
            raise self._missing(biosample, assay, kind)
        path = self.path / file
        key = self._stat_key(path)
        with self._maps_lock:  # the app's request threads share one store
            cached = self._maps.get(file)
            if cached is not None and cached[0] == key:
                self._maps.move_to_end(file)
                return cached[1]
        values = np.load(path, mmap_mode="r")
        with self._maps_lock:
            self._maps[file] = (key, values)
            if len(self._maps) > _OPEN_MAPS:
                self._maps.popitem(last=False)
        return values

    def _bin_range(self, region: str | tuple | None) -> tuple[int, int]:
        if region is None:
            return 0, self.n_bins
        if isinstance(region, str) or (isinstance(region, (tuple, list)) and len(region) == 3):
            return self.regions.locus_bins(region)
        if isinstance(region, (tuple, list)) and len(region) == 2:
            start, end = (int(v) for v in region)
            if not 0 <= start < end <= self.n_bins:
                raise AvocadoValueError(
                    f"bin range ({start}, {end}) is outside the store's [0, {self.n_bins}) or empty"
                )
            return start, end
        raise AvocadoValueError(
            f"region {region!r} is not understood; expected a locus string such as "
            "'chr1:151.2M-151.3M', a (start_bin, end_bin) tuple, a (chrom, start, end) tuple "
            "or None"
        )

    def fetch(self, biosample: str, assay: str, region: str | tuple | None = None,
              kind: str = "observed") -> np.ndarray:
        """Values of one track over a window, reading only that window from disk.

        Parameters
        ----------
        biosample, assay: str
        region: str, tuple or None
            A locus string (``"chr1:151.2M-151.3M"``) or ``(chrom, start, end)`` lying within one
            region of the region set, a ``(start_bin, end_bin)`` tuple, or None for the whole
            track. Default is None.
        kind: str
            ``"observed"``, ``"imputed"`` or ``"spread"``. Default is ``"observed"``.

        Returns
        -------
        ndarray, dtype float32, shape=(end_bin - start_bin,)
        """
        start, end = self._bin_range(region)
        return np.array(self.track(biosample, assay, kind)[start:end], dtype=np.float32)

    def fetch_many(self, experiments: list[tuple[str, str]], region: str | tuple | None = None,
                   kind: str = "observed") -> np.ndarray:
        """Values of several tracks over one window (see :meth:`fetch`).

        Returns
        -------
        ndarray, dtype float32, shape=(len(experiments), end_bin - start_bin)
        """
        start, end = self._bin_range(region)
        out = np.empty((len(experiments), end - start), dtype=np.float32)
        for i, (biosample, assay) in enumerate(experiments):  # one window read per track
            out[i] = self.track(biosample, assay, kind)[start:end]
        return out

    def experiments(self, kind: str | None = "observed") -> list[tuple[str, str]]:
        """``(biosample, assay)`` pairs with a track of this kind (None: any), in catalog order."""
        cat = self._read_catalog()
        if kind is not None:
            _check_kind(kind)
            cat = cat[cat["kind"] == kind]
        return list(dict.fromkeys(zip(cat["biosample"], cat["assay"])))

    def tracks(self, kind: str = "observed") -> Mapping[tuple[str, str], np.memmap]:
        """Read-only lazy mapping ``(biosample, assay) -> memmap`` (what ``Avocado.fit`` reads)."""
        _check_kind(kind)
        return _TrackMapping(self, kind)

    def _validate(self, values: Any, biosample: str, assay: str) -> np.ndarray:
        what = f"track {biosample}/{assay}"
        arr = np.asarray(values)
        if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating)
                                     or np.issubdtype(arr.dtype, np.integer)):
            raise AvocadoValueError(
                f"{what}: values have dtype {arr.dtype}; expected real numbers (float32 is stored)"
            )
        if arr.ndim != 1:
            raise AvocadoValueError(
                f"{what}: values have shape {arr.shape}; expected ({self.n_bins},)"
            )
        if arr.shape[0] != self.n_bins:
            raise AvocadoValueError(
                f"{what}: {arr.shape[0]:,} values; the store's region set has {self.n_bins:,} bins"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            out = arr.astype(np.float32, copy=False)
        bad = ~np.isfinite(out)
        if bad.any():
            where = np.flatnonzero(bad)
            overflow = np.isfinite(arr[where[0]]) if np.issubdtype(arr.dtype, np.floating) else True
            after = " after conversion to float32" if overflow else ""
            raise AvocadoValueError(
                f"{what}: {where.size:,} non-finite value(s) (NaN or inf{after}), "
                f"the first at bin {int(where[0])} ({out[where[0]]}); expected finite values"
            )
        return out

    def add_track(self, biosample: str, assay: str, values: np.ndarray, kind: str = "observed",
                  source: str = "", transform: str = "arcsinh", overwrite: bool = False) -> None:
        """Add (or replace) one track, atomically.

        The values are validated, written to a new file (fsync'ed), and made visible by an
        atomic rewrite of the catalog; a failure at any point leaves the store as it was.

        Parameters
        ----------
        biosample, assay: str
        values: array-like, shape=(n_bins,)
            Finite real numbers; stored as float32.
        kind: str
            ``"observed"``, ``"imputed"`` or ``"spread"``. Default is ``"observed"``.
        source: str
            Where the values came from (a file path, a model directory). Default is "".
        transform: str
            The transform already applied to the values (``"arcsinh"``, ``"none"``). Default is
            ``"arcsinh"``.
        overwrite: bool
            Replace an existing track of this experiment and kind. Default is False.
        """
        self.add_tracks([(biosample, assay, values)], kind=kind, source=source,
                        transform=transform, overwrite=overwrite)

    def add_tracks(self, tracks: Iterable[tuple[str, str, np.ndarray]], kind: str = "observed",
                   source: str = "", transform: str = "arcsinh", overwrite: bool = False) -> int:
        """Add (or replace) many tracks in one atomic commit.

        Each track is validated and written to its own new file as it comes (so an iterator
        that makes tracks one at a time keeps memory at one track), and the catalog is
        rewritten once at the end: all of them become visible together, or, on any failure,
        none does and the store is left as it was. Adding thousands of tracks this way costs
        one catalog rewrite instead of thousands.

        Parameters
        ----------
        tracks: iterable of (biosample, assay, values)
        kind, source, transform, overwrite:
            As in :meth:`add_track`, for every track.

        Returns
        -------
        int
            The number of tracks added.
        """
        _check_kind(kind)
        _io.make_dir(self.path / "tracks" / kind)
        with self._locked():
            cat = self._read_catalog()
            index = {(b, a): i for i, (b, a, k) in
                     enumerate(zip(cat["biosample"], cat["assay"], cat["kind"])) if k == kind}
            rows: dict[tuple[str, str], dict] = {}
            written: list[Path] = []
            replaced: list[str] = []
            try:
                for biosample, assay, values in tracks:
                    biosample = _check_name(biosample, "biosample")
                    assay = _check_name(assay, "assay")
                    key = (biosample, assay)
                    if key in rows:
                        raise AvocadoValueError(
                            f"biosample {biosample!r}, assay {assay!r} is given twice")
                    arr = self._validate(values, biosample, assay)
                    old_file = cat["file"].iloc[index[key]] if key in index else None
                    if old_file is not None and not overwrite:
                        raise AvocadoValueError(
                            f"the store already has a {kind} track for biosample {biosample!r}, "
                            f"assay {assay!r}; pass overwrite=True to replace it"
                        )
                    stem = file_stem(biosample, assay)
                    rel = f"tracks/{kind}/{stem}.npy"
                    if rel == old_file:  # never write over the file readers may be mapping
                        rel = f"tracks/{kind}/{stem}.{os.urandom(4).hex()}.npy"
                    target = self.path / rel
                    with _io.atomic_file(target, size=arr.nbytes + _NPY_HEADER) as handle:
                        np.save(handle, arr, allow_pickle=False)
                    written.append(target)
                    if old_file is not None and old_file != rel:
                        replaced.append(old_file)
                    rows[key] = {"biosample": biosample, "assay": assay, "kind": kind,
                                 "source": str(source), "transform": str(transform),
                                 "n_bins": self.n_bins, "file": rel}
                if not rows:
                    return 0
                new = cat.copy()
                fresh = []
                for key, row in rows.items():
                    if key in index:
                        for col, val in row.items():
                            new.iloc[index[key], new.columns.get_loc(col)] = val
                    else:
                        fresh.append(row)
                if fresh:
                    new = pd.concat([new, pd.DataFrame(fresh)], ignore_index=True)
                self._write_catalog(new)  # the commit point
            except BaseException:
                for leftover in written:
                    leftover.unlink(missing_ok=True)
                raise
            for old_file in replaced:
                (self.path / old_file).unlink(missing_ok=True)
        return len(rows)

    def remove_track(self, biosample: str, assay: str, kind: str = "observed") -> None:
        """Remove one track (the catalog first, then the file)."""
        _check_kind(kind)
        with self._locked():
            cat = self._read_catalog()
            mask = (cat["biosample"] == biosample) & (cat["assay"] == assay) & (cat["kind"] == kind)
            if not mask.any():
                raise self._missing(biosample, assay, kind)
            file = cat.loc[mask, "file"].iloc[0]
            self._write_catalog(cat[~mask])
            (self.path / file).unlink(missing_ok=True)

    def vacuum(self) -> list[Path]:
        """Delete track files and temporary files no catalog row refers to (crash leftovers).

        Returns the removed paths.
        """
        removed = []
        with self._locked():
            referenced = {self.path / f for f in self._read_catalog()["file"]}
            for kind in KINDS:
                for file in (self.path / "tracks" / kind).glob("*"):
                    if file.is_file() and file not in referenced:
                        file.unlink()
                        removed.append(file)
        return removed

    # ------------------------------------------------------------------ misc
    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and self.has_track(*key)

    def __len__(self) -> int:
        return len(self._read_catalog())

    def __repr__(self) -> str:
        cat = self._read_catalog()
        counts = ", ".join(f"{(cat['kind'] == k).sum()} {k}" for k in KINDS)
        return (f"TrackStore({str(self.path)!r}: {counts} tracks, "
                f"{cat['biosample'].nunique()} biosamples x {cat['assay'].nunique()} assays, "
                f"{self.n_bins:,} bins)")
