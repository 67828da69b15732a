"""bigWig in and out: bin a bigWig onto a region set, ingest into a store, export tracks.

Binning reads each interval of the region set with one ``pyBigWig.values(..., numpy=True)``
call (in chunks of at most ``CHUNK_BINS`` bins to bound memory on whole chromosomes), reshapes
the base-pair values to ``(n_bins, bin_size)`` and averages the covered bases of each bin: the
same number as pyBigWig's ``stats(chrom, start, end, type="mean", exact=True)`` for that bin.
Bins without any data become 0. The default transform is ``arcsinh`` (Avocado's).

Chromosome names are matched with or without the ``chr`` prefix (``chrX`` in the region set
reads ``X`` in the file and vice versa). A region-set chromosome absent from a file is an error
naming both, unless ``allow_missing_chroms=True`` (then its bins are 0).

Export writes fixed-step 25 bp entries per interval with our own writer
(:mod:`avocado_core.bigwig_writer`: vectorized, blocks compressed on a thread pool, the layout
and zoom levels of pyBigWig's files), with the chromosome sizes of the genome in the header
and the transform the values carry in a note that bigWig readers do not visit (see
:mod:`avocado_core.bigwig_writer`). Binning reads that note (:func:`recorded_transform`): a
file's values are brought back to the signal before the transform asked for is applied, so
ingesting an exported track with its own transform (``arcsinh`` by default) gives back the
stored values exactly, over the same bins. NaN bins are written as no data (a reader's NaN).
Reading stays with pyBigWig.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .bigwig_writer import NOTE_MAGIC, BigWigWriter, compression_threads, open_bigwig
from .errors import AvocadoKeyError, AvocadoValueError, short_list
from .regions import RegionSet, match_chrom, read_chrom_sizes
from .store import TrackStore

__all__ = ["TRANSFORMS", "bin_bigwig", "check_bigwig_file", "ingest_bigwig", "ingest_manifest",
           "export_bigwig", "recorded_transform", "write_bigwig", "write_bigwigs",
           "read_manifest", "read_chrom_sizes", "resolve_chrom_sizes"]

CHUNK_BINS = 400_000  # 10 Mb of 25 bp bins: ~40 MB of float32 base-pair values per read
#: Most bytes between the zoom headers and the chromosome tree searched for a writer's note.
_NOTE_SPAN = 1 << 16


def _arcsinh(x: np.ndarray) -> np.ndarray:
    return np.arcsinh(x, out=x)


def _log1p(x: np.ndarray) -> np.ndarray:
    return np.log1p(x, out=x)


def _identity(x: np.ndarray) -> np.ndarray:
    return x


#: Name -> (forward, inverse) of the value transforms a track may carry.
_Transform = Callable[[np.ndarray], np.ndarray]
TRANSFORMS: dict[str, tuple[_Transform, _Transform]] = {
    "arcsinh": (_arcsinh, np.sinh),
    "log1p": (_log1p, np.expm1),
    "none": (_identity, _identity),
}


def _check_transform(transform: str | None) -> str:
    name = "none" if transform is None else str(transform)
    if name not in TRANSFORMS:
        raise AvocadoValueError(
            f"transform {transform!r} is not known; expected one of {sorted(TRANSFORMS)}"
        )
    return name


_BIGWIG_MAGIC = 0x888FFC26
_CHROM_TREE_MAGIC = 0x78CA8C91
_R_TREE_MAGIC = 0x2468ACE0


def check_bigwig_file(path: str | os.PathLike) -> None:
    """Check a bigWig's structure before libBigWig reads it (it crashes on broken files).

    Checks the header's magic numbers (at both ends of the file), that every offset the
    header and the zoom headers name lies inside the file, and walks the data index (an
    R-tree): every node and every data block it names must lie inside the file. A truncated
    or corrupted file then ends in an error instead of a segmentation fault in libBigWig.

    Parameters
    ----------
    path: str or PathLike

    Raises
    ------
    AvocadoValueError
        Naming the file and what is wrong with it.
    """
    path = Path(path)
    size = path.stat().st_size

    def bad(why: str) -> AvocadoValueError:
        return AvocadoValueError(f"{path} is not a readable bigWig file ({why})")

    with open(path, "rb") as fh:
        def read(offset: int, n: int) -> bytes:
            if offset < 0 or offset + n > size:
                raise bad(f"truncated or corrupted: {n} bytes at offset {offset:,} are past the "
                          f"end of the {size:,}-byte file")
            fh.seek(offset)
            return fh.read(n)

        head = read(0, 64)
        magic = int.from_bytes(head[:4], "little")
        if magic != _BIGWIG_MAGIC:
            raise bad("it does not start with the bigWig magic number")
        if int.from_bytes(read(size - 4, 4), "little") != _BIGWIG_MAGIC:
            raise bad("truncated: it does not end with the bigWig magic number")
        (_, _, n_zooms, chrom_tree, _, full_index, _, _, auto_sql, summary, _,
         extension) = struct.unpack("<IHHQQQHHQQIQ", head)
        for name, offset in (("chromosome tree", chrom_tree), ("data index", full_index),
                             ("autoSql", auto_sql), ("summary", summary),
                             ("extension", extension)):
            if offset:
                read(offset, 4)  # raises when the header names a place past the end
        zooms = read(64, 24 * n_zooms)
        for k in range(n_zooms):  # zoom levels, not positions
            _, _, data_offset, index_offset = struct.unpack_from("<IIQQ", zooms, 24 * k)
            read(data_offset, 4)
            read(index_offset, 48)
        if int.from_bytes(read(chrom_tree, 4), "little") != _CHROM_TREE_MAGIC:
            raise bad(f"no chromosome tree at offset {chrom_tree:,}")
        _check_r_tree(read, full_index, size, bad)


def recorded_transform(path: str | os.PathLike) -> str | None:
    """The transform a bigWig's values carry, as its writer recorded it; None when not recorded.

    avocado's writer (:mod:`avocado_core.bigwig_writer`) records it in a note between the zoom
    headers and the chromosome tree; files of other writers have none.

    Parameters
    ----------
    path: str or PathLike
        A bigWig file.

    Returns
    -------
    str or None
        A name of :data:`TRANSFORMS`, or None.

    Raises
    ------
    AvocadoValueError
        The note names a transform that is not known, or is not readable.
    """
    with open(path, "rb") as fh:
        head = fh.read(16)
        if len(head) < 16:
            return None
        _, _, n_zooms, chrom_tree = struct.unpack("<IHHQ", head)
        start = 64 + 24 * n_zooms
        fh.seek(start)
        span = fh.read(max(0, min(chrom_tree - start, _NOTE_SPAN)))
    at = span.find(NOTE_MAGIC)
    if at < 0:
        return None
    at += len(NOTE_MAGIC)
    try:
        (length,) = struct.unpack_from("<I", span, at)
        note = json.loads(span[at + 4: at + 4 + length].decode())
        transform = note["transform"]
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise AvocadoValueError(f"{path}: the note of its values' transform is not readable "
                                "(the file is damaged)") from None
    if transform not in TRANSFORMS:
        raise AvocadoValueError(f"{path} records its values' transform as {transform!r}; "
                                f"expected one of {sorted(TRANSFORMS)}")
    return str(transform)


def _check_r_tree(read: Callable[[int, int], bytes], offset: int, size: int,
                  bad: Callable[[str], AvocadoValueError]) -> None:
    """Walk a bigWig's R-tree index: every node and data block must lie inside the file."""
    if int.from_bytes(read(offset, 4), "little") != _R_TREE_MAGIC:
        raise bad(f"no data index at offset {offset:,}")
    stack, seen = [offset + 48], set()
    while stack:  # one iteration per index node (a few per MB of data), not per position
        node = stack.pop()
        if node in seen:
            raise bad(f"the data index loops at offset {node:,}")
        seen.add(node)
        is_leaf, _, count = struct.unpack("<BBH", read(node, 4))
        width = 32 if is_leaf else 24
        items = np.frombuffer(read(node + 4, width * count), dtype=np.uint64).reshape(
            count, width // 8)
        if is_leaf:
            ends = items[:, 2].astype(np.float64) + items[:, 3]  # data offset + size
            if count and ends.max() > size:
                raise bad(f"truncated: a data block ends past the end of the file at "
                          f"{int(ends.max()):,}")
        else:
            stack.extend(int(c) for c in items[:, 2])


def _open_bigwig(path: str | os.PathLike):
    import pyBigWig

    path = Path(path)
    if not path.is_file():
        raise AvocadoValueError(f"bigWig file {path} does not exist")
    check_bigwig_file(path)
    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError:
        bw = None
    if bw is None or not bw.isBigWig():
        raise AvocadoValueError(f"{path} is not a readable bigWig file")
    return bw


def bin_bigwig(path: str | os.PathLike, regions: RegionSet, transform: str | None = "arcsinh",
               allow_missing_chroms: bool = False, progress: bool = True,
               return_covered: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Mean signal of a bigWig over each bin of a region set.

    Parameters
    ----------
    path: str or PathLike
        The bigWig file.
    regions: RegionSet
    transform: str or None
        ``"arcsinh"`` (default), ``"log1p"`` or ``"none"`` / None: the transform of the values
        returned, applied to the signal after averaging. A file that records the transform
        of its values (:func:`recorded_transform`, as avocado's exports do) is first brought
        back to the signal, or kept as it is when it records this transform.
    allow_missing_chroms: bool
        If False (default), a region-set chromosome absent from the file raises; if True its
        bins are 0.
    progress: bool
        Show a progress bar over the bins. Default is True.
    return_covered: bool
        Also return which bins the file covers. Default is False.

    Returns
    -------
    ndarray, dtype float32, shape=(regions.n_bins,)
        Per bin, the mean over the bases that have data (pyBigWig's exact ``stats`` mean);
        0 where no base has data.
    covered: ndarray, dtype bool, shape=(regions.n_bins,)
        With ``return_covered``: the bins from the first to the last bin with data in each
        interval of the region set. Intervals (chromosomes, regions) or their ends that the
        file leaves out are not covered: their 0 is "not measured". Gaps inside the data
        count as covered zeros, since writers of bigWig files commonly leave zeros out.
    """
    name = _check_transform(transform)
    bw = _open_bigwig(path)
    try:
        recorded = recorded_transform(path)
        sizes = bw.chroms()
        iv = regions.intervals
        resolved = {c: match_chrom(c, sizes) for c in regions.chroms}
        missing = [c for c, r in resolved.items() if r is None]
        if missing and not allow_missing_chroms:
            others = (
                f" ({len(missing)} missing: {short_list(missing)})" if len(missing) > 1 else ""
            )
            raise AvocadoKeyError(
                f"bigWig {path} has no chromosome {missing[0]!r} (nor "
                f"{missing[0][3:] if missing[0].startswith('chr') else 'chr' + missing[0]!r}) of "
                f"the region set{others}; "
                f"the file's chromosomes: {short_list(sizes)}"
            )
        out = np.zeros(regions.n_bins, dtype=np.float32)
        covered = np.zeros(regions.n_bins if return_covered else 0, dtype=bool)
        bs = regions.bin_size
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=regions.n_bins, unit="bin", unit_scale=True,
                       desc=f"binning {Path(path).name}", leave=False)
        for chrom, first, n, offset in zip(iv["chrom"], iv["first_bin_start"], iv["n_bins"],
                                           iv["offset"]):
            file_chrom = resolved[chrom]
            span = []  # the interval's bins with data: the first and the last seen so far
            for k in range(0, int(n), CHUNK_BINS):  # chunks of whole chromosomes, not bins
                m = min(CHUNK_BINS, int(n) - k)
                if file_chrom is not None:
                    start = int(first) + k * bs
                    means, has_data = _chunk_means(bw, file_chrom, sizes[file_chrom], start, m,
                                                   bs)
                    out[offset + k: offset + k + m] = means
                    with_data = np.flatnonzero(has_data)
                    if with_data.size:
                        span = [span[0] if span else k + with_data[0], k + with_data[-1] + 1]
                if bar is not None:
                    bar.update(m)
            if return_covered and span:
                covered[offset + span[0]: offset + span[1]] = True
        if bar is not None:
            bar.close()
    finally:
        bw.close()
    if recorded == name:  # an export of a track of this transform: its values as they are
        values = out
    else:
        if recorded is not None:  # back to the signal first
            out = TRANSFORMS[recorded][1](out).astype(np.float32, copy=False)
        values = TRANSFORMS[name][0](out)
    return (values, covered) if return_covered else values


def _chunk_means(bw, chrom: str, size: int, start: int, n_bins: int, bs: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean of covered bases for ``n_bins`` bins starting at ``start`` (may overhang),
    and whether each bin has any base with data."""
    end = start + n_bins * bs
    lo, hi = max(start, 0), min(end, size)
    vals = np.full(n_bins * bs, np.nan, dtype=np.float32)
    if hi > lo:
        vals[lo - start: hi - start] = bw.values(chrom, lo, hi, numpy=True)
    missing = np.isnan(vals)
    count = bs - missing.view(np.uint8).reshape(n_bins, bs).sum(axis=1, dtype=np.int32)
    np.copyto(vals, 0, where=missing)  # in place: vals is ours
    total = vals.reshape(n_bins, bs).sum(axis=1, dtype=np.float64)
    means = np.divide(total, count, out=np.zeros(n_bins), where=count > 0).astype(np.float32)
    return means, count > 0


def ingest_bigwig(store: TrackStore, path: str | os.PathLike, biosample: str, assay: str,
                  transform: str | None = "arcsinh", overwrite: bool = False,
                  allow_missing_chroms: bool = False, progress: bool = True) -> bool:
    """Bin a bigWig onto the store's region set and add it as an observed track.

    A track of this experiment already ingested from the same file is skipped (so reruns are
    cheap); one from a different file needs ``overwrite=True``.

    Parameters
    ----------
    store: TrackStore
    path: str or PathLike
    biosample, assay: str
    transform: str or None
        Default is ``"arcsinh"``.
    overwrite: bool
        Re-ingest even if the track exists. Default is False.
    allow_missing_chroms: bool
        See :func:`bin_bigwig`. Default is False.
    progress: bool
        Show a progress bar. Default is True.

    Returns
    -------
    bool
        True if the track was written, False if it was already there.
    """
    name = _check_transform(transform)
    source = str(Path(path).resolve())
    if store.has_track(biosample, assay) and not overwrite:
        row = store.catalog.query(
            "biosample == @biosample and assay == @assay and kind == 'observed'"
        )
        existing = row["source"].iloc[0]
        if existing == source and row["transform"].iloc[0] == name:
            return False
        raise AvocadoValueError(
            f"the store already has an observed track for {biosample}/{assay} (from {existing!r}, "
            f"transform {row['transform'].iloc[0]!r}); pass overwrite=True to replace it with "
            f"{source!r}"
        )
    values = bin_bigwig(path, store.regions, transform=name,
                        allow_missing_chroms=allow_missing_chroms, progress=progress)
    store.add_track(biosample, assay, values, kind="observed", source=source, transform=name,
                    overwrite=overwrite)
    return True


def read_manifest(manifest_tsv: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest TSV with columns biosample, assay, path (header optional).

    Lines starting with ``#`` are comments. Relative paths are resolved against the
    manifest's directory; extra columns are kept.
    """
    manifest_tsv = Path(manifest_tsv)
    if not manifest_tsv.is_file():
        raise AvocadoValueError(f"manifest {manifest_tsv} does not exist")
    # Only whole lines starting with "#" are comments: a "#" inside a path is part of it.
    try:
        lines = [line for line in manifest_tsv.read_text().splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
        df = pd.read_csv(io.StringIO("\n".join(lines)), sep="\t", dtype=str, header=None,
                         keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise AvocadoValueError(
            f"manifest {manifest_tsv} is not a tab-separated table ({exc})".replace("\n", " ")
        ) from None
    first = [str(v).strip().lower() for v in df.iloc[0]] if len(df) else []
    if {"biosample", "assay", "path"} <= set(first):
        df.columns = first
        df = df.iloc[1:]
    elif df.shape[1] >= 3:
        df = df.iloc[:, :3]
        df.columns = ["biosample", "assay", "path"]
    else:
        raise AvocadoValueError(
            f"manifest {manifest_tsv} needs the columns biosample, assay, path (tab-separated); "
            f"got {df.shape[1]} column(s)"
        )
    if df.empty:
        raise AvocadoValueError(f"manifest {manifest_tsv} lists no files")
    df = df.reset_index(drop=True)
    df["path"] = [str(p if Path(p).is_absolute() else (manifest_tsv.parent / p))
                  for p in df["path"].str.strip()]
    dup = df.duplicated(["biosample", "assay"])
    if dup.any():
        b, a = df.loc[dup, ["biosample", "assay"]].iloc[0]
        raise AvocadoValueError(f"manifest {manifest_tsv} lists {b}/{a} more than once")
    return df


def ingest_manifest(store: TrackStore, manifest_tsv: str | os.PathLike,
                    transform: str | None = "arcsinh", overwrite: bool = False,
                    allow_missing_chroms: bool = False, progress: bool = True) -> pd.DataFrame:
    """Ingest every bigWig of a manifest (biosample, assay, path) into a store.

    All paths are checked before any work starts. Experiments already ingested from the same
    file are skipped, so an interrupted run can simply be restarted.

    Parameters
    ----------
    store: TrackStore
    manifest_tsv: str or PathLike
        Tab-separated biosample, assay, path (with or without a header line).
    transform, overwrite, allow_missing_chroms:
        As in :func:`ingest_bigwig`.
    progress: bool
        Show a progress bar over the files. Default is True.

    Returns
    -------
    pandas.DataFrame
        biosample, assay, path, status ("ingested" or "skipped").
    """
    _check_transform(transform)
    df = read_manifest(manifest_tsv)
    missing = [p for p in df["path"] if not Path(p).is_file()]
    if missing:
        raise AvocadoValueError(
            f"manifest {manifest_tsv}: {len(missing)} file(s) do not exist: "
            f"{short_list(missing, 5)}"
        )
    rows = list(df[["biosample", "assay", "path"]].itertuples(index=False))
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, desc="ingesting bigWigs", unit="file")
    status = []
    for biosample, assay, path in rows:  # one file at a time; each is vectorized inside
        done = ingest_bigwig(store, path, biosample, assay, transform=transform,
                             overwrite=overwrite, allow_missing_chroms=allow_missing_chroms,
                             progress=progress)
        status.append("ingested" if done else "skipped")
    return df[["biosample", "assay", "path"]].assign(status=status)


def _default_chrom_sizes(regions: RegionSet) -> dict[str, int] | None:
    """Chromosome sizes implied by a whole-chromosome region set, else None."""
    iv = regions.intervals
    if iv["chrom"].is_unique and (iv["start"] == 0).all():
        return dict(zip(iv["chrom"], iv["end"].astype(int)))
    return None


def write_bigwig(values: np.ndarray, regions: RegionSet, path: str | os.PathLike,
                 chrom_sizes: str | os.PathLike | Mapping[str, int],
                 transform: str | None = None) -> None:
    """Write per-bin values over a region set as a bigWig (atomically).

    Parameters
    ----------
    values: array-like, shape=(regions.n_bins,)
    regions: RegionSet
    path: str or PathLike
        Output bigWig.
    chrom_sizes: str, PathLike or Mapping[str, int]
        The genome's chromosome sizes (a UCSC chrom-sizes file or a mapping); every region-set
        chromosome must be there. Bins reaching past a chromosome's end are clipped to it.
    transform: str or None, optional
        The transform the values carry, recorded in the file (:func:`recorded_transform`).
        Default is None: not recorded.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (regions.n_bins,):
        raise AvocadoValueError(
            f"values have shape {values.shape}; the region set has ({regions.n_bins},) bins"
        )
    write_bigwigs([path], regions, chrom_sizes, lambda lo, hi: values[None, lo:hi],
                  transform=transform)


def write_bigwigs(paths: Sequence[str | os.PathLike], regions: RegionSet,
                  chrom_sizes: str | os.PathLike | Mapping[str, int],
                  values: Callable[[int, int], np.ndarray], chunk_bins: int = CHUNK_BINS,
                  progress: bool = False, transform: str | None = None) -> list[Path]:
    """Write several bigWigs over a region set chunk by chunk, asking for the values as it goes.

    Memory holds one chunk of values of every file (and a few compressed blocks in flight),
    whatever the size of the region set: ``values`` may compute them (e.g. a model's
    predictions, on a thread of its own, while the last chunk is written) or slice arrays.
    Each file is written under a temporary name and renamed when complete. NaN values are
    left out (no data: a reader sees NaN there).

    Parameters
    ----------
    paths: sequence of path-like
        Output bigWigs.
    regions: RegionSet
    chrom_sizes: str, PathLike or Mapping[str, int]
        As in :func:`write_bigwig`.
    values: callable
        ``values(lo, hi)`` returns an array of shape ``(len(paths), hi - lo)``: the values of
        the region set's bins ``[lo, hi)`` for each file. Called in the order of the bigWig
        (chromosome by chromosome, increasing position), never across two intervals.
    chunk_bins: int, optional
        Most bins asked for at once. Default is ``CHUNK_BINS``.
    progress: bool, optional
        A progress bar over the bins. Default is False.
    transform: str or None, optional
        As in :func:`write_bigwig`, for every file. Default is None.

    Returns
    -------
    list of pathlib.Path
    """
    from tqdm.auto import tqdm

    sizes = read_chrom_sizes(chrom_sizes)
    resolved = {c: match_chrom(c, sizes) for c in regions.chroms}
    missing = [c for c, r in resolved.items() if r is None]
    if missing:
        raise AvocadoKeyError(
            f"chromosome(s) {missing} of the region set are not in the chrom sizes "
            f"({short_list(sizes)})"
        )
    chunk_bins = max(1, int(chunk_bins))
    iv = regions.intervals
    bs = regions.bin_size
    order = {c: i for i, c in enumerate(regions.chroms)}
    iv = iv.assign(_o=iv["chrom"].map(order)).sort_values(["_o", "first_bin_start"])
    targets = [Path(p) for p in paths]
    # (chromosome in the file, first base, region-set bins [lo, hi), clipped end or None)
    pieces: list[tuple[str, int, int, int, int | None]] = []
    for chrom, first, n, offset in zip(iv["chrom"], iv["first_bin_start"], iv["n_bins"],
                                       iv["offset"]):
        name, size = resolved[chrom], int(sizes[resolved[chrom]])
        first, n, offset = int(first), int(n), int(offset)
        k0 = max(0, -(first // bs))  # bins starting before base 0 are left out
        n_full = min(n, max(0, (size - first) // bs))  # bins that end within the chromosome
        n_kept = min(n, max(0, -((first - size) // bs)))  # bins that start within it
        for k in range(k0, n_full, chunk_bins):
            pieces.append((name, first + bs * k, offset + k,
                           offset + min(k + chunk_bins, n_full), None))
        j = max(k0, n_full)
        if j < n_kept:  # the last bin, clipped at the chromosome's end
            pieces.append((name, first + bs * j, offset + j, offset + j + 1, size))
    # The zoom levels follow the mean item width, known here before the values are (NaN bins,
    # left out later, count in it: widths differ only for the few clipped last bins).
    n_items = sum(p[3] - p[2] for p in pieces)
    n_bases = sum((p[3] - p[2]) * bs if p[4] is None else p[4] - p[1] for p in pieces)
    header = [(resolved[c], sizes[resolved[c]]) for c in regions.chroms]
    bar = tqdm(total=n_items, disable=not progress, desc="writing bigWig", unit="bin",
               unit_scale=True)
    with contextlib.ExitStack() as files:
        # Blocks are compressed on a pool shared by the files (zlib releases the GIL), and the
        # next piece's values are computed on a thread of their own while this one is written.
        pool = files.enter_context(ThreadPoolExecutor(compression_threads()))
        writers = [files.enter_context(open_bigwig(t, header, n_bases / max(n_items, 1), pool,
                                                   transform=transform))
                   for t in targets]
        with ThreadPoolExecutor(1) as ahead_pool, bar:
            ahead = ahead_pool.submit(values, pieces[0][2], pieces[0][3]) if pieces else None
            for i, (name, start, lo, hi, clipped) in enumerate(pieces):
                chunk = np.asarray(ahead.result(), dtype=np.float32)
                if i + 1 < len(pieces):
                    ahead = ahead_pool.submit(values, pieces[i + 1][2], pieces[i + 1][3])
                for w, v in zip(writers, chunk):
                    _write_piece(w, name, start, bs, v, clipped)
                bar.update(hi - lo)
    return targets


def _write_piece(writer: BigWigWriter, chrom: str, start: int, bin_size: int, values: np.ndarray,
                 clipped: int | None) -> None:
    """Consecutive bins from ``start`` as one fixed-step run; NaN bins are left out (no data).

    A piece with NaN bins is written as bedGraph items of its other bins; the last bin of a
    chromosome (``clipped``: the chromosome's end) as one item of its own, shorter span.
    """
    missing = np.isnan(values)
    if clipped is not None:
        if not missing[0]:
            writer.add_fixed_step(chrom, start, clipped - start, values[:1])
    elif not missing.any():
        writer.add_fixed_step(chrom, start, bin_size, values)
    else:
        keep = np.flatnonzero(~missing)
        starts = start + bin_size * keep.astype(np.int64)
        writer.add_intervals(chrom, starts, starts + bin_size, values[keep])


def export_bigwig(store: TrackStore, biosample: str, assay: str, path: str | os.PathLike,
                  kind: str = "observed",
                  chrom_sizes: str | os.PathLike | Mapping[str, int] | None = None,
                  invert_transform: bool = False) -> Path:
    """Export one track (observed or imputed) of a store to bigWig.

    Parameters
    ----------
    store: TrackStore
    biosample, assay: str
    path: str or PathLike
        Output bigWig.
    kind: str
        ``"observed"`` (default) or ``"imputed"``.
    chrom_sizes: str, PathLike or Mapping[str, int], optional
        The genome's chromosome sizes. Default: those stored with the store
        (``store.chrom_sizes``), else those of a whole-chromosome region set; otherwise an
        error asks for them.
    invert_transform: bool
        Undo the track's transform (e.g. ``sinh`` for arcsinh tracks) before writing. Default is
        False: the stored values are written as they are.

    Returns
    -------
    pathlib.Path
        The written file; it records the transform its values carry (the track's, or
        ``"none"`` when inverted), so that ingesting it gives the track back.
    """
    values = np.asarray(store.track(biosample, assay, kind), dtype=np.float32)
    row = store.catalog.query("biosample == @biosample and assay == @assay and kind == @kind")
    name = _check_transform(row["transform"].iloc[0] or "none")
    if invert_transform:
        values = TRANSFORMS[name][1](values).astype(np.float32)
        name = "none"
    write_bigwig(values, store.regions, path, resolve_chrom_sizes(store, chrom_sizes),
                 transform=name)
    return Path(path)


def resolve_chrom_sizes(store: TrackStore,
                        chrom_sizes: str | os.PathLike | Mapping[str, int] | None = None
                        ) -> dict[str, int]:
    """The chromosome sizes to write a store's tracks to bigWig with.

    Parameters
    ----------
    store: TrackStore
    chrom_sizes: str, PathLike, Mapping[str, int] or None
        Explicit sizes (a UCSC chrom-sizes file or a mapping). Default: those recorded with the
        store, else those of a whole-chromosome region set.

    Returns
    -------
    dict of str to int

    Raises
    ------
    AvocadoValueError
        When none of these is known.
    """
    if chrom_sizes is not None:
        return read_chrom_sizes(chrom_sizes)
    sizes = store.chrom_sizes or _default_chrom_sizes(store.regions)
    if sizes is None:
        raise AvocadoValueError(
            f"the chromosome sizes of the genome of store {store.path} are not known; give a "
            "UCSC chrom-sizes file (CLI: --chrom-sizes; Python: chrom_sizes=) or record them "
            "in the store (avocado ingest --genome-sizes / store.set_chrom_sizes)"
        )
    return dict(sizes)
