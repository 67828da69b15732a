"""Saved selections: short ids for selections of any size, their intervals and BED text."""

from __future__ import annotations

import pandas as pd
import pytest

from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.regions import RegionSet
from avocado_core.saved_selections import (
    load_selection,
    save_selection,
    selection_bed,
    selection_intervals,
)


def _regions() -> RegionSet:
    return RegionSet(pd.DataFrame({"chrom": ["chr1", "chr2"], "start": [1_000, 0],
                                   "end": [3_500, 2_500]}), bin_size=25)


def test_save_and_load_round_trip_with_a_content_id(tmp_path):
    bins = list(range(0, 60_000, 3))  # 20,000 positions: far too many for a URL
    spans = [10] * len(bins)
    sel_id = save_selection(tmp_path, "genome", bins, spans)
    assert len(sel_id) == 12 and save_selection(tmp_path, "genome", bins, spans) == sel_id
    loaded = load_selection(tmp_path, sel_id)
    assert loaded == {"axis": "genome", "ids": bins, "n_bins": [10] * len(bins)}
    other = save_selection(tmp_path, "biosamples", ["E003", "E017"])
    assert other != sel_id and load_selection(tmp_path, other)["ids"] == ["E003", "E017"]
    with pytest.raises(AvocadoValueError, match="not a selection id"):
        load_selection(tmp_path, "../../etc/passwd")
    with pytest.raises(AvocadoKeyError, match="no saved selection"):
        load_selection(tmp_path, "0" * 12)
    with pytest.raises(AvocadoValueError, match="unknown selection axis"):
        save_selection(tmp_path, "cells", ["a"])


def test_intervals_merge_overlaps_but_never_across_regions():
    regions = _regions()  # chr1 bins 0-99, chr2 bins 100-199
    # bins 2 and 3 touch-merge with the 10-bin point at 0; 98-99 and 100 are in two regions
    out = selection_intervals(regions, [3, 0, 2, 50, 98, 99, 100], [1, 10, 1, 1, 1, 1, 1])
    assert out[["chrom", "start", "end", "n_points"]].values.tolist() == [
        ["chr1", 1_000, 1_250, 3], ["chr1", 2_250, 2_275, 1], ["chr1", 3_450, 3_500, 2],
        ["chr2", 0, 25, 1]]
    bed = selection_bed(out).splitlines()
    assert bed[0] == "chr1\t1000\t1250\tselected_1\t3" and len(bed) == 4
    assert selection_intervals(regions, []).empty


def _damaged(tmp_path, content: bytes) -> str:
    """A selection file replaced by ``content`` (what a crash, a disk or a hand edit leaves)."""
    sel_id = save_selection(tmp_path, "genome", [5, 9], [1, 10])
    (tmp_path / "selections" / f"{sel_id}.json").write_bytes(content)
    return sel_id


@pytest.mark.parametrize("content, problem", [
    (b"[1, 2, 3]", "it holds a JSON list, expected an object with 'axis' and 'ids'"),
    (b'{"axis": "genome", "ids": [1, 2, 3], "n_bins": [1, 1]}',
     "'n_bins' has 2 values for 3 positions"),
    (b'{"axis": "genome", "ids": [1, 2', "not valid JSON (Expecting ',' delimiter at line 1"),
    (b"\xff\xfe\x00garbage", "not UTF-8 text (byte 0xff at offset 0)"),
    (b'{"axis": "cells", "ids": []}', "its axis is 'cells', expected one of"),
    (b'{"axis": "genome"}', "its 'ids' is missing, expected a list"),
    (b'{"axis": "genome", "ids": {"a": 1}}', "its 'ids' is a JSON dict, expected a list"),
    (b'{"axis": "genome", "ids": [1, "x"]}', "its positions are not all whole numbers"),
    (b'{"axis": "genome", "ids": [1.5]}', "its positions are not all whole numbers"),
    (b'{"axis": "genome", "ids": [-4]}', "position -4 is negative"),
    (b'{"axis": "genome", "ids": [1, 200]}', "position 200 is outside the store's 200 positions"),
    (b'{"axis": "genome", "ids": [1], "n_bins": [0]}', "'n_bins' are not all whole numbers"),
    (b'{"axis": "biosamples", "ids": ["E003", 7]}', "its biosamples are not all names"),
])
def test_damaged_selections_are_refused_naming_the_selection(tmp_path, content, problem):
    sel_id = _damaged(tmp_path, content)
    with pytest.raises(AvocadoValueError) as info:
        load_selection(tmp_path, sel_id, n_positions=200)
    message = str(info.value)
    assert message.startswith(f"saved selection {sel_id} (selections/{sel_id}.json) is damaged: ")
    assert problem in message and "\n" not in message


def test_a_selection_of_another_axis_is_refused_and_old_files_get_spans(tmp_path):
    sel_id = save_selection(tmp_path, "biosamples", ["E003", "E017"])
    with pytest.raises(AvocadoValueError, match=f"selection {sel_id} is of biosamples, not of "
                                                "genome positions"):
        load_selection(tmp_path, sel_id, axis="genome")
    assert load_selection(tmp_path, sel_id, axis="biosamples")["ids"] == ["E003", "E017"]
    old = _damaged(tmp_path, b'{"axis": "genome", "ids": [4, 8]}')  # written without n_bins
    assert load_selection(tmp_path, old) == {"axis": "genome", "ids": [4, 8], "n_bins": [1, 1]}
