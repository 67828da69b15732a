"""The layout of the ENCODE 2018 compendia: which biosample x assay experiments exist.

The original Avocado's ENCODE model was trained on the ENCODE 2018 core compendium: 3,814
experiments over 400 biosamples and 84 assays (11 % of the 33,600 cells). Its table,
``ENCODE2018Core.tsv`` in the original's repository (``ENCODE2018Sparse.tsv`` beside it: 694
biosamples, 1,311 assays, 3,055 experiments), lists one experiment per row: biosample index
(``J000``, ...), biosample (the ENCODE term name, e.g. ``K562``), biosample summary, assay
(e.g. ``ChIP-seq_H3K4me3_signal_p-value``), accession (``ENCFF...``) and download path on the
ENCODE portal. :func:`encode2018_layout` fetches a table (mirror or download, SHA-256 checked,
:mod:`~avocado_core.datasets`) and :func:`read_layout` parses one into an :class:`EncodeLayout`.

No signal comes with the tables. :meth:`EncodeLayout.planted` hands the layout to
:func:`~avocado_core.synthetic.layout_compendium`, which generates synthetic signal with exactly
this layout and planted structure: biosamples grouped by type, assays responding by family.

Biosample types (:func:`biosample_type`), first rule that applies:

1. ``cell line``: the term name has no lowercase word of three letters or more (``K562``,
   ``HepG2``, ``H1-hESC``, ``iPS DF 19.11``, ``Karpas-422``, ``Daoy``);
2. ``in vitro differentiated cells``: the summary says ``originated from`` a cell line or a
   cell (``hepatocyte originated from H9``, ``adipocyte originated from mesenchymal stem
   cell``, ``bipolar neuron originated from GM23338 treated with ...``), not from a tissue
   (``mesenchymal stem cell originated from adipose tissue`` stays a primary cell);
3. ``primary cell``: the term names a cell: a word of it before any `` of `` ends in cell(s),
   -cyte, -blast, -phil, neuron, myotube, -sphere or progenitor (``B cell``, ``fibroblast of
   lung``, ``keratinocyte``, ``neutrophil``);
4. ``tissue``: the rest (``stomach``, ``heart left ventricle``, ``Peyer's patch``).

ENCODE's own classification is not in the table; these rules follow it closely but not exactly
(ENCODE files ``myotube`` and ``neural cell`` under in vitro differentiated cells, rule 3 under
primary cells).

Assay kinds and families (:func:`assay_classes`), from the assay name:

* ``accessibility``: DNase-seq, ATAC-seq (family ``accessibility``);
* ``RNA``: names with RNA-seq, CAGE, RAMPAGE (family ``transcription``);
* ChIP-seq of a histone or histone variant (target ``H2A...``, ``H2B...``, ``H3...``,
  ``H4...``): ``repressive mark`` for H3K27me3 (family ``polycomb``) and H3K9me2/3, H4K20me3
  (``heterochromatin``); ``active mark`` otherwise: H3K36me3, H3K79me1/2, H4K20me1
  (``transcription``), H3K4me2/3, H3K9ac, H3K4ac, H2AFZ, H3F3A (``promoter mark``), other
  marks: H3K4me1 and acetylations (``enhancer mark``);
* ChIP-seq of anything else: ``transcription factor`` (DNA-binding proteins at large): CTCF,
  RAD21, SMC3 (``insulator``), EZH2, SUZ12 (``polycomb``), POLR2A, TAF1, TBP, GTF2F1
  (``promoter mark``), others (``enhancer mark``);
* anything else: ``other`` (no family; such a layout cannot be planted).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import fetch
from .errors import AvocadoValueError, short_list
from .synthetic import PlantedLayout

__all__ = ["EncodeLayout", "read_layout", "encode2018_layout", "biosample_type",
           "assay_classes", "BIOSAMPLE_TYPES", "ASSAY_KINDS", "LAYOUT_FILES", "PORTAL_URL"]

#: Biosample types, in the order of :func:`biosample_type`'s rules.
BIOSAMPLE_TYPES = ("cell line", "in vitro differentiated cells", "primary cell", "tissue")
#: Assay kinds of :func:`assay_classes`.
ASSAY_KINDS = ("active mark", "repressive mark", "transcription factor", "RNA", "accessibility",
               "other")
#: The tables of :func:`encode2018_layout` (keys of ``datasets.REGISTRY``).
LAYOUT_FILES = {"core": "encode2018/ENCODE2018Core.tsv",
                "sparse": "encode2018/ENCODE2018Sparse.tsv"}
#: Where the tables' download paths (``/files/ENCFF.../@@download/...``) live.
PORTAL_URL = "https://www.encodeproject.org"
_COLUMNS = ("Biosample Index", "Biosample", "Biosample summary", "Assay", "Accession",
            "Download URL")
_NAMES = ("biosample", "term", "summary", "assay", "accession", "url")

_CELL_WORD = re.compile(r"(cells?|cyte|blast|phil|neuron|myotube|sphere|progenitor)$")
_LOWER_WORD = re.compile(r"(?<![A-Za-z])[a-z]{3,}(?![A-Za-z])")
#: What a biosample "originated from" (up to a treatment or a modification, e.g. "GM23338
#: treated with doxycycline" names GM23338).
_ORIGIN = re.compile(r"originated from (.+?)(?: treated with| genetically modified|$)")
_HISTONE = re.compile(r"^(H2A|H2B|H3|H4)(K\d|F)")
#: (pattern on a histone target, family), first match wins.
_HISTONE_FAMILIES = (
    (r"K27me3", "polycomb"),
    (r"K9me[23]|K20me3", "heterochromatin"),
    (r"K36me3|K79me|H4K20me1", "transcription"),
    (r"K4me[23]|H3K9ac|H3K4ac|H2AFZ|H3F3A", "promoter mark"),
    (r".", "enhancer mark"),
)
#: (pattern on any other ChIP-seq target, family), first match wins.
_FACTOR_FAMILIES = (
    (r"^(CTCF|RAD21|SMC3)$", "insulator"),
    (r"^(EZH2|SUZ12)", "polycomb"),
    (r"^(POLR2A|TAF1|TBP|GTF2F1)", "promoter mark"),
    (r".", "enhancer mark"),
)


def _is_cell_line(term: str) -> bool:
    return _LOWER_WORD.search(term) is None


def biosample_type(term: str, summary: str) -> str:
    """The type of a biosample from its ENCODE term name and summary (rules in the module
    docstring).

    Parameters
    ----------
    term: str
        The biosample's term name, e.g. ``"K562"``, ``"fibroblast of lung"``.
    summary: str
        Its summary, e.g. ``"hepatocyte originated from H9"``.

    Returns
    -------
    str
        One of :data:`BIOSAMPLE_TYPES`.
    """
    if _is_cell_line(term):
        return "cell line"
    origin = _ORIGIN.search(summary)
    if origin and (_is_cell_line(origin[1]) or _CELL_WORD.search(origin[1].split()[-1])):
        return "in vitro differentiated cells"
    head = term.split(" of ")[0]
    if any(_CELL_WORD.search(word) for word in re.split(r"[\s,]+", head)):
        return "primary cell"
    return "tissue"


def _first_match(rules: tuple[tuple[str, str], ...], text: str) -> str:
    return next(family for pattern, family in rules if re.search(pattern, text))


def assay_classes(assays: pd.Index | list[str]) -> pd.DataFrame:
    """Technique, ChIP target, strand, kind and family of ENCODE assay names (rules in the
    module docstring).

    Parameters
    ----------
    assays: sequence of str
        Names such as ``"ChIP-seq_H3K4me3_signal_p-value"``,
        ``"polyA_RNA-seq_plus_strand_signal_of_all_reads"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by name; columns ``technique`` (``ChIP-seq``, ``polyA_RNA-seq``, ...),
        ``target`` (ChIP-seq only, else empty), ``strand`` (``plus`` / ``minus`` / empty),
        ``kind`` (one of :data:`ASSAY_KINDS`) and ``family`` (a synthetic signal family of
        :data:`~avocado_core.synthetic.ASSAY_FAMILIES`, empty for kind ``other``).
    """
    names = pd.Index([str(a) for a in assays], name="name")
    series = names.to_series()
    chip = series.str.extract(r"^ChIP-seq_(?P<target>.+?)_signal", expand=True)["target"]
    technique = series.str.extract(r"^(.+?)_(?:plus_strand|minus_strand|signal|read-depth)",
                                   expand=False).fillna(series)
    technique = technique.where(chip.isna(), "ChIP-seq")
    strand = series.str.extract(r"_(plus|minus)_strand", expand=False).fillna("")
    kind, family = [], []
    for name, target in zip(names, chip):  # 84 (or 1,311) names: rules, not positions
        if isinstance(target, str):
            histone = _HISTONE.search(target) is not None
            fam = _first_match(_HISTONE_FAMILIES if histone else _FACTOR_FAMILIES, target)
            kind.append(("repressive mark" if fam in ("polycomb", "heterochromatin")
                         else "active mark") if histone else "transcription factor")
        elif re.search(r"DNase-seq|ATAC-seq", name):
            kind.append("accessibility")
            fam = "accessibility"
        elif re.search(r"RNA-seq|^CAGE|^RAMPAGE", name):
            kind.append("RNA")
            fam = "transcription"
        else:
            kind.append("other")
            fam = ""
        family.append(fam)
    return pd.DataFrame({"technique": technique.to_numpy(), "target": chip.fillna("").to_numpy(),
                         "strand": strand.to_numpy(), "kind": kind, "family": family},
                        index=names)


@dataclass(frozen=True)
class EncodeLayout:
    """A compendium's layout: its biosamples, assays and observed experiments (no signal).

    Build one with :func:`read_layout` or :func:`encode2018_layout`.

    Attributes
    ----------
    name: str
        Where it comes from, e.g. ``"ENCODE 2018 core (ENCODE2018Core.tsv)"``.
    biosamples: pandas.DataFrame
        Indexed by biosample index (``name``: ``J000``, ..., sorted, the row order of the
        original's ENCODE model); columns ``term`` (e.g. ``K562``), ``summary`` (e.g. ``K562
        nuclear fraction``; unique, what the original's model calls the biosample) and ``type``
        (:func:`biosample_type`).
    assays: pandas.DataFrame
        Indexed by assay name (sorted, the original model's column order); the columns of
        :func:`assay_classes`.
    experiments: pandas.DataFrame
        One row per observed experiment: ``biosample``, ``assay``, ``accession`` and ``url``
        (the bigWig on the ENCODE portal).
    path: pathlib.Path or None
        The table it was read from.
    """

    name: str
    biosamples: pd.DataFrame
    assays: pd.DataFrame
    experiments: pd.DataFrame
    path: Path | None = None

    def __repr__(self) -> str:
        return f"EncodeLayout({self.name}: {self.summary})"

    @property
    def summary(self) -> str:
        """Its size in words: biosamples, assays, experiments."""
        return (f"{len(self.biosamples):,} biosamples x {len(self.assays):,} assays, "
                f"{len(self.experiments):,} experiments ({self.fraction_observed:.1%} of the "
                "cells)")

    @property
    def observed_mask(self) -> np.ndarray:
        """Which experiments exist: bool, shape (n_biosamples, n_assays)."""
        mask = np.zeros((len(self.biosamples), len(self.assays)), dtype=bool)
        mask[self.biosamples.index.get_indexer(self.experiments["biosample"]),
             self.assays.index.get_indexer(self.experiments["assay"])] = True
        return mask

    @property
    def fraction_observed(self) -> float:
        """Observed experiments over biosamples x assays."""
        return len(self.experiments) / max(len(self.biosamples) * len(self.assays), 1)

    def subset(self, n_biosamples: int) -> EncodeLayout:
        """A smaller layout: ``n_biosamples`` biosamples evenly spread over the index order,
        the assays they have and their experiments (for a quick, small workspace).

        Parameters
        ----------
        n_biosamples: int
            Between 1 and the layout's number of biosamples.

        Returns
        -------
        EncodeLayout
        """
        n = len(self.biosamples)
        if not isinstance(n_biosamples, (int, np.integer)) or not 1 <= n_biosamples <= n:
            raise AvocadoValueError(f"n_biosamples must be an integer from 1 to {n}, got "
                                    f"{n_biosamples!r}")
        keep = self.biosamples.index[np.unique(np.linspace(0, n - 1, n_biosamples).round()
                                               .astype(int))]
        experiments = self.experiments[self.experiments["biosample"].isin(keep)]
        assays = self.assays[self.assays.index.isin(experiments["assay"])]
        return EncodeLayout(name=f"{self.name}, {len(keep)} of its {n} biosamples",
                            biosamples=self.biosamples.loc[keep], assays=assays,
                            experiments=experiments.reset_index(drop=True), path=self.path)

    def planted(self) -> PlantedLayout:
        """The layout for :func:`~avocado_core.synthetic.layout_compendium`: planted groups by
        biosample ``type``, subgroups by ``term`` (the donors and fractions of one tissue or
        cell line sit together), assay families from :func:`assay_classes`.

        Raises
        ------
        AvocadoValueError
            When an assay has kind ``other`` (no rule gives it a signal family).
        """
        other = self.assays.index[self.assays["family"] == ""]
        if len(other):
            raise AvocadoValueError(
                f"assays {short_list(other)} match no rule of assay_classes (ChIP-seq, "
                "DNase-seq, ATAC-seq, RNA-seq, CAGE, RAMPAGE); no synthetic signal family fits "
                "them"
            )
        return PlantedLayout(biosamples=self.biosamples, assays=self.assays,
                             observed_mask=self.observed_mask, group="type", subgroup="term",
                             origin=self.name)


def read_layout(path: str | os.PathLike, name: str | None = None) -> EncodeLayout:
    """Parse a layout table with the columns of ``ENCODE2018Core.tsv``.

    Parameters
    ----------
    path: str or os.PathLike
        A tab-separated table with the header ``Biosample Index, Biosample, Biosample summary,
        Assay, Accession, Download URL`` (the sparse table's ``Accession_x`` is read as
        ``Accession``).
    name: str or None, optional
        What the layout is called. Default is the file name.

    Returns
    -------
    EncodeLayout

    Raises
    ------
    AvocadoValueError
        When the header differs, a cell is empty, an experiment appears twice or one biosample
        index has two term names or summaries.
    """
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    header = [re.sub(r"_x$", "", c) for c in table.columns]
    if tuple(header) != _COLUMNS:
        raise AvocadoValueError(f"{path} has the columns {list(table.columns)}; expected "
                                f"{list(_COLUMNS)}")
    table.columns = list(_NAMES)
    if not len(table):
        raise AvocadoValueError(f"{path} lists no experiments")
    empty = table.eq("").any(axis=1)
    if empty.any():
        raise AvocadoValueError(f"{path}: row {int(np.argmax(empty)) + 2} has an empty cell")
    twice = table.duplicated(["biosample", "assay"])
    if twice.any():
        b, a = table.loc[twice.idxmax(), ["biosample", "assay"]]
        raise AvocadoValueError(f"{path}: experiment ({b}, {a}) is listed twice; expected one "
                                "row per biosample and assay")
    biosamples = table.drop_duplicates(["biosample", "term", "summary"])
    clash = biosamples["biosample"].duplicated()
    if clash.any():
        raise AvocadoValueError(f"{path}: biosample {biosamples['biosample'][clash].iloc[0]} "
                                "has two term names or summaries; expected one of each")
    biosamples = biosamples.set_index("biosample")[["term", "summary"]].sort_index()
    biosamples.index.name = "name"
    biosamples["type"] = [biosample_type(t, s) for t, s in
                          zip(biosamples["term"], biosamples["summary"])]  # 400 names
    assays = assay_classes(sorted(set(table["assay"])))
    experiments = table[["biosample", "assay", "accession", "url"]].reset_index(drop=True)
    relative = ~experiments["url"].str.contains("://", regex=False)
    experiments.loc[relative, "url"] = PORTAL_URL + experiments.loc[relative, "url"]
    return EncodeLayout(name=name or path.name, biosamples=biosamples, assays=assays,
                        experiments=experiments, path=path)


def encode2018_layout(table: str = "core", progress: bool = False) -> EncodeLayout:
    """The layout of the ENCODE 2018 core (or sparse) compendium, fetched and parsed.

    Parameters
    ----------
    table: {"core", "sparse"}, optional
        ``ENCODE2018Core.tsv`` (400 biosamples x 84 assays, 3,814 experiments) or
        ``ENCODE2018Sparse.tsv`` (694 x 1,311, 3,055). Default is "core".
    progress: bool, optional
        Show a download progress bar. Default is False.

    Returns
    -------
    EncodeLayout
    """
    if table not in LAYOUT_FILES:
        raise AvocadoValueError(f"unknown ENCODE 2018 table {table!r}; expected one of "
                                f"{sorted(LAYOUT_FILES)}")
    key = LAYOUT_FILES[table]
    return read_layout(fetch(key, progress=progress),
                       name=f"ENCODE 2018 {table} ({key.rsplit('/', 1)[-1]})")
