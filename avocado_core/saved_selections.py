"""Saved selections of a workspace: a short id standing for a set of points of any size.

A lasso on 100,000 genome positions can select tens of thousands of them, too many for a URL.
:func:`save_selection` writes the selection once under ``selections/<id>.json`` in the
workspace, with an id derived from its content (the same selection gets the same id), and
a URL carries only the id. :func:`selection_intervals` turns a selection of genome positions
into genome intervals (for the locus page and for BED files).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import _io
from .errors import AvocadoKeyError, AvocadoValueError, shorten
from .regions import RegionSet

__all__ = ["AXES", "load_selection", "save_selection", "selection_bed", "selection_intervals"]

SELECTIONS_DIR = "selections"
AXES = ("biosamples", "assays", "genome")
_ID = re.compile(r"[0-9a-f]{12}")


def save_selection(workspace_path: str | Path, axis: str, ids: Sequence,
                   n_bins: Sequence[int] | None = None) -> str:
    """Save a selection and return its id (12 hex digits).

    Parameters
    ----------
    workspace_path: path-like
        The workspace folder (the selection goes to ``selections/<id>.json``).
    axis: {"biosamples", "assays", "genome"}
    ids: sequence
        Names (biosamples, assays) or bin indices (genome positions).
    n_bins: sequence of int or None
        For genome positions: how many bins each selected point spans (1 for 25 bp points,
        10 / 200 for the coarser factor tables). Default: 1 each.

    Returns
    -------
    str
    """
    if axis not in AXES:
        raise AvocadoValueError(f"unknown selection axis {axis!r}; expected one of {list(AXES)}")
    if axis == "genome":
        ids = [int(i) for i in ids]
        spans = [1] * len(ids) if n_bins is None else [int(n) for n in n_bins]
        if len(spans) != len(ids):
            raise AvocadoValueError(f"{len(spans)} n_bins for {len(ids)} positions")
        data = {"axis": axis, "ids": ids, "n_bins": spans}
    else:
        data = {"axis": axis, "ids": [str(i) for i in ids]}
    text = json.dumps(data, separators=(",", ":"))
    sel_id = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = Path(workspace_path) / SELECTIONS_DIR / f"{sel_id}.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        _io.write_text(path, text)
    return sel_id


def load_selection(workspace_path: str | Path, sel_id: str, axis: str | None = None,
                   n_positions: int | None = None) -> dict:
    """A saved selection: ``{"axis": ..., "ids": [...]}`` (and ``"n_bins"`` for genome ones).

    The file is checked as it is read: a damaged or hand-edited file (not UTF-8, not JSON,
    not an object, an unknown axis, positions that are not whole numbers, ``n_bins`` of
    another length, ...) is refused with a one-line message naming the selection and what is
    wrong, never passed on to fail later.

    Parameters
    ----------
    workspace_path: path-like
        The workspace folder.
    sel_id: str
        The selection's id (12 hex digits).
    axis: str or None
        The axis the caller needs (e.g. ``"genome"``); another one is refused. Default is
        None: any.
    n_positions: int or None
        For genome selections: the number of positions of the store, which every selected
        point must lie within. Default is None: not checked.

    Returns
    -------
    dict
        For genome selections ``n_bins`` is there (1 each when the file has none).

    Raises
    ------
    AvocadoValueError
        A malformed id or file, or a selection of another axis.
    AvocadoKeyError
        No such selection in the workspace.
    """
    sel_id = str(sel_id or "")
    if not _ID.fullmatch(sel_id):
        raise AvocadoValueError(f"{shorten(sel_id)} is not a selection id (12 hex digits "
                                "expected)")
    path = Path(workspace_path) / SELECTIONS_DIR / f"{sel_id}.json"
    if not path.is_file():
        raise AvocadoKeyError(f"no saved selection {sel_id!r} in this workspace")
    damaged = f"saved selection {sel_id} ({SELECTIONS_DIR}/{sel_id}.json) is damaged"
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AvocadoValueError(f"{damaged}: not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                                f"at offset {exc.start:,})") from None
    except json.JSONDecodeError as exc:
        raise AvocadoValueError(f"{damaged}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                                f"column {exc.colno})") from None
    problem = _selection_problem(data, n_positions)
    if problem:
        raise AvocadoValueError(f"{damaged}: {problem}")
    if data["axis"] == "genome" and "n_bins" not in data:
        data["n_bins"] = [1] * len(data["ids"])
    if axis is not None and data["axis"] != axis:
        raise AvocadoValueError(f"selection {sel_id} is of {data['axis']}, not of "
                                f"{'genome positions' if axis == 'genome' else axis}")
    return data


def _selection_problem(data: object, n_positions: int | None) -> str | None:
    """What is wrong with the content of a saved selection file (None: nothing)."""
    if not isinstance(data, dict):
        return (f"it holds a JSON {type(data).__name__}, expected an object with 'axis' and "
                "'ids'")
    if data.get("axis") not in AXES:
        return f"its axis is {shorten(data.get('axis'))}, expected one of {list(AXES)}"
    ids = data.get("ids")
    if not isinstance(ids, list):
        what = "missing" if ids is None else f"a JSON {type(ids).__name__}"
        return f"its 'ids' is {what}, expected a list"
    if data["axis"] != "genome":
        if not all(isinstance(i, str) for i in ids):
            return f"its {data['axis']} are not all names (strings)"
        return None
    bins = np.asarray(ids)
    if bins.size and bins.dtype.kind not in "iu":
        return "its positions are not all whole numbers"
    if bins.size and (bins.min() < 0 or (n_positions is not None and bins.max() >= n_positions)):
        bad = bins.min() if bins.min() < 0 else bins.max()
        return (f"position {int(bad):,} is outside the store's {n_positions:,} positions"
                if bad >= 0 else f"position {int(bad):,} is negative")
    if "n_bins" not in data:
        return None
    spans = data["n_bins"]
    if not isinstance(spans, list) or len(spans) != len(ids):
        count = f"{len(spans):,} values" if isinstance(spans, list) else type(spans).__name__
        return f"'n_bins' has {count} for {len(ids):,} positions"
    spans = np.asarray(spans)
    if spans.size and (spans.dtype.kind not in "iu" or spans.min() < 1):
        return "'n_bins' are not all whole numbers of at least 1"
    return None


def selection_intervals(regions: RegionSet, bins: Sequence[int],
                        n_bins: Sequence[int] | None = None) -> pd.DataFrame:
    """The genome intervals of selected positions, sorted, overlapping ones merged.

    Parameters
    ----------
    regions: RegionSet
    bins: sequence of int
        First bin of each selected point.
    n_bins: sequence of int or None
        Bins each point spans (default 1).

    Returns
    -------
    pd.DataFrame
        chrom, start, end, first_bin, n_points (points merged into the interval).
    """
    bins = np.asarray(bins, dtype=np.int64)
    spans = np.ones_like(bins) if n_bins is None else np.asarray(n_bins, dtype=np.int64)
    if bins.size == 0:
        return pd.DataFrame({"chrom": [], "start": [], "end": [], "first_bin": [],
                             "n_points": []})
    order = np.argsort(bins, kind="stable")
    lo, hi = bins[order], bins[order] + spans[order]
    # A new interval where a point starts past every earlier point's end, or in another
    # region of the set (bins of two regions are never merged).
    reach = np.maximum.accumulate(hi)
    region = np.searchsorted(regions.intervals["offset"].to_numpy(), lo, side="right")
    new = np.ones(lo.size, dtype=bool)
    new[1:] = (lo[1:] > reach[:-1]) | (region[1:] != region[:-1])
    group = np.cumsum(new) - 1
    first = lo[new]
    last = np.maximum.reduceat(hi, np.flatnonzero(new)) - 1
    chrom, start = regions.bin_coordinates(first)
    _, last_start = regions.bin_coordinates(last)
    return pd.DataFrame({"chrom": chrom, "start": start.astype(np.int64),
                         "end": last_start.astype(np.int64) + regions.bin_size,
                         "first_bin": first, "n_points": np.bincount(group)})


def selection_bed(intervals: pd.DataFrame, name: str = "selected") -> str:
    """Intervals as BED text: chrom, start, end, name (``name_1``, ...), points merged."""
    names = [f"{name}_{i + 1}" for i in range(len(intervals))]
    table = pd.DataFrame({"chrom": intervals["chrom"], "start": intervals["start"],
                          "end": intervals["end"], "name": names,
                          "score": intervals["n_points"]})
    return table.to_csv(sep="\t", header=False, index=False)
