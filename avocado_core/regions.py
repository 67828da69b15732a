"""Region sets: ordered genomic intervals cut into 25 bp bins, and locus strings.

A :class:`RegionSet` is the coordinate system of a track store and of a model: bin ``i`` of every
track is the same 25 bp of the genome. Each interval (a row of :attr:`RegionSet.intervals`)
contributes ``n_bins`` consecutive bins starting at bin ``offset``; bin ``offset + k`` covers the
genome interval ``[first_bin_start + k * bin_size, first_bin_start + (k + 1) * bin_size)``.
``start`` / ``end`` keep the interval's own coordinates (e.g. from a BED file); the bins cover at
least that span. Everything here is vectorized: mapping millions of bins or positions costs a few
NumPy calls.

Locus strings are parsed in one place, :func:`parse_locus`: ``chr1:151,200,000-151,300,000``,
``chr1:151.2M-151.3M``, ``chr1:10k-20k``; all coordinates are 0-based, half-open.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ._io import write_text
from .errors import AvocadoKeyError, AvocadoValueError, short_list, shorten

__all__ = ["BIN_SIZE", "GENOME_RESOLUTIONS", "RegionSet", "parse_locus", "format_locus",
           "as_locus", "match_chrom", "natural_sort", "read_bed", "read_chrom_sizes",
           "PILOT_REGIONS_FILE"]

BIN_SIZE = 25
#: Genome resolution -> bins of ``BIN_SIZE`` per row of that resolution's factor table (the one
#: copy of the table: the network, its trainers and the projections all read it from here).
GENOME_RESOLUTIONS: dict[str, int] = {"25bp": 1, "250bp": 10, "5kbp": 200}

#: The project's own file: the 42 ENCODE pilot regions of chr1-22 (hg19) in the exact layout of
#: the 1,126,469-bin Roadmap pilot tracks.
#: It lives in the project's ``data/`` folder (the project's own small files), beside the package.
PILOT_REGIONS_FILE = Path(__file__).resolve().parent.parent / "data" / "pilot-regions.hg19.tsv"

#: Coordinates at or above this (1 Tb, above any genome's chromosome) are refused.
MAX_POSITION = 10**12
_COLUMNS = ["name", "chrom", "start", "end", "offset", "n_bins", "first_bin_start"]
_UNITS = {"": 1, "bp": 1, "k": 1_000, "kb": 1_000, "m": 1_000_000, "mb": 1_000_000,
          "g": 1_000_000_000, "gb": 1_000_000_000}
_NUMBER = r"([0-9][0-9,_]*(?:\.[0-9]+)?)\s*([kKmMgG]?[bB]?[pP]?)"
_LOCUS_RE = re.compile(rf"^\s*([^\s:]+)\s*:\s*{_NUMBER}\s*[-\u2013\u2014]\s*{_NUMBER}\s*$")


def _parse_position(number: str, unit: str, text: str) -> int:
    unit_key = unit.lower()
    if unit_key not in _UNITS:
        raise AvocadoValueError(
            f"cannot parse the unit {shorten(unit)} in locus {shorten(text)}; "
            "expected one of bp, k/kb, M/Mb, G/Gb"
        )
    digits = number.replace(",", "").replace("_", "")
    value = float(digits) * _UNITS[unit_key]
    if not value < MAX_POSITION:  # also inf: a 5,000-digit number overflows a float
        raise AvocadoValueError(
            f"position {shorten(number + unit, 20, quote=False)} is too large; positions must "
            f"be below {MAX_POSITION:,} bp (1 Tb)"
        )
    if abs(value - round(value)) > 1e-6:
        raise AvocadoValueError(
            f"position {shorten(number + unit, quote=False)} in locus {shorten(text)} is not "
            "a whole number of base pairs"
        )
    return int(round(value))


def parse_locus(text: str) -> tuple[str, int, int]:
    """Parse a UCSC-style locus string into ``(chrom, start, end)``.

    Accepted forms: ``chr1:151,200,000-151,300,000``, ``chr1:151.2M-151.3M``,
    ``chr1:10k-20k``, ``chr1:10kb-20kb``. Coordinates are 0-based, half-open (as in BED and
    bioframe): the string's numbers are taken as written. A single position (``chr1:1000``) is
    not a locus and is refused.

    Parameters
    ----------
    text: str
        The locus string.

    Returns
    -------
    (chrom, start, end): tuple[str, int, int]
        Chromosome name and 0-based half-open coordinates, ``0 <= start < end``.

    Raises
    ------
    AvocadoValueError
        When the string does not have the form ``chrom:start-end`` or ``start >= end``.
    """
    if not isinstance(text, str):
        raise AvocadoValueError(
            f"a locus must be a string like 'chr1:10,000-20,000', got {shorten(text)}")
    match = _LOCUS_RE.match(text)
    if match is None:
        raise AvocadoValueError(
            f"cannot parse locus {shorten(text)}; expected 'chrom:start-end' such as "
            "'chr1:151,200,000-151,300,000', 'chr1:151.2M-151.3M' or 'chr1:10k-20k'"
        )
    chrom, n1, u1, n2, u2 = match.groups()
    start = _parse_position(n1, u1, text)
    end = _parse_position(n2, u2, text)
    if start >= end:
        raise AvocadoValueError(
            f"locus {shorten(text)} is empty or reversed: start {start:,} must be below end "
            f"{end:,}"
        )
    return chrom, start, end


def format_locus(chrom: str, start: int, end: int) -> str:
    """Format ``(chrom, start, end)`` as ``chrom:start-end`` with thousands separators."""
    return f"{chrom}:{int(start):,}-{int(end):,}"


def as_locus(locus: str | tuple) -> tuple[str, int, int]:
    """``(chrom, start, end)`` from a locus string (:func:`parse_locus`) or a 3-tuple."""
    if isinstance(locus, str):
        return parse_locus(locus)
    if isinstance(locus, (tuple, list)) and len(locus) == 3:
        chrom, start, end = locus
        start, end = int(start), int(end)
        if start >= end or start < 0:
            raise AvocadoValueError(
                f"locus {tuple(locus)!r} is empty or negative; expected 0 <= start < end"
            )
        return str(chrom), start, end
    raise AvocadoValueError(
        "expected a locus string 'chrom:start-end' or a (chrom, start, end) tuple, got "
        f"{shorten(locus)}"
    )


class RegionSet:
    """Ordered genomic intervals cut into fixed-size bins.

    Parameters
    ----------
    intervals: pandas.DataFrame
        Columns ``chrom``, ``start``, ``end`` and optionally ``name``, ``n_bins``,
        ``first_bin_start``. Without the last two, each interval is covered by the bins of the
        genome-wide ``bin_size`` grid that overlap it. ``offset`` is always recomputed from the
        row order.
    bin_size: int
        Width of one bin in base pairs. Default is 25.

    Attributes
    ----------
    intervals: pandas.DataFrame
        name, chrom, start, end, offset, n_bins, first_bin_start (one row per interval, in bin
        order).
    bin_size: int
    n_bins: int
        Total number of bins.
    chroms: list[str]
        Chromosomes in order of first appearance.
    """

    def __init__(self, intervals: pd.DataFrame, bin_size: int = BIN_SIZE):
        bin_size = int(bin_size)
        if bin_size <= 0:
            raise AvocadoValueError(f"bin_size must be a positive integer, got {bin_size}")
        missing = [c for c in ("chrom", "start", "end") if c not in intervals.columns]
        if missing:
            raise AvocadoValueError(
                f"intervals lack the column(s) {missing}; expected chrom, start, end "
                f"(and optionally name, n_bins, first_bin_start), got {list(intervals.columns)}"
            )
        if len(intervals) == 0:
            raise AvocadoValueError("a region set needs at least one interval, got none")
        df = pd.DataFrame({
            "chrom": intervals["chrom"].astype(str).to_numpy(),
            "start": intervals["start"].to_numpy().astype(np.int64),
            "end": intervals["end"].to_numpy().astype(np.int64),
        })
        if "name" in intervals.columns:
            df.insert(0, "name", intervals["name"].astype(str).to_numpy())
        else:
            df.insert(0, "name", [f"{c}:{s}-{e}" for c, s, e in
                                  zip(df["chrom"], df["start"], df["end"])])
        bad = df.index[(df["start"] < 0) | (df["end"] <= df["start"])]
        if len(bad):
            row = df.loc[bad[0]]
            raise AvocadoValueError(
                f"interval {row['name']} ({row['chrom']}:{row['start']}-{row['end']}) is empty "
                f"or negative; expected 0 <= start < end ({len(bad)} such interval(s))"
            )
        if "first_bin_start" in intervals.columns and "n_bins" in intervals.columns:
            df["n_bins"] = intervals["n_bins"].to_numpy().astype(np.int64)
            df["first_bin_start"] = intervals["first_bin_start"].to_numpy().astype(np.int64)
            if (df["n_bins"] <= 0).any():
                raise AvocadoValueError("every interval needs n_bins >= 1")
        else:
            first = df["start"] // bin_size
            last = (df["end"] - 1) // bin_size
            df["n_bins"] = (last - first + 1).astype(np.int64)
            df["first_bin_start"] = (first * bin_size).astype(np.int64)
        df["offset"] = np.concatenate([[0], np.cumsum(df["n_bins"].to_numpy())[:-1]]).astype(
            np.int64)
        self.intervals: pd.DataFrame = df[_COLUMNS].reset_index(drop=True)
        self.bin_size: int = bin_size
        self._check_overlaps()
        self._build_index()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_bed(cls, path: str | os.PathLike, bin_size: int = BIN_SIZE,
                 sort: bool = False) -> "RegionSet":
        """Read intervals from a BED file (chrom, start, end[, name, ...]).

        Parameters
        ----------
        path: str or PathLike
            BED file, optionally gzip-compressed; ``track`` / ``browser`` / ``#`` lines skipped.
        bin_size: int
            Default is 25.
        sort: bool
            Sort intervals by chromosome (natural order: chr2 before chr10) and start. Default
            is False: the file's order is the bin order.
        """
        df = read_bed(path, ["chrom", "start", "end", "name"])
        if "name" in df.columns and df["name"].isna().any():
            df = df.drop(columns="name")
        if sort:
            df = natural_sort(df)
        return cls(df, bin_size=bin_size)

    @classmethod
    def from_chrom_sizes(cls, path_or_dict: str | os.PathLike | Mapping[str, int],
                         chroms: Iterable[str] | None = None,
                         bin_size: int = BIN_SIZE) -> "RegionSet":
        """Whole chromosomes from a UCSC chrom-sizes file or a ``{chrom: length}`` mapping.

        Parameters
        ----------
        path_or_dict: str, PathLike or Mapping[str, int]
            Two-column tab-separated file (chrom, length) or a mapping.
        chroms: iterable of str, optional
            Which chromosomes to keep, in this order. Default is all, in the given order.
        bin_size: int
            Default is 25.
        """
        sizes = read_chrom_sizes(path_or_dict)
        if chroms is not None:
            chroms = [str(c) for c in chroms]
            unknown = [c for c in chroms if c not in sizes]
            if unknown:
                raise AvocadoKeyError(
                    f"chromosome(s) {unknown} not in the chrom sizes; available: "
                    f"{short_list(sizes)}"
                )
            sizes = {c: sizes[c] for c in chroms}
        df = pd.DataFrame({"name": list(sizes), "chrom": list(sizes), "start": 0,
                           "end": list(sizes.values())})
        return cls(df, bin_size=bin_size)

    @classmethod
    def roadmap_pilot(cls) -> "RegionSet":
        """The 42 ENCODE pilot regions on chr1-22 (hg19) in the 1,126,469-bin pilot layout.

        Regions are in numeric chromosome order, then by start; region ``r`` contributes
        ``end // 25 - start // 25 + 2`` bins and its bin ``k`` covers hg19
        ``[(start // 25 - 1 + k) * 25, +25)`` (the layout of the Avocado pilot tracks).
        """
        return cls.read(PILOT_REGIONS_FILE)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "RegionSet":
        """Read a region set written by :meth:`write`.

        The TSV has the columns of :attr:`intervals`; a ``# bin_size=N`` comment line sets the
        bin size (default 25).
        """
        path = Path(path)
        if not path.is_file():
            raise AvocadoValueError(f"region set file {path} does not exist")
        bin_size = BIN_SIZE
        with open(path) as handle:
            for line in handle:
                if not line.startswith("#"):
                    break
                m = re.search(r"bin_size\s*=\s*(\d+)", line)
                if m:
                    bin_size = int(m.group(1))
        df = pd.read_csv(path, sep="\t", comment="#", dtype={"name": str, "chrom": str})
        missing = [c for c in _COLUMNS if c not in df.columns]
        if missing:
            raise AvocadoValueError(
                f"region set file {path} lacks the column(s) {missing}; expected {_COLUMNS}"
            )
        out = cls(df, bin_size=bin_size)
        if not np.array_equal(out.intervals["offset"].to_numpy(), df["offset"].to_numpy()):
            raise AvocadoValueError(
                f"region set file {path}: the offset column does not equal the running sum of "
                "n_bins"
            )
        return out

    def write(self, path: str | os.PathLike) -> None:
        """Write the region set as TSV (atomically: temporary file, then rename)."""
        path = Path(path)
        text = f"# bin_size={self.bin_size}\n" + self.intervals.to_csv(sep="\t", index=False)
        write_text(path, text)

    # ------------------------------------------------------------------ basic properties
    @property
    def n_bins(self) -> int:
        """Total number of bins."""
        return int(self._offsets[-1] + self._n_bins[-1])

    @property
    def chroms(self) -> list[str]:
        """Chromosomes in order of first appearance."""
        return list(dict.fromkeys(self.intervals["chrom"]))

    def __len__(self) -> int:
        return len(self.intervals)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegionSet):
            return NotImplemented
        return self.bin_size == other.bin_size and self.intervals.equals(other.intervals)

    def __repr__(self) -> str:
        return (f"RegionSet({len(self)} intervals on {len(self.chroms)} chromosome(s), "
                f"{self.n_bins:,} bins of {self.bin_size} bp)")

    # ------------------------------------------------------------------ internals
    def _check_overlaps(self) -> None:
        df = self.intervals
        span_end = df["first_bin_start"] + df["n_bins"] * self.bin_size
        order = np.lexsort((df["first_bin_start"].to_numpy(), df["chrom"].to_numpy()))
        chrom = df["chrom"].to_numpy()[order]
        starts = df["first_bin_start"].to_numpy()[order]
        ends = span_end.to_numpy()[order]
        clash = (chrom[1:] == chrom[:-1]) & (starts[1:] < ends[:-1])
        if clash.any():
            i = int(np.flatnonzero(clash)[0])
            a, b = df.iloc[order[i]], df.iloc[order[i + 1]]
            raise AvocadoValueError(
                f"intervals {a['name']} ({a['chrom']}:{a['start']}-{a['end']}) and {b['name']} "
                f"({b['chrom']}:{b['start']}-{b['end']}) share {self.bin_size} bp bins; merge "
                "overlapping or touching intervals first (e.g. bedtools merge)"
            )

    def _build_index(self) -> None:
        df = self.intervals
        self._offsets = df["offset"].to_numpy()
        self._n_bins = df["n_bins"].to_numpy()
        self._first = df["first_bin_start"].to_numpy()
        self._chrom_arr = df["chrom"].to_numpy().astype(str)
        # Per chromosome: interval rows sorted by genome position, for searchsorted look-ups.
        self._by_chrom: dict[str, np.ndarray] = {}
        for chrom, rows in df.groupby("chrom", sort=False).indices.items():
            rows = np.asarray(rows)
            self._by_chrom[chrom] = rows[np.argsort(self._first[rows], kind="stable")]

    def _resolve_chrom(self, chrom: str) -> str | None:
        """Match a chromosome name with or without the 'chr' prefix."""
        return match_chrom(chrom, self._by_chrom)

    def _regions_on(self, chrom: str) -> str:
        rows = self._by_chrom.get(chrom, np.array([], dtype=int))
        if len(rows) == 0:
            return f"none on {chrom}; chromosomes: {short_list(self.chroms)}"
        return ", ".join(
            f"{self.intervals.at[r, 'name']} "
            f"({format_locus(chrom, self._first[r], self._span_end(r))})"
            for r in rows
        )

    def _span_end(self, row: int) -> int:
        return int(self._first[row] + self._n_bins[row] * self.bin_size)

    # ------------------------------------------------------------------ mapping
    def bin_coordinates(
        self, bins: int | Iterable[int] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Genome coordinates of bins.

        Parameters
        ----------
        bins: int or array-like of int
            Bin indices in ``[0, n_bins)``.

        Returns
        -------
        chrom: ndarray[str]
        start: ndarray[int64]
            0-based start of each bin (the bin covers ``[start, start + bin_size)``).
        """
        b = np.atleast_1d(np.asarray(bins))
        if b.size and not np.issubdtype(b.dtype, np.integer):
            raise AvocadoValueError(f"bin indices must be integers, got dtype {b.dtype}")
        b = b.astype(np.int64, copy=False)
        bad = (b < 0) | (b >= self.n_bins)
        if bad.any():
            raise AvocadoValueError(
                f"bin index {int(b[bad][0])} is outside [0, {self.n_bins}) ({int(bad.sum())} "
                "such index(es))"
            )
        row = np.searchsorted(self._offsets, b, side="right") - 1
        start = self._first[row] + (b - self._offsets[row]) * self.bin_size
        return self._chrom_arr[row], start.astype(np.int64)

    def bins_of(self, chrom: str | Iterable[str] | np.ndarray,
                pos: int | Iterable[int] | np.ndarray) -> np.ndarray:
        """Bin index of each genome position; -1 where no interval's bins cover it.

        Parameters
        ----------
        chrom: str or array-like of str
            One chromosome for all positions, or one per position. ``chr`` prefixes are
            matched either way.
        pos: int or array-like of int
            0-based positions.

        Returns
        -------
        ndarray[int64]
            Same shape as ``pos`` (broadcast with ``chrom``).
        """
        p = np.asarray(pos, dtype=np.int64)
        c = np.asarray(chrom).astype(str)
        c, p = np.broadcast_arrays(c, p)
        out = np.full(p.shape, -1, dtype=np.int64)
        for name in np.unique(c):  # loop over chromosomes, not positions
            resolved = self._resolve_chrom(str(name))
            if resolved is None:
                continue
            sel = c == name
            rows = self._by_chrom[resolved]
            q = p[sel]
            k = np.searchsorted(self._first[rows], q, side="right") - 1
            valid = k >= 0
            r = rows[np.clip(k, 0, None)]
            rel = q - self._first[r]
            valid &= rel < self._n_bins[r] * self.bin_size
            out[sel] = np.where(valid, self._offsets[r] + rel // self.bin_size, -1)
        return out

    def locus_bins(self, locus: str | tuple, clip: bool = False) -> tuple[int, int]:
        """Bin range ``[start, end)`` of a locus lying within one interval.

        Parameters
        ----------
        locus: str or (chrom, start, end)
            e.g. ``"chr1:151.2M-151.3M"``.
        clip: bool
            If True, a locus reaching beyond an interval is clipped to the interval it overlaps
            most instead of raising. Default is False.

        Returns
        -------
        (start_bin, end_bin): tuple[int, int]
        """
        chrom, start, end = as_locus(locus)
        resolved = self._resolve_chrom(chrom)
        if resolved is None:
            raise AvocadoKeyError(
                f"chromosome {chrom!r} of locus {format_locus(chrom, start, end)} is not in the "
                f"region set; chromosomes: {short_list(self.chroms)}"
            )
        rows = self._by_chrom[resolved]
        span_start = self._first[rows]
        span_end = span_start + self._n_bins[rows] * self.bin_size
        inside = (span_start <= start) & (end <= span_end)
        if inside.any():
            r = rows[np.flatnonzero(inside)[0]]
        else:
            overlap = np.minimum(end, span_end) - np.maximum(start, span_start)
            if not clip or overlap.max() <= 0:
                raise AvocadoValueError(
                    f"locus {format_locus(chrom, start, end)} does not lie within one region of "
                    f"the region set; regions on {resolved}: {self._regions_on(resolved)}"
                )
            r = rows[int(np.argmax(overlap))]
            start = max(start, int(self._first[r]))
            end = min(end, self._span_end(r))
        first = int(self._offsets[r] + (start - self._first[r]) // self.bin_size)
        last = int(self._offsets[r] + (end - 1 - self._first[r]) // self.bin_size)
        return first, last + 1

    def chrom_bins(self, chrom: str) -> tuple[int, int]:
        """Bin range ``[start, end)`` of a chromosome (its intervals must be consecutive)."""
        resolved = self._resolve_chrom(str(chrom))
        if resolved is None:
            raise AvocadoKeyError(
                f"chromosome {chrom!r} is not in the region set; chromosomes: "
                f"{short_list(self.chroms)}"
            )
        rows = np.sort(self._by_chrom[resolved])
        if not np.all(np.diff(rows) == 1):
            raise AvocadoValueError(
                f"the intervals of {resolved} are not consecutive in bin order, so it has no "
                "single bin range; use locus_bins on one interval"
            )
        return int(self._offsets[rows[0]]), int(self._offsets[rows[-1]] + self._n_bins[rows[-1]])

    def region_of_bin(self, bin: int) -> pd.Series:
        """The :attr:`intervals` row holding a bin."""
        b = int(bin)
        if not 0 <= b < self.n_bins:
            raise AvocadoValueError(f"bin index {b} is outside [0, {self.n_bins})")
        row = int(np.searchsorted(self._offsets, b, side="right") - 1)
        return self.intervals.iloc[row]

    def bin_locus(self, start_bin: int, end_bin: int) -> str:
        """Locus string of the bin range ``[start_bin, end_bin)`` (must lie in one interval)."""
        chrom, starts = self.bin_coordinates([start_bin, end_bin - 1])
        span = (end_bin - 1 - start_bin) * self.bin_size
        if chrom[0] != chrom[1] or starts[1] - starts[0] != span:
            raise AvocadoValueError(
                f"bins [{start_bin}, {end_bin}) span more than one interval of the region set"
            )
        return format_locus(chrom[0], starts[0], starts[1] + self.bin_size)


# ---------------------------------------------------------------------- helpers
def _natural_key(chrom: pd.Series) -> pd.Series:
    stripped = chrom.str.replace(r"^chr", "", regex=True)
    num = pd.to_numeric(stripped, errors="coerce")
    special = stripped.map({"X": 1e6, "Y": 1e6 + 1, "M": 1e6 + 2, "MT": 1e6 + 2})
    return num.fillna(special).fillna(2e6)


def natural_sort(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of a table with ``chrom`` / ``start`` columns in chr1, chr2, ..., chrX order."""
    key = _natural_key(df["chrom"].astype(str))
    return (df.assign(_k=key.to_numpy()).sort_values(["_k", "chrom", "start"], kind="stable")
            .drop(columns="_k").reset_index(drop=True))


def match_chrom(chrom: str, available: Iterable[str]) -> str | None:
    """The name under which ``chrom`` appears in ``available`` (a set, dict, ...), matching
    with or without the ``chr`` prefix (and chrM / M / MT); None if absent."""
    chrom = str(chrom)
    if chrom in available:
        return chrom
    alt = chrom[3:] if chrom.startswith("chr") else "chr" + chrom
    if alt in available:
        return alt
    if chrom in ("chrM", "M", "chrMT", "MT"):
        return next((o for o in ("chrM", "M", "MT", "chrMT") if o in available), None)
    return None


def read_chrom_sizes(chrom_sizes: str | os.PathLike | Mapping[str, int]) -> dict[str, int]:
    """A ``{chrom: length}`` dict from a mapping or a UCSC chrom-sizes file (chrom, length)."""
    if isinstance(chrom_sizes, Mapping):
        return {str(k): int(v) for k, v in chrom_sizes.items()}
    path = Path(chrom_sizes)
    if not path.is_file():
        raise AvocadoValueError(f"chrom sizes file {path} does not exist")
    try:
        table = pd.read_csv(path, sep="\t", header=None, comment="#", usecols=[0, 1],
                            dtype={0: str, 1: np.int64})
    except (ValueError, pd.errors.ParserError) as exc:
        raise AvocadoValueError(
            f"chrom sizes file {path} is not two tab-separated columns (chrom, length): {exc}"
        ) from None
    return dict(zip(table[0], table[1]))


def read_bed(path: str | os.PathLike, names: list[str], what: str = "BED") -> pd.DataFrame:
    """Read the first ``len(names)`` columns of a BED file (gzip allowed) as strings, with
    integer start / end; ``track`` / ``browser`` / ``#`` lines skipped.

    Parameters
    ----------
    path: str or PathLike
    names: list of str
        Column names, starting with chrom, start, end; a file with fewer columns gets the
        first names only.
    what: str
        What the file holds, for error messages. Default is "BED".
    """
    path = Path(path)
    if not path.is_file():
        raise AvocadoValueError(f"{what} file {path} does not exist")
    df = pd.read_csv(path, sep="\t", header=None, comment="#", dtype=str,
                     skip_blank_lines=True)
    df = df[~df[0].str.startswith(("track", "browser"))]
    if df.shape[1] < 3:
        raise AvocadoValueError(
            f"{what} file {path} has {df.shape[1]} column(s); expected at least chrom, start, end"
        )
    df = df.iloc[:, :len(names)]
    df.columns = names[:df.shape[1]]
    try:
        df["start"] = df["start"].astype(np.int64)
        df["end"] = df["end"].astype(np.int64)
    except ValueError as exc:
        raise AvocadoValueError(
            f"{what} file {path}: start / end are not integers ({exc})"
        ) from None
    return df.reset_index(drop=True)
