"""The track picker's query: which cells of the biosample x assay tensor to show, in what order
and in what groups, with the counts of each filter's values.

At ENCODE's size (400 biosamples x 84 assays, 33,600 cells) a grid of every cell is too large
to read; like the ENCODE portal's matrix (facets beside a biosample x assay table) and
cellxgene's category filters, a reader narrows it: search words, a row facet (biosample type),
a column facet (assay kind), the cells' status, or a given list of biosamples (a lasso on the
biosample map). Pure: tables in, a :class:`PickerView` out; nothing here touches Dash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["STATUSES", "ROW_ORDERS", "PickerQuery", "PickerView", "query_view", "app_status"]

#: A cell's status, in the order the filters list them.
STATUSES = ("observed", "held out", "imputed", "missing")
#: How rows can be ordered (inside their group when grouped).
ROW_ORDERS = {"name": "id", "experiments": "most experiments first",
              "embedding": "embedding order (PC1)"}


def app_status(status: pd.DataFrame, has_model: bool) -> pd.DataFrame:
    """The status as the app shows it: with a model, a cell that has no stored imputation is
    imputed when shown (the model predicts any biosample x assay it knows on the fly), so it
    is "imputed", not "missing". One block of Python strings (a column of pandas' own string
    type each would cost a conversion per column at every query)."""
    values = status.to_numpy(dtype=object)
    if has_model:
        values = np.where(values == "missing", "imputed", values).astype(object)
    return pd.DataFrame(values, index=status.index, columns=status.columns, dtype=object)


@dataclass(frozen=True)
class PickerQuery:
    """What a reader asked the picker for.

    ``biosample_text`` / ``assay_text``: words that must all occur (case-insensitive) in a
    biosample's id or metadata / an assay's name or metadata. ``biosamples``: only these (empty:
    all). ``row_values`` / ``col_values``: values of the row / column facet to keep (empty: all).
    ``statuses``: cell statuses to show (empty: all). ``group_rows`` / ``group_cols``: group by
    the facet. ``row_order``: a key of :data:`ROW_ORDERS`.
    """

    biosample_text: str = ""
    assay_text: str = ""
    biosamples: tuple[str, ...] = ()
    row_values: tuple[str, ...] = ()
    col_values: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    group_rows: bool = True
    group_cols: bool = True
    row_order: str = "name"


@dataclass
class PickerView:
    """The cells to draw.

    ``status``: the shown biosamples x assays, in drawing order; a cell that the query hides
    holds ``""``. ``row_groups`` / ``col_groups``: each shown row's / column's group (None when
    not grouped). ``n_cells`` of ``n_total`` cells shown, in ``n_rows`` of ``n_total_rows``
    biosamples and ``n_cols`` of ``n_total_cols`` assays. ``row_counts`` / ``col_counts`` /
    ``status_counts``: for each value of a filter, how many biosamples / assays / cells it
    would show with the other filters as they are (the facets' counts).
    """

    status: pd.DataFrame
    row_groups: pd.Series | None
    col_groups: pd.Series | None
    n_cells: int
    n_total: int
    n_total_rows: int
    n_total_cols: int
    row_counts: dict = field(default_factory=dict)
    col_counts: dict = field(default_factory=dict)
    status_counts: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return self.status.shape[0]

    @property
    def n_cols(self) -> int:
        return self.status.shape[1]

    def summary(self) -> str:
        """``"1,204 of 33,600 cells shown · 120 of 400 biosamples × 30 of 84 assays"``."""
        return (f"{self.n_cells:,} of {self.n_total:,} cells shown · {self.n_rows:,} of "
                f"{self.n_total_rows:,} biosamples × {self.n_cols:,} of {self.n_total_cols:,} "
                "assays")


def _haystack(ids: pd.Index, meta: pd.DataFrame | None) -> np.ndarray:
    """One lowercase string per id: the id and its text metadata, for word search."""
    text = ids.to_series().astype(str)
    if meta is not None:
        rows = meta.reindex(ids)
        for column in rows.columns:
            if not pd.api.types.is_numeric_dtype(rows[column]):
                text = text + " " + rows[column].astype(object).where(rows[column].notna(),
                                                                      "").astype(str)
    return text.str.lower().to_numpy()


def _matches(haystack: np.ndarray, text: str) -> np.ndarray:
    """Whether every word of ``text`` occurs in each string (all True for no words)."""
    keep = np.ones(len(haystack), dtype=bool)
    strings = pd.Series(haystack)
    for word in text.lower().split():
        keep &= strings.str.contains(word, regex=False).to_numpy()
    return keep


def _facet(meta: pd.DataFrame | None, ids: pd.Index, column: str | None) -> np.ndarray:
    if meta is None or column is None or column not in meta.columns:
        return np.full(len(ids), "", dtype=object)
    values = meta[column].reindex(ids)
    return values.astype(object).where(values.notna(), "NA").astype(str).to_numpy()


def _counts(values: np.ndarray, keep: np.ndarray) -> dict:
    kept = pd.Series(values[keep])
    return {str(k): int(v) for k, v in kept.value_counts().sort_index().items()}


def query_view(status: pd.DataFrame, query: PickerQuery, *,
               biosample_meta: pd.DataFrame | None = None,
               assay_meta: pd.DataFrame | None = None,
               row_facet: str | None = None, col_facet: str | None = None,
               embedding: pd.Series | None = None) -> PickerView:
    """The cells a query shows, ordered and grouped.

    Parameters
    ----------
    status: pd.DataFrame
        Biosamples x assays of :data:`STATUSES` values.
    query: PickerQuery
    biosample_meta, assay_meta: pd.DataFrame or None
        Metadata indexed by id (searched by the text filters; the facets' columns).
    row_facet, col_facet: str or None
        The metadata columns of the row and column facets (e.g. ``type``, ``kind``).
    embedding: pd.Series or None
        A coordinate per biosample (e.g. the first principal component of its factors) for
        ``row_order="embedding"``.

    Returns
    -------
    PickerView
        Rows and columns without any shown cell are left out. Groups are in alphabetical
        order; rows inside a group by ``query.row_order``, columns in the tensor's order.
    """
    rows, cols = status.index.astype(str), status.columns.astype(str)
    values = status.to_numpy(dtype=object)
    row_facet_values = _facet(biosample_meta, rows, row_facet)
    col_facet_values = _facet(assay_meta, cols, col_facet)
    row_text = _matches(_haystack(rows, biosample_meta), query.biosample_text)
    if query.biosamples:
        row_text &= rows.isin([str(b) for b in query.biosamples])
    col_text = _matches(_haystack(cols, assay_meta), query.assay_text)
    row_value = (np.isin(row_facet_values, list(query.row_values)) if query.row_values
                 else np.ones(len(rows), dtype=bool))
    col_value = (np.isin(col_facet_values, list(query.col_values)) if query.col_values
                 else np.ones(len(cols), dtype=bool))
    cell_ok = (np.isin(values, list(query.statuses)) if query.statuses
               else np.ones(values.shape, dtype=bool))

    rows_ok, cols_ok = row_text & row_value, col_text & col_value
    shown = cell_ok & rows_ok[:, None] & cols_ok[None, :]
    # Each facet counts with the other filters as they are (not its own).
    row_counts = _counts(row_facet_values,
                         row_text & (cell_ok & cols_ok[None, :]).any(axis=1))
    col_counts = _counts(col_facet_values,
                         col_text & (cell_ok & rows_ok[:, None]).any(axis=0))
    in_range = rows_ok[:, None] & cols_ok[None, :]
    status_counts = {s: int(((values == s) & in_range).sum()) for s in STATUSES}

    row_idx = np.flatnonzero(shown.any(axis=1))
    col_idx = np.flatnonzero(shown.any(axis=0))
    row_idx = row_idx[_row_order(status, row_idx, query.row_order, embedding,
                                 row_facet_values if query.group_rows and row_facet else None)]
    if query.group_cols and col_facet:
        col_idx = col_idx[np.lexsort((col_idx, col_facet_values[col_idx]))]
    out = pd.DataFrame(np.where(shown, values, "")[np.ix_(row_idx, col_idx)],
                       index=status.index[row_idx], columns=status.columns[col_idx], dtype=object)
    return PickerView(
        status=out,
        row_groups=(pd.Series(row_facet_values[row_idx], index=out.index)
                    if query.group_rows and row_facet else None),
        col_groups=(pd.Series(col_facet_values[col_idx], index=out.columns)
                    if query.group_cols and col_facet else None),
        n_cells=int(shown.sum()), n_total=int(values.size), n_total_rows=len(rows),
        n_total_cols=len(cols), row_counts=row_counts, col_counts=col_counts,
        status_counts=status_counts,
    )


def _row_order(status: pd.DataFrame, row_idx: np.ndarray, order: str,
               embedding: pd.Series | None, groups: np.ndarray | None) -> np.ndarray:
    """Positions into ``row_idx`` in drawing order: by group, then by ``order``."""
    if order not in ROW_ORDERS:
        raise ValueError(f"unknown row order {order!r}; expected one of {list(ROW_ORDERS)}")
    if order == "experiments":
        measured = status.isin(["observed", "held out"]).to_numpy().sum(axis=1)
        key = -measured[row_idx]
    elif order == "embedding":
        if embedding is None:
            raise ValueError("no embedding order: the biosample PCA has not been computed")
        coords = embedding.reindex(status.index.astype(str)).to_numpy(dtype=float)
        key = np.nan_to_num(coords[row_idx], nan=np.inf)
    else:
        key = np.zeros(len(row_idx))
    keys: list[Sequence] = [row_idx, key]
    if groups is not None:
        keys.append(groups[row_idx])
    return np.lexsort(keys)

