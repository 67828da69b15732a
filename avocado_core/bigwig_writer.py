"""Write bigWig files: UCSC bbi version 4, vectorized, compressed on a thread pool.

The layout is the one libBigWig (pyBigWig) writes, so that readers see the same file: a
64-byte header (magic ``0x888FFC26``), room for 10 zoom headers, the chromosome B+ tree (one
leaf), the total summary, the data section (block count, then zlib-compressed blocks of
fixed-step or bedGraph items), the data's R-tree index, then per zoom level its block count,
compressed blocks of zoom records (chromId, start, end, validCount, min, max, sum,
sumSquares) and its R-tree index; the magic number again at the very end.

A writer given a ``transform`` records it in a note between the zoom headers' room and the
chromosome tree: :data:`NOTE_MAGIC`, the length of a JSON object (4 bytes, little-endian) and
the object (``{"transform": "arcsinh"}``). Every section of a bigWig is found through the
offsets of the header, so no reader visits those bytes (pyBigWig, UCSC's tools and genome
browsers read the file as without them); :func:`avocado_core.bigwig.recorded_transform` reads
the note back, so that ingesting an exported track gives back its values instead of applying
the transform a second time.

Zoom levels are libBigWig's defaults: the first is 16 times the mean item width (in whole
bases; at least 10 and at most the longest chromosome), each next one 4 times the last, up
to ``max_zooms`` (10), a level with as many record blocks as the one before ends the list.
Zoom records follow libBigWig's reduction exactly: a record starts at the first covered base
at or past the end of the previous record's window (``level`` bases), records are grouped
1,023 to a block, and the last record of a block holds one item's piece only. Unlike
libBigWig (0.3.x), every record's sum and sum of squares is written (libBigWig leaves them 0
in the last record of each block), and the total summary's maximum is the true maximum
(libBigWig's misses a first value that is the maximum, and is 0 when all values are negative).
``pyBigWig.stats(..., exact=False)`` therefore reads the same numbers from these files as
from pyBigWig's own, except over those records, where it reads the right ones.

Work per item is numpy (packing, summaries) or one compiled pass (the zoom records, whose
rules are sequential); compression runs on a small thread pool (``zlib`` releases the GIL;
blocks where string matching gains nothing, such as model predictions, are only
entropy-coded, see :func:`_compress_blocks`; zoom blocks use zlib level 1), and compressed
zoom blocks wait in unlinked temporary files beside the output, so memory holds one chunk of
values whatever the size of the file.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numba import njit

from . import _io
from .errors import AvocadoDiskFullError, AvocadoKeyError, AvocadoValueError, short_list

__all__ = ["BigWigWriter", "NOTE_MAGIC", "open_bigwig", "compression_threads", "zoom_levels"]

BIGWIG_MAGIC = 0x888FFC26
#: Starts the note of the values' transform that a writer may leave before the chromosome tree.
NOTE_MAGIC = b"avocado-track-note\0"
CHROM_TREE_MAGIC = 0x78CA8C91
R_TREE_MAGIC = 0x2468ACE0
#: Bytes of an uncompressed block at most (libBigWig's buffer): header + items.
BUFFER_BYTES = 32768
FIXED_STEP_ITEMS = (BUFFER_BYTES - 24) // 4  # 8,186 values of 4 bytes per data block
BEDGRAPH_ITEMS = (BUFFER_BYTES - 24) // 12  # 2,728 (start, end, value) items per data block
ZOOM_RECORDS = BUFFER_BYTES // 32 - 1  # 1,023 zoom records per block, as libBigWig
R_TREE_BLOCK = 64  # children per R-tree node, as libBigWig
MAX_ZOOMS = 10
_BLOCKS_PER_TASK = 32  # data blocks (1 MiB) per compression task
_TASKS_AHEAD = 3  # compression tasks in flight per thread, per file

_NO_ITEMS = np.zeros(0, dtype=np.int64)
_HEADER = struct.Struct("<IHHQQQHHQQIQ")
_ZOOM_HEADER = struct.Struct("<IIQQ")
_SUMMARY = struct.Struct("<Qdddd")
_SECTION = struct.Struct("<IIIIIBBH")
_ZOOM_RECORD = np.dtype([("chrom", "<u4"), ("start", "<u4"), ("end", "<u4"), ("valid", "<u4"),
                         ("min", "<f4"), ("max", "<f4"), ("sum", "<f4"), ("sumsq", "<f4")])
_BEDGRAPH_ITEM = np.dtype([("start", "<u4"), ("end", "<u4"), ("value", "<f4")])
_LEAF_ITEM = np.dtype([("c0", "<u4"), ("s0", "<u4"), ("c1", "<u4"), ("e1", "<u4"),
                       ("offset", "<u8"), ("size", "<u8")])
_NODE_ITEM = np.dtype([("c0", "<u4"), ("s0", "<u4"), ("c1", "<u4"), ("e1", "<u4"),
                       ("offset", "<u8")])


def compression_threads() -> int:
    """Threads that compress blocks: the CPUs of this machine, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def zoom_levels(mean_width: float, longest_chrom: int, max_zooms: int = MAX_ZOOMS) -> list[int]:
    """libBigWig's candidate zoom levels (bases per record) for items of ``mean_width`` bases.

    Parameters
    ----------
    mean_width: float
        Bases per item, on average over the file (truncated to whole bases).
    longest_chrom: int
        No level is longer than the longest chromosome.
    max_zooms: int, optional
        Most levels. Default is 10.

    Returns
    -------
    list of int
        Increasing levels; :class:`BigWigWriter` drops trailing ones whose record blocks are
        as many as the level before's.
    """
    base = int(mean_width) * 4
    if base > (2**32 - 1) >> 2 or longest_chrom <= 0:
        return []
    zoom = 4 * base if base * 4 > 10 else 10
    zoom = min(zoom, int(longest_chrom))
    levels: list[int] = []
    while len(levels) < max_zooms and zoom <= longest_chrom:  # at most 10 levels
        levels.append(zoom)
        if (2**32 - 1) // 4 < zoom:
            break
        zoom *= 4
    return levels


@njit(nogil=True, cache=True, boundscheck=False, fastmath={"reassoc", "nsz", "nnan"})
def _window_fixed(values, i, j):  # pragma: no cover - compiled
    """min, max, sum and sum of squares of ``values[i:j]`` (no NaN), in SIMD passes.

    The minimum and maximum run in 8 independent lanes (LLVM vectorizes those, not a single
    running minimum); the sums (float64) vectorize as they are.
    """
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = values[i]
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = values[i]
    k = i
    while k + 8 <= j:
        a0, b0 = min(a0, values[k]), max(b0, values[k])
        a1, b1 = min(a1, values[k + 1]), max(b1, values[k + 1])
        a2, b2 = min(a2, values[k + 2]), max(b2, values[k + 2])
        a3, b3 = min(a3, values[k + 3]), max(b3, values[k + 3])
        a4, b4 = min(a4, values[k + 4]), max(b4, values[k + 4])
        a5, b5 = min(a5, values[k + 5]), max(b5, values[k + 5])
        a6, b6 = min(a6, values[k + 6]), max(b6, values[k + 6])
        a7, b7 = min(a7, values[k + 7]), max(b7, values[k + 7])
        k += 8
    mn = min(min(min(a0, a1), min(a2, a3)), min(min(a4, a5), min(a6, a7)))
    mx = max(max(max(b0, b1), max(b2, b3)), max(max(b4, b5), max(b6, b7)))
    while k < j:
        mn, mx = min(mn, values[k]), max(mx, values[k])
        k += 1
    sm = 0.0
    ssq = 0.0
    for k in range(i, j):
        y = np.float64(values[k])
        sm += y
        ssq += y * y
    return mn, mx, sm, ssq


@njit(nogil=True, cache=True, boundscheck=False, fastmath={"reassoc", "nsz", "nnan"})
def _window(starts, ends, values, i, j):  # pragma: no cover - compiled
    """validCount, min, max, sum and sum of squares of items ``i:j`` of any widths."""
    valid = 0
    mn = values[i]
    mx = values[i]
    sm = 0.0
    ssq = 0.0
    for k in range(i, j):
        x = values[k]
        rv = ends[k] - starts[k]
        valid += rv
        mn = min(mn, x)
        mx = max(mx, x)
        sm += rv * np.float64(x)
        ssq += rv * (np.float64(x) * np.float64(x))
    return valid, mn, mx, sm, ssq


@njit(nogil=True, cache=True, boundscheck=False)
def _put_record(out_i, out_f, k, tid, start, end, valid, block, mn, mx, sm,
                ssq):  # pragma: no cover - compiled
    """Write a closed zoom record into row ``k`` of ``out_i`` and ``out_f`` (see _zoom_pass)."""
    out_i[k, 0], out_i[k, 1], out_i[k, 2] = tid, start, end
    out_i[k, 3], out_i[k, 4] = int(valid), block
    out_f[k, 0], out_f[k, 1], out_f[k, 2], out_f[k, 3] = mn, mx, sm, ssq


@njit(nogil=True, cache=True, boundscheck=False)
def _zoom_pass(size, state, acc, tid, starts, ends, values, first, step, span, i, s, out_i,
               out_f):  # pragma: no cover - compiled
    """One zoom level's records over items ``i...`` (from base ``s`` of item ``i``; -1: its start).

    The rules are libBigWig's and sequential, hence one compiled pass; whole items inside the
    open record's window are added up in SIMD passes. ``span > 0``: fixed-step items
    ``[first + k * step, +span)`` (``starts`` and ``ends`` are not read); else bedGraph items.

    ``state`` (int64: open, chromId, start, end, records in block, block) and ``acc``
    (float64: validCount, min, max, sum, sumSquares) are the open record, carried between
    calls. Closed records go to ``out_i`` (chromId, start, end, validCount, block) and
    ``out_f`` (min, max, sum, sumSquares); when those are full the pass stops and returns
    where to resume: ``(i, s, n_out)``, ``i == len(starts)`` when done.
    """
    is_open, rtid, rstart, rend, count, block = state[0], state[1], state[2], state[3], \
        state[4], state[5]
    valid, mn, mx, sm, ssq = acc[0], acc[1], acc[2], acc[3], acc[4]
    n = values.shape[0]
    cap = out_i.shape[0]
    n_out = 0
    while i < n:
        if s < 0:
            s = first + i * step if span > 0 else starts[i]
        e = first + i * step + span if span > 0 else ends[i]
        v = values[i]
        while s < e:
            if n_out >= cap:
                state[0], state[1], state[2], state[3], state[4], state[5] = \
                    is_open, rtid, rstart, rend, count, block
                acc[0], acc[1], acc[2], acc[3], acc[4] = valid, mn, mx, sm, ssq
                return i, s, n_out
            if is_open == 1 and count == ZOOM_RECORDS:  # libBigWig's buffer is full: new block
                _put_record(out_i, out_f, n_out, rtid, rstart, rend, valid, block, mn, mx, sm,
                            ssq)
                n_out += 1
                is_open = 0
                block += 1
                count = 0
            if is_open == 1 and rtid == tid and s < rstart + size:
                rv = min(rstart + size, e) - s
                valid += rv
                mn = min(mn, v)
                mx = max(mx, v)
                sm += np.float32(rv) * v  # a float product, as libBigWig's
                ssq += rv * (np.float64(v) * np.float64(v))
                rend = s + rv
            else:
                if is_open == 1:
                    _put_record(out_i, out_f, n_out, rtid, rstart, rend, valid, block, mn, mx,
                                sm, ssq)
                    n_out += 1
                is_open = 1
                rtid = tid
                rstart = s
                rv = min(s + size, e) - s
                rend = s + rv
                count += 1
                valid = rv
                mn = v
                mx = v
                sm = np.float32(rv) * v
                ssq = rv * (np.float64(v) * np.float64(v))
            s += rv
        i += 1
        s = -1
        if is_open == 1 and count < ZOOM_RECORDS:
            # The whole items inside the open record's window, in one tight (vectorized) loop.
            stop = rstart + size
            if span > 0:  # the first item ending past the window
                j = min(n, max(i, (stop - span - first) // step + 1))
            else:
                j = i + np.searchsorted(ends[i:], stop, side="right")  # ends are sorted
            if j > i:
                if span > 0:
                    w_mn, w_mx, w_sum, w_ssq = _window_fixed(values, i, j)
                    w_valid = span * (j - i)
                    w_sum *= span
                    w_ssq *= span
                else:
                    w_valid, w_mn, w_mx, w_sum, w_ssq = _window(starts, ends, values, i, j)
                w_mn = min(mn, w_mn)
                w_mx = max(mx, w_mx)
                valid += w_valid
                mn, mx = w_mn, w_mx
                sm += w_sum
                ssq += w_ssq
                rend = first + (j - 1) * step + span if span > 0 else ends[j - 1]
                i = j
    state[0], state[1], state[2], state[3], state[4], state[5] = \
        is_open, rtid, rstart, rend, count, block
    acc[0], acc[1], acc[2], acc[3], acc[4] = valid, mn, mx, sm, ssq
    return i, s, n_out


def _finite(values: np.ndarray) -> np.ndarray:
    """``values`` as contiguous float32; NaN is an error (a reader sees no data there)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if np.isnan(values).any():
        raise AvocadoValueError("bigWig values must not be NaN; leave those items out")
    return values


def _deflate(block: bytes, level: int, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    """``block`` as one zlib stream (memLevel 9: its largest hash table, ~17% faster here)."""
    codec = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    return codec.compress(block) + codec.flush()


def _compress_blocks(blocks: list[bytes], level: int) -> list[bytes]:
    """zlib streams of ``blocks`` at ``level`` (any zlib reader inflates them).

    Model predictions are noisy floats: string matching finds nothing in them and costs
    two thirds of the time, so where it gains less than 5% on the first block, the task's
    blocks are only entropy-coded (Huffman codes, 3x faster).
    """
    full = _deflate(blocks[0], level)
    coded = _deflate(blocks[0], level, zlib.Z_HUFFMAN_ONLY)
    if len(coded) * 0.95 <= len(full):
        return [coded] + [_deflate(b, level, zlib.Z_HUFFMAN_ONLY) for b in blocks[1:]]
    return [full] + [_deflate(b, level) for b in blocks[1:]]


def _r_tree(items: np.ndarray, offset: int, end_of_data: int, items_per_slot: int) -> bytes:
    """An R-tree index over blocks (``_LEAF_ITEM`` rows, in file order) written at ``offset``.

    Nodes of ``R_TREE_BLOCK`` children, the root first and the leaves last.
    """
    n = len(items)
    b = R_TREE_BLOCK
    # Node bounds level by level, from the leaves up: (c0, s0, c1, e1) of each node.
    levels = [items]
    while len(levels[-1]) > b:
        lower = levels[-1]
        first = lower[::b]
        last = lower[np.minimum(np.arange(len(first)) * b + b - 1, len(lower) - 1)]
        up = np.zeros(len(first), dtype=_NODE_ITEM)
        for key in ("c0", "s0"):
            up[key] = first[key]
        for key in ("c1", "e1"):
            up[key] = last[key]
        levels.append(up)
    levels.reverse()  # root level first: the root node holds all of levels[0]
    sizes = []  # bytes of each level's nodes, top down
    for depth, lvl in enumerate(levels):
        width = 32 if depth == len(levels) - 1 else 24
        counts = np.diff(np.append(np.arange(0, max(len(lvl), 1), b), len(lvl)))
        sizes.append(4 + width * counts)
    starts = []
    pos = offset + 48
    for s in sizes:
        starts.append(pos + np.concatenate([[0], np.cumsum(s)[:-1]]))
        pos += int(s.sum())
    parts = []
    c0 = int(items["c0"][0]) if n else 0
    s0 = int(items["s0"][0]) if n else 0
    c1 = int(items["c1"][-1]) if n else 0
    e1 = int(items["e1"][-1]) if n else 0
    parts.append(struct.pack("<IIQIIIIQII", R_TREE_MAGIC, b, n, c0, s0, c1, e1, end_of_data,
                             items_per_slot, 0))
    for depth, lvl in enumerate(levels):
        leaf = depth == len(levels) - 1
        if not leaf:  # point each item at its child node one level down
            lvl = lvl.copy()
            lvl["offset"] = starts[depth + 1]
        for k in range(0, max(len(lvl), 1), b):  # nodes, not items
            chunk = lvl[k:k + b]
            parts.append(struct.pack("<BBH", int(leaf), 0, len(chunk)))
            parts.append(chunk.tobytes())
    return b"".join(parts)


class _ZoomLevel:
    """The records of one zoom level: open record, pending records, spilled blocks."""

    def __init__(self, size: int, folder: Path) -> None:
        self.size = size
        self.state = np.zeros(6, dtype=np.int64)
        self.acc = np.zeros(5, dtype=np.float64)
        self.pending_i = np.zeros((0, 5), dtype=np.int64)
        self.pending_f = np.zeros((0, 4), dtype=np.float64)
        self.spill = tempfile.TemporaryFile(dir=folder, prefix=f".{_io.TEMP_MARK}zoom-")
        self.index: list[np.ndarray] = []
        self.blocks = 0
        self.spilled = 0

    def take(self, rec_i: np.ndarray, rec_f: np.ndarray, final: bool) -> list[tuple]:
        """Add closed records; return the blocks now complete as (raw bytes, bounds)."""
        pend_i = np.concatenate([self.pending_i, rec_i])
        pend_f = np.concatenate([self.pending_f, rec_f])
        k = len(pend_i) if final else int(np.searchsorted(pend_i[:, 4], self.state[5]))
        done_i, done_f = pend_i[:k], pend_f[:k]
        self.pending_i, self.pending_f = pend_i[k:], pend_f[k:]
        if not k:
            return []
        cuts = np.flatnonzero(np.diff(done_i[:, 4])) + 1
        rec = np.empty(k, dtype=_ZOOM_RECORD)
        for j, key in enumerate(("chrom", "start", "end", "valid")):
            rec[key] = done_i[:, j]
        for j, key in enumerate(("min", "max", "sum", "sumsq")):
            rec[key] = done_f[:, j]
        out = []
        for a, b in zip(np.concatenate([[0], cuts]), np.append(cuts, k)):  # blocks
            block = rec[a:b]
            bounds = (int(block["chrom"][0]), int(block["start"][0]), int(block["chrom"][-1]),
                      int(block["end"][-1]))
            out.append((block.tobytes(), bounds))
        return out

    def close_record(self) -> tuple[np.ndarray, np.ndarray]:
        """The open record as a closed one (at the end of the file)."""
        if not self.state[0]:
            return np.zeros((0, 5), dtype=np.int64), np.zeros((0, 4), dtype=np.float64)
        st = self.state
        rec_i = np.array([[st[1], st[2], st[3], int(self.acc[0]), st[5]]], dtype=np.int64)
        self.state[0] = 0
        return rec_i, self.acc[None, 1:].copy()


class BigWigWriter:
    """A bigWig written item by item into an open binary file.

    Parameters
    ----------
    handle: binary file object
        Open for writing (and reading back nothing); positioned at 0.
    chroms: sequence of (str, int)
        The header's chromosomes and lengths, in the order of the data.
    mean_width: float
        Bases per item on average over the whole file (it sets the zoom levels, as libBigWig
        does after the fact).
    max_zooms: int, optional
        Most zoom levels. Default is 10 (libBigWig's default).
    pool: Executor or None, optional
        Threads that compress blocks. Default is None: a pool of :func:`compression_threads`
        of its own.
    temp_dir: path-like or None, optional
        Where zoom blocks wait (unlinked files). Default is None: beside ``handle``'s file.
    transform: str or None, optional
        The transform the values carry (``"arcsinh"``, ``"none"``, ...), recorded in the file's
        note. Default is None: no note.

    Notes
    -----
    Items must come in the order of ``chroms`` and of position, not overlapping.
    """

    def __init__(self, handle: BinaryIO, chroms: Sequence[tuple[str, int]], mean_width: float,
                 max_zooms: int = MAX_ZOOMS, pool: Executor | None = None,
                 temp_dir: str | os.PathLike | None = None, transform: str | None = None
                 ) -> None:
        self._fh = handle
        self._transform = transform
        self._chroms = [(str(c), int(n)) for c, n in chroms]
        if len(self._chroms) > 0xFFFF:
            raise AvocadoValueError(
                f"{len(self._chroms):,} chromosomes; a bigWig written here holds at most 65,535")
        self._tid = {c: i for i, (c, _) in enumerate(self._chroms)}
        self._own_pool = pool is None
        self._pool = pool if pool is not None else ThreadPoolExecutor(compression_threads())
        self._max_zooms = int(max_zooms)
        longest = max((n for _, n in self._chroms), default=0)
        sizes = zoom_levels(mean_width, longest, self._max_zooms) if mean_width > 0 else []
        folder = Path(temp_dir) if temp_dir is not None else Path(getattr(handle, "name", "."))
        folder = folder if folder.is_dir() else folder.parent
        self._zooms = [_ZoomLevel(z, folder) for z in sizes]
        self._queue: collections.deque = collections.deque()
        self._data_index: list[tuple] = []
        self._n_bases = 0
        self._min, self._max = math.inf, -math.inf
        self._sum = self._sum_squares = 0.0
        self._last = (-1, 0)  # (chromId, end) of the last item, to check the order
        self._closed = False
        self._write_head()

    # ------------------------------------------------------------------ layout
    def _write_head(self) -> None:
        fh = self._fh
        fh.write(bytes(64 + 24 * self._max_zooms))
        if self._transform is not None:
            note = json.dumps({"transform": str(self._transform)}).encode()
            fh.write(NOTE_MAGIC + struct.pack("<I", len(note)) + note)
        self._chrom_tree = fh.tell()
        names = [c.encode() for c, _ in self._chroms]
        key = max((len(n) for n in names), default=1) or 1
        n = len(names)
        fh.write(struct.pack("<IIIIQQ", CHROM_TREE_MAGIC, max(n, 1), key, 8, n, 0))
        fh.write(struct.pack("<BBH", 1, 0, n))
        items = np.zeros(n, dtype=[("key", f"S{key}"), ("id", "<u4"), ("size", "<u4")])
        items["key"] = names
        items["id"] = np.arange(n)
        items["size"] = [s for _, s in self._chroms]
        fh.write(items.tobytes())
        self._summary = fh.tell()
        fh.write(bytes(_SUMMARY.size))
        self._data = fh.tell()
        fh.write(bytes(8))

    def _chrom_id(self, chrom: str) -> int:
        tid = self._tid.get(str(chrom))
        if tid is None:
            raise AvocadoKeyError(f"chromosome {chrom!r} is not in the bigWig's header "
                                  f"({short_list(self._tid)})")
        return tid

    def _check_order(self, tid: int, start: int, end: int) -> None:
        if (tid, start) < self._last:
            raise AvocadoValueError(
                f"items at {self._chroms[tid][0]}:{start:,} come before the last item's end "
                f"({self._chroms[self._last[0]][0]}:{self._last[1]:,}); a bigWig is written in "
                "order")
        if end > self._chroms[tid][1]:
            raise AvocadoValueError(
                f"items reach {self._chroms[tid][0]}:{end:,}, past its length "
                f"{self._chroms[tid][1]:,}")
        self._last = (tid, end)

    # ------------------------------------------------------------------ items
    def add_fixed_step(self, chrom: str, start: int, span: int, values: np.ndarray,
                       step: int | None = None) -> None:
        """Add items ``[start + k * step, start + k * step + span)`` with ``values[k]``.

        Parameters
        ----------
        chrom: str
        start: int
        span: int
            Bases of each item.
        values: array-like of float
            Written as float32; must not hold NaN (leave such items out).
        step: int or None, optional
            Bases between item starts. Default is None: ``span``.
        """
        values = _finite(values)
        n = len(values)
        if not n:
            return
        step = int(span if step is None else step)
        start, span = int(start), int(span)
        tid = self._chrom_id(chrom)
        self._check_order(tid, start, start + (n - 1) * step + span)
        raw = []
        for k in range(0, n, FIXED_STEP_ITEMS):  # blocks, not items
            v = values[k:k + FIXED_STEP_ITEMS]
            s = start + k * step
            end = s + (len(v) - 1) * step + span
            raw.append((_SECTION.pack(tid, s, end, step, span, 3, 0, len(v)) + v.tobytes(),
                        (tid, s, tid, end)))
        self._add(tid, _NO_ITEMS, _NO_ITEMS, values, raw, (start, step, span))

    def add_intervals(self, chrom: str, starts: np.ndarray, ends: np.ndarray,
                      values: np.ndarray) -> None:
        """Add bedGraph items ``[starts[k], ends[k])`` with ``values[k]`` (sorted, disjoint).

        Parameters
        ----------
        chrom: str
        starts, ends: array-like of int
        values: array-like of float
            Written as float32; must not hold NaN.
        """
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        values = _finite(values)
        n = len(values)
        if not n:
            return
        tid = self._chrom_id(chrom)
        if (ends <= starts).any() or (starts[1:] < ends[:-1]).any():
            raise AvocadoValueError(f"items on {chrom} are empty, unsorted or overlapping")
        self._check_order(tid, int(starts[0]), int(ends[-1]))
        items = np.empty(n, dtype=_BEDGRAPH_ITEM)
        items["start"], items["end"], items["value"] = starts, ends, values
        raw = []
        for k in range(0, n, BEDGRAPH_ITEMS):  # blocks, not items
            it = items[k:k + BEDGRAPH_ITEMS]
            s, end = int(it["start"][0]), int(it["end"][-1])
            raw.append((_SECTION.pack(tid, s, end, 0, 0, 1, 0, len(it)) + it.tobytes(),
                        (tid, s, tid, end)))
        self._add(tid, starts, ends, values, raw, (0, 0, 0))

    def _add(self, tid: int, starts: np.ndarray, ends: np.ndarray, values: np.ndarray,
             raw: list[tuple[bytes, tuple]], fixed: tuple[int, int, int]) -> None:
        """Queue ``raw`` blocks for compression; add items to the summary and zoom records.

        ``fixed``: (first, step, span) of fixed-step items (then ``starts`` and ``ends`` are
        empty), or (0, 0, 0) for bedGraph items ``[starts, ends)``.
        """
        first, step, span = fixed
        for k in range(0, len(raw), _BLOCKS_PER_TASK):  # compression tasks, not items
            part = raw[k:k + _BLOCKS_PER_TASK]
            self._submit(None, [b for b, _ in part], [bounds for _, bounds in part])
        self._min = min(self._min, float(values.min()))
        self._max = max(self._max, float(values.max()))
        squares = np.einsum("i,i->i", values, values, dtype=np.float64)
        if span:  # all items span wide: no per-item widths needed
            total = span * len(values)
            self._sum += float(values.sum(dtype=np.float64)) * span
            self._sum_squares += float(squares.sum()) * span
        else:
            spans = ends - starts
            total = int(spans.sum())
            self._sum += float(np.dot(spans, values.astype(np.float64)))
            self._sum_squares += float(np.dot(spans, squares))
        self._n_bases += total
        for level, zoom in enumerate(self._zooms):
            cap = min(2 * len(values) + 8, total // zoom.size + 4096)
            out_i = np.empty((cap, 5), dtype=np.int64)
            out_f = np.empty((cap, 4), dtype=np.float64)
            i, s = 0, -1
            while i < len(values):  # once, unless the output fills up
                i, s, n_out = _zoom_pass(zoom.size, zoom.state, zoom.acc, tid, starts, ends,
                                         values, first, step, span, i, s, out_i, out_f)
                self._zoom_blocks(level, zoom.take(out_i[:n_out], out_f[:n_out], False))

    def _zoom_blocks(self, level: int, blocks: list[tuple]) -> None:
        for k in range(0, len(blocks), _BLOCKS_PER_TASK):  # tasks, not records
            part = blocks[k:k + _BLOCKS_PER_TASK]
            self._submit(level, [b for b, _ in part], [bounds for _, bounds in part])

    # ------------------------------------------------------------------ threads
    def _submit(self, level: int | None, blocks: list[bytes], bounds: list[tuple]) -> None:
        # Data blocks at zlib's default level 6 (libBigWig's); zoom records at level 1: on
        # them 2.6x faster than 6 and as small.
        task = self._pool.submit(_compress_blocks, blocks, 6 if level is None else 1)
        self._queue.append((level, task, bounds))
        limit = _TASKS_AHEAD * compression_threads()
        while self._queue and (len(self._queue) > limit or self._queue[0][1].done()):
            self._store(*self._queue.popleft())

    def _store(self, level: int | None, future: Future, bounds: list[tuple]) -> None:
        """Write one task's compressed blocks (in order) and index them."""
        compressed = future.result()
        if level is None:
            fh, index = self._fh, self._data_index
        else:
            zoom = self._zooms[level]
            fh, index = zoom.spill, zoom.index
            zoom.blocks += len(compressed)
        pos = fh.tell()
        fh.write(b"".join(compressed))
        sizes = np.array([len(c) for c in compressed], dtype=np.uint64)
        items = np.zeros(len(compressed), dtype=_LEAF_ITEM)
        b = np.array(bounds, dtype=np.int64).reshape(-1, 4)
        items["c0"], items["s0"], items["c1"], items["e1"] = b.T
        items["offset"] = pos + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.uint64)
        items["size"] = sizes
        index.append(items)

    # ------------------------------------------------------------------ finish
    def close(self) -> None:
        """Write the indexes, the zoom levels and the header; the file is then complete."""
        if self._closed:
            return
        self._closed = True
        try:
            for level, zoom in enumerate(self._zooms):
                self._zoom_blocks(level, zoom.take(*zoom.close_record(), True))
            while self._queue:
                self._store(*self._queue.popleft())
            self._finish()
        finally:
            self._release()

    def _release(self) -> None:
        for zoom in self._zooms:
            zoom.spill.close()
        for _, future, _ in self._queue:
            future.cancel()
        self._queue.clear()
        if self._own_pool:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Stop without finishing the file (its content is then useless)."""
        self._closed = True
        self._release()

    def _finish(self) -> None:
        fh = self._fh
        data = np.concatenate(self._data_index) if self._data_index else \
            np.zeros(0, dtype=_LEAF_ITEM)
        index_offset = fh.tell()
        fh.write(_r_tree(data, index_offset, index_offset, 1))
        kept: list[tuple[int, int, int]] = []
        for k, zoom in enumerate(self._zooms):
            if not zoom.blocks or (k and zoom.blocks == self._zooms[k - 1].blocks):
                break  # no data; or, as libBigWig, a level no coarser in blocks ends the list
            data_offset = fh.tell()
            fh.write(struct.pack("<I", zoom.blocks))
            zoom.spill.seek(0)
            shutil.copyfileobj(zoom.spill, fh, 1 << 20)
            items = np.concatenate(zoom.index)
            items["offset"] += np.uint64(data_offset + 4)
            idx = fh.tell()
            fh.write(_r_tree(items, idx, idx, BUFFER_BYTES // 32))
            kept.append((zoom.size, data_offset, idx))
        fh.write(struct.pack("<I", BIGWIG_MAGIC))
        end = fh.tell()
        fh.seek(0)
        fh.write(_HEADER.pack(BIGWIG_MAGIC, 4, len(kept), self._chrom_tree, self._data,
                              index_offset, 0, 0, 0, self._summary, BUFFER_BYTES, 0))
        for size, data_offset, idx in kept:
            fh.write(_ZOOM_HEADER.pack(size, 0, data_offset, idx))
        fh.seek(self._summary)
        empty = self._n_bases == 0
        fh.write(_SUMMARY.pack(self._n_bases, 0.0 if empty else self._min,
                               0.0 if empty else self._max, self._sum, self._sum_squares))
        fh.seek(self._data)
        fh.write(struct.pack("<Q", len(data)))
        fh.seek(end)


@contextlib.contextmanager
def open_bigwig(target: str | os.PathLike, chroms: Sequence[tuple[str, int]],
                mean_width: float, pool: Executor | None = None,
                transform: str | None = None) -> Iterator[BigWigWriter]:
    """A :class:`BigWigWriter` on a temporary file that replaces ``target`` when the block ends.

    Parameters
    ----------
    target: path-like
    chroms, mean_width, pool, transform:
        As in :class:`BigWigWriter`.

    Raises
    ------
    AvocadoValueError
        When ``target``'s folder cannot be written.
    AvocadoDiskFullError
        When the disk fills up (``target`` is then left as it was).
    """
    target = Path(target)
    entered = False
    try:
        with _io.atomic_path(target) as tmp:
            entered = True
            with open(tmp, "r+b") as fh:
                writer = BigWigWriter(fh, chroms, mean_width, pool=pool, temp_dir=target.parent,
                                      transform=transform)
                try:
                    yield writer
                except BaseException:
                    writer.abort()
                    raise
                writer.close()
                fh.flush()
    except OSError as exc:
        if entered or isinstance(exc, AvocadoDiskFullError):
            raise
        raise AvocadoValueError(
            f"cannot write the bigWig {target}: its folder {target.parent} cannot be written "
            f"({exc.strerror or exc})") from None
