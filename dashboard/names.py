"""What the app calls biosamples and assays: ids with their names beside them.

A compendium names its biosamples by ids (``E003``, ``J000``) that say nothing to a reader; its
metadata carry the names (``H1 Cells``, ``K562 nuclear fraction``). Every page shows both, from
these helpers (pure: metadata in, labels out).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

__all__ = ["NAME_COLUMNS", "SEPARATOR", "name_column", "names_of", "labels_of", "with_names",
           "short_assay_labels", "preferred_column"]

#: Metadata columns that name a biosample, the first present wins: the ENCODE layout's summary
#: (unique, e.g. ``K562 nuclear fraction``), the Roadmap's description (``H1 Cells``), ENCODE's
#: term name.
NAME_COLUMNS = ("summary", "description", "term")
#: Between an id and its name, and between a biosample and an assay.
SEPARATOR = " · "


def name_column(meta: pd.DataFrame | None) -> str | None:
    """The metadata column that names the ids (the first of :data:`NAME_COLUMNS` present), or
    None."""
    return next((c for c in NAME_COLUMNS if meta is not None and c in meta.columns), None)


def names_of(meta: pd.DataFrame | None, ids: Iterable[str]) -> pd.Series:
    """The name of each id (``""`` where the metadata have none), indexed by id."""
    ids = pd.Index([str(i) for i in ids])
    column = name_column(meta)
    if column is None:
        return pd.Series("", index=ids, dtype=object)
    names = meta[column].reindex(ids)
    return names.where(names.notna(), "").astype(str).str.strip()


def _names_beside(meta: pd.DataFrame | None, ids: Iterable[str]) -> pd.Series:
    """:func:`names_of`, ``""`` also where the name is the id (nothing to add beside it)."""
    names = names_of(meta, ids)
    return names.where(names != names.index.to_series(), "")


def labels_of(meta: pd.DataFrame | None, ids: Iterable[str]) -> pd.Series:
    """``"J123 · K562 nuclear fraction"`` for each id (the id alone where it has no name, or
    where the name is the id), indexed by id; unique because the ids are."""
    names = _names_beside(meta, ids)
    ids = names.index.to_series()
    return ids.where(names == "", ids + SEPARATOR + names)


def with_names(table: pd.DataFrame, meta: pd.DataFrame | None, id_column: str = "biosample",
               column: str = "name") -> pd.DataFrame:
    """``table`` with a ``column`` of names right after its ``id_column`` (for a table's
    "id | name" columns, as :func:`labels_of` for one label).

    Parameters
    ----------
    table: pd.DataFrame
        Has the ids in ``id_column``.
    meta: pd.DataFrame or None
        Metadata indexed by id (see :data:`NAME_COLUMNS`).
    id_column, column: str
        Where the ids are, and the name of the new column (replacing one of that name).
        Default is ``"biosample"``, ``"name"``.

    Returns
    -------
    pd.DataFrame
        A copy with the names (``""`` where an id has none, or where its name is the id); the
        table as it is where no id has a name (no empty column).
    """
    names = _names_beside(meta, table[id_column])
    if not (names != "").any():
        return table
    out = table.drop(columns=[column], errors="ignore")
    out.insert(out.columns.get_loc(id_column) + 1, column, names.to_numpy())
    out.attrs.update(table.attrs)
    return out


def short_assay_labels(meta: pd.DataFrame | None, ids: Iterable[str]) -> pd.Series:
    """A short label per assay for narrow places (the picker's columns): the ChIP-seq target
    (``H3K4me3`` for ``ChIP-seq_H3K4me3_signal_p-value``), else the technique with its strand
    (``polyA_RNA-seq +``); the name itself without those metadata (``H3K4me3``)."""
    ids = pd.Index([str(i) for i in ids])
    if meta is None or not {"technique", "target"} <= set(meta.columns):
        return pd.Series(ids, index=ids)
    rows = meta.reindex(ids)
    target = rows["target"].fillna("").astype(str)
    technique = rows["technique"].fillna("").astype(str)
    strand = (rows["strand"].fillna("").astype(str) if "strand" in rows.columns
              else pd.Series("", index=ids))
    strand = strand.map({"plus": " +", "minus": " −"}).fillna("")
    label = target.where(target != "", technique + strand)
    return label.where(label != "", ids.to_series())


def preferred_column(meta: pd.DataFrame | None, preferred: Iterable[str],
                     max_values: int = 40) -> str | None:
    """The first of ``preferred`` that groups the metadata's rows: 2 to ``max_values`` distinct
    values (a grouping a reader can take in), fewer than the rows (some group holds two), or
    None."""
    if meta is None:
        return None
    for column in preferred:
        if column in meta.columns:
            n = meta[column].nunique(dropna=True)
            if 2 <= n <= max_values and n < len(meta):
                return column
    return None
