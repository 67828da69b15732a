"""Out-of-core training data: batches read straight from memory-mapped tracks.

By default ``Avocado.fit`` gathers the training tracks into one dense array when that takes at
most 2 GiB (:class:`~avocado_core.training.TrackSource`). :class:`StreamingSource` never does:
each batch reads, from each track it samples, only the positions it needs (one vectorized
gather per experiment of the batch, never a loop over positions), and the pages of the
memory maps it touched are handed back to the kernel whenever they add up to the budget, so
the resident memory of the data stays bounded however large the store grows. The store's
files are read through the page cache: a store larger than RAM works, at the speed of the disk.

Use :func:`memory_budget` to make ``fit`` (and ``fit_positions`` / ``fit_biosamples`` /
``fit_assays``) stream whenever the data exceeds a budget::

    from avocado_core.streaming import memory_budget

    with memory_budget("4G"):
        model.fit(store, n_epochs=10)

Sequential sampling (the default) is the out-of-core mode: a batch touches a few pages of each
track. ``"permuted"`` and ``"random"`` touch one page per sample, fine from the page cache but
slow from a cold disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import mmap
import os
import sys
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .errors import AvocadoValueError
from .training import TrackSource, training_scope

__all__ = ["StreamingSource", "make_source", "memory_budget", "parse_size", "DEFAULT_BUDGET"]

#: Default budget of :func:`make_source` (the trainer's own default for dense data).
DEFAULT_BUDGET = 2**31
_PAGE = mmap.PAGESIZE


def parse_size(size: int | str) -> int:
    """Bytes of a size given as an int or a string such as ``"512M"``, ``"4G"``, ``"1.5T"``.

    Raises
    ------
    AvocadoValueError
        When the size cannot be read or is not positive.
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        value = int(size)
    else:
        units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
        text = str(size).strip().lower().removesuffix("b").removesuffix("i")
        try:
            if text and text[-1] in units:
                value = int(float(text[:-1]) * units[text[-1]])
            else:
                value = int(text)
        except (ValueError, KeyError):
            raise AvocadoValueError(
                f"cannot read the size {size!r}; expected bytes or e.g. '512M', '4G'"
            ) from None
    if value <= 0:
        raise AvocadoValueError(f"a memory budget must be positive, got {size!r}")
    return value


def _mapping_of(track: Any) -> mmap.mmap | None:
    """The mmap object behind a numpy memmap (or a view of one), if any."""
    obj = track
    for _ in range(8):
        if isinstance(obj, mmap.mmap):
            return obj
        m = getattr(obj, "_mmap", None)
        if isinstance(m, mmap.mmap):
            return m
        obj = getattr(obj, "base", None)
        if obj is None:
            return None
    return None


def _file_window(track: Any) -> tuple[str, int] | None:
    """(file, byte position of element 0) of a float32 track memory-mapped from a file."""
    if (not isinstance(track, np.ndarray) or track.dtype != np.float32 or track.ndim != 1
            or track.strides != (4,)):
        return None
    root = track
    while isinstance(root, np.ndarray) and not isinstance(root.base, mmap.mmap):
        root = root.base
    if not isinstance(root, np.memmap) or not getattr(root, "filename", None):
        return None
    position = int(root.offset) + (track.ctypes.data - root.ctypes.data)
    return (str(root.filename), position) if position % 4 == 0 else None


class _JointMap:
    """Many track files mapped side by side into one reserved address range.

    One flat read-only float32 array then spans every track, so a batch is read with a single
    vectorized gather, whatever the number of tracks (a Python loop over thousands of tracks
    per batch would cost more than the model's step). Linux only; None-returning
    :meth:`create` means "use the per-track path".
    """

    _PROT_NONE, _PROT_READ = 0, 1
    _MAP_SHARED, _MAP_PRIVATE, _MAP_FIXED, _MAP_ANONYMOUS, _MAP_NORESERVE = 1, 2, 0x10, 0x20, 0x4000
    _MADV_DONTNEED = 4

    def __init__(self, libc: Any, base: int, total: int, rows: np.ndarray) -> None:
        self._libc, self.base, self.total = libc, base, total
        buffer = (ctypes.c_char * total).from_address(base)
        self.flat = np.frombuffer(buffer, dtype=np.float32)
        self.flat.flags.writeable = False  # the pages are mapped read-only
        self.rows = rows  # flat index of element 0 of each track
        self._unmap = weakref.finalize(self, libc.munmap, ctypes.c_void_p(base), total)

    @classmethod
    def create(cls, windows: list[tuple[str, int]], n_positions: int) -> _JointMap | None:
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_int, ctypes.c_long]
            libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        except (OSError, AttributeError):
            return None
        page = mmap.PAGESIZE
        aligned = [pos - pos % page for _, pos in windows]
        deltas = [pos - a for (_, pos), a in zip(windows, aligned)]
        stride = -(-(max(deltas) + 4 * n_positions) // page) * page
        total = stride * len(windows)
        failed = ctypes.c_void_p(-1).value
        base = libc.mmap(None, total, cls._PROT_NONE,
                         cls._MAP_PRIVATE | cls._MAP_ANONYMOUS | cls._MAP_NORESERVE, -1, 0)
        if base in (None, failed):
            return None
        try:
            for i, ((path, _), offset, delta) in enumerate(zip(windows, aligned, deltas)):
                fd = os.open(path, os.O_RDONLY)
                try:
                    want = base + i * stride
                    got = libc.mmap(ctypes.c_void_p(want), delta + 4 * n_positions, cls._PROT_READ,
                                    cls._MAP_SHARED | cls._MAP_FIXED, fd, offset)
                finally:
                    os.close(fd)
                if got != want:
                    raise OSError(ctypes.get_errno(), f"mmap of {path} failed")
        except OSError:
            libc.munmap(ctypes.c_void_p(base), total)
            return None
        rows = (np.arange(len(windows), dtype=np.int64) * stride + np.array(deltas)) // 4
        return cls(libc, base, total, rows)

    def release(self) -> None:
        self._libc.madvise(ctypes.c_void_p(self.base), self.total, self._MADV_DONTNEED)


class StreamingSource:
    """Training values read batch by batch from (memory-mapped) tracks, never gathered.

    Duck-types :class:`~avocado_core.training.TrackSource` (``n_experiments``,
    ``n_positions``, ``values``), so the trainer uses it unchanged. Tracks memory-mapped from
    files (a store's tracks, or windows of them) are mapped side by side into one address
    range on Linux, so that a batch is one vectorized gather; other arrays take one gather per
    experiment of the batch.

    Parameters
    ----------
    tracks: sequence of 1-D arrays
        One array per experiment, all of the same length (``np.memmap`` for out-of-core data).
    max_resident_bytes: int, optional
        Once the memory-map pages touched since the last release may add up to this many
        bytes, they are released (``madvise(MADV_DONTNEED)``; they stay in the page cache).
        Default is 256 MiB.

    Notes
    -----
    Releasing the pages of a thousand track files costs milliseconds of kernel time (about
    4 us per file mapping), as much as reading several batches. With the joint mapping the
    release therefore runs on a helper thread, overlapped with the next batches (and with
    training, which on CPU leaves a core free for a small model); a release starts once half
    the budget is touched and waits for the previous one, so the mapped pages stay within the
    budget (plus one batch). The budget counts the pages a batch reads; the kernel may map
    more around them (a read fault maps up to 64 KiB, and large page-cache folios, up to
    2 MiB on recent Linux, at once), so the store's pages mapped into the process between
    two releases can exceed it by up to that much per track. They are clean page cache,
    shared and reclaimable; the memory the process owns stays flat.
    """

    #: The trainer reads the next batch on a helper thread while a step computes.
    prefetch = True

    def __init__(self, tracks: Sequence[np.ndarray], max_resident_bytes: int = 256 * 2**20) -> None:
        if len(tracks) == 0:
            raise AvocadoValueError("no training tracks: data is empty")
        self.n_experiments = len(tracks)
        self.n_positions = int(len(tracks[0]))
        bad = [i for i, t in enumerate(tracks) if len(t) != self.n_positions]
        if bad:
            raise AvocadoValueError(
                f"tracks {bad[:5]} have lengths {[len(tracks[i]) for i in bad[:5]]}; "
                f"expected {self.n_positions} like the first"
            )
        # Plain ndarray views: indexing them skips np.memmap's per-call overhead.
        self._views = [np.asarray(t) for t in tracks]
        self._maps = list({id(m): m for m in map(_mapping_of, tracks) if m is not None}.values())
        windows = [_file_window(t) for t in tracks]
        self._joint = (_JointMap.create(windows, self.n_positions)
                       if all(w is not None for w in windows) else None)
        self.max_resident_bytes = int(max_resident_bytes)
        self._touched = 0
        self.bytes_released = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self.release()  # pages mapped while the data were checked

    def release(self) -> None:
        """Hand the touched memory-map pages back to the kernel (they stay in the page cache)."""
        self._wait_for_release()
        for m in self._maps:
            with contextlib.suppress(ValueError, OSError):  # closed or not madvise-able
                m.madvise(mmap.MADV_DONTNEED)
        if self._joint is not None:
            self._joint.release()
        self.bytes_released += self._touched
        self._touched = 0

    def values(self, experiments: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Values of (experiment, position) pairs, read from the tracks: as
        :meth:`TrackSource.values <avocado_core.training.TrackSource.values>`."""
        experiments = np.asarray(experiments, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        n = len(positions)
        out = np.empty(n, dtype=np.float32)
        if n == 0:
            return out
        if self._joint is not None:
            # one gather over all tracks at once
            out = self._joint.flat[self._joint.rows[experiments] + positions]
            span = int(positions.max() - positions.min())
            present = min(n, self.n_experiments)
            self._touched += min(n, present * (span * 4 // _PAGE + 2)) * _PAGE
            if self._touched >= self.max_resident_bytes // 2:
                self._release_in_background()
            return out
        # 16-bit keys take numpy's radix sort (several times faster than a comparison sort)
        keys = experiments.astype(np.int16) if self.n_experiments < 2**15 else experiments
        order = np.argsort(keys, kind="stable")
        counts = np.bincount(experiments, minlength=self.n_experiments)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        pos_sorted = positions[order]
        vals = np.empty(n, dtype=np.float32)
        present = np.flatnonzero(counts)
        edges, views = bounds.tolist(), self._views  # plain ints: cheap per-experiment slicing
        for e in present.tolist():  # one vectorized gather per experiment in the batch
            lo, hi = edges[e], edges[e + 1]
            vals[lo:hi] = views[e][pos_sorted[lo:hi]]
        out[order] = vals
        # Pages this batch may have mapped: per experiment, at most one per sample and at most
        # the pages its positions span.
        starts = bounds[present]
        span = np.maximum.reduceat(pos_sorted, starts) - np.minimum.reduceat(pos_sorted, starts)
        pages = np.minimum(counts[present], span * 4 // _PAGE + 2)
        self._touched += int(pages.sum()) * _PAGE
        if self._maps and self._touched >= self.max_resident_bytes:
            self.release()
        return out


    def _release_in_background(self) -> None:
        """Release the joint mapping's touched pages on the helper thread (see Notes)."""
        self._wait_for_release()  # at most one release in flight
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="avocado-release")
            weakref.finalize(self, self._pool.shutdown, wait=True)
        self.bytes_released += self._touched
        self._touched = 0
        # (ctypes drops the GIL during the madvise call)
        self._pending = self._pool.submit(self._joint.release)


    def _wait_for_release(self) -> None:
        """Wait until the release running on the helper thread, if any, is done."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None


def make_source(
    tracks: Sequence[np.ndarray], max_memory: int | str = DEFAULT_BUDGET
) -> TrackSource | StreamingSource:
    """The trainer's data source under a memory budget.

    Parameters
    ----------
    tracks: sequence of 1-D arrays
    max_memory: int or str, optional
        When the stacked tracks fit (``n_tracks * n_positions * 4`` bytes), they are gathered
        into RAM (:class:`~avocado_core.training.TrackSource`, fastest); otherwise they are
        streamed (:class:`StreamingSource`, whose touched pages are released whenever they may
        add up to ``max_memory``). Default is 2 GiB.

    Returns
    -------
    TrackSource or StreamingSource
    """
    budget = parse_size(max_memory)
    if len(tracks) and len(tracks) * len(tracks[0]) * 4 <= budget:
        return TrackSource(tracks, max_dense_bytes=budget)
    return StreamingSource(tracks, max_resident_bytes=budget)


@contextlib.contextmanager
def memory_budget(max_memory: int | str) -> Iterator[None]:
    """Within the block, ``Avocado`` fits keep at most ``max_memory`` bytes of data in RAM.

    Data above the budget are streamed from the (memory-mapped) tracks with
    :class:`StreamingSource`. Sugar over the ``source`` option of ``fit``
    (``source=functools.partial(make_source, max_memory=...)``): a
    :func:`~avocado_core.training.training_scope`, local to the block and its thread.

    Parameters
    ----------
    max_memory: int or str
        Bytes, or a string such as ``"512M"`` / ``"4G"``.
    """
    with training_scope(source=functools.partial(make_source, max_memory=parse_size(max_memory))):
        yield
