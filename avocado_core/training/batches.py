"""Which rows of the genome tables a batch touches, worked out on the host from its positions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..network import GENOME_RESOLUTIONS

__all__ = ["BatchRows", "batch_rows"]

#: Positions per 250 bp row, and 250 bp rows per 5 kbp row.
_PER_250 = GENOME_RESOLUTIONS["250bp"]
_PER_5K = GENOME_RESOLUTIONS["5kbp"] // GENOME_RESOLUTIONS["250bp"]


@dataclass
class BatchRows:
    """The rows of the three genome tables a batch touches.

    Attributes
    ----------
    rows: dict of str to (slice or numpy.ndarray)
        Per resolution, its distinct rows in increasing order: a slice when they are
        consecutive (views of the table, no gathers), else an int64 array.
    inv25, inv250: numpy.ndarray or None
        Each sample's place among the 25 bp / 250 bp rows; None for a contiguous batch, whose
        sample ``i`` is position ``p0 + i``.
    map5k: numpy.ndarray
        Each 250 bp row's place among the 5 kbp rows.
    q_row: numpy.ndarray
        Each sample's place among the 250 bp rows (also for a contiguous batch).
    p0: int
        The first position of the batch.
    """

    rows: dict[str, slice | np.ndarray]
    inv25: np.ndarray | None
    inv250: np.ndarray | None
    map5k: np.ndarray
    q_row: np.ndarray
    p0: int

    @property
    def contiguous(self) -> bool:
        """Whether the samples are consecutive positions from ``p0``."""
        return self.inv25 is None

    def n_rows(self, res: str) -> int:
        """How many rows of the ``res`` table the batch touches."""
        rows = self.rows[res]
        return rows.stop - rows.start if isinstance(rows, slice) else len(rows)

    def arrays(self) -> dict[str, np.ndarray]:
        """What the device needs of these rows: the rows that are not slices (``rows.<res>``),
        the inverse maps and ``map5k``."""
        out = {f"rows.{res}": rows for res, rows in self.rows.items()
               if not isinstance(rows, slice)}
        out.update({name: value for name, value in (("inv25", self.inv25),
                                                    ("inv250", self.inv250),
                                                    ("map5k", self.map5k)) if value is not None})
        return out


def _unique(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, inverse = np.unique(index, return_inverse=True)
    return rows, inverse.reshape(-1).astype(np.int64, copy=False)


def batch_rows(positions: np.ndarray, sequential: bool) -> BatchRows:
    """The genome-table rows of a batch of ``positions``.

    A sequential batch that does not wrap is one contiguous run of positions: its rows are
    slices and its 250 bp rows cover consecutive blocks of 10 samples. Other batches (and a
    permuted batch, which can repeat positions where it spans two passes) get their distinct
    rows and inverse maps.

    Parameters
    ----------
    positions: numpy.ndarray of int64
        The batch's positions.
    sequential: bool
        Whether the sampler is sequential (only then may the batch be contiguous).

    Returns
    -------
    BatchRows
    """
    n = len(positions)
    p0 = int(positions[0])
    r250 = positions // _PER_250
    if sequential and int(positions[-1]) - p0 == n - 1:
        first250 = int(r250[0])
        rows25: slice | np.ndarray = slice(p0, p0 + n)
        rows250: slice | np.ndarray = slice(first250, int(r250[-1]) + 1)
        inv25 = inv250 = None
        ids250 = np.arange(first250, int(r250[-1]) + 1)
        q_row = r250 - first250
    else:
        rows25, inv25 = _unique(positions)
        rows250, inv250 = _unique(r250)
        ids250 = rows250
        q_row = inv250
    r5k = ids250 // _PER_5K
    first5k, last5k = int(r5k.min()), int(r5k.max())
    if inv25 is None or last5k - first5k + 1 == len(np.unique(r5k)):
        rows5k: slice | np.ndarray = slice(first5k, last5k + 1)
        map5k = r5k - first5k
    else:
        rows5k = np.unique(r5k)
        map5k = np.searchsorted(rows5k, r5k)
    return BatchRows({"25bp": rows25, "250bp": rows250, "5kbp": rows5k}, inv25, inv250,
                     map5k.astype(np.int64, copy=False), q_row, p0)
