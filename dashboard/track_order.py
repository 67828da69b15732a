"""The order of the locus page's tracks: grouped for drawing, or moved one track at a time.

Pure logic, lists of experiments in and lists out. The page keeps the chosen order in its
address (``tracks=``); :func:`arrange` draws it as chosen or grouped, and :func:`move_track` is
what the track list's buttons do (as igv.js's drag of a track or UCSC's "move to top").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from avocado_core.errors import shorten

__all__ = ["TRACK_ORDERS", "MOVES", "arrange", "move_track"]

#: How the page orders the chosen tracks.
TRACK_ORDERS = {"chosen": "as chosen", "assay": "by assay", "biosample": "by biosample"}
#: A track list's moves: the button's symbol and what it does ({} is the track).
MOVES = {"top": ("⤒", "move {} to the top"), "up": ("↑", "move {} up one row"),
         "down": ("↓", "move {} down one row")}

T = TypeVar("T")


def arrange(experiments: list[tuple[str, str]], order: str) -> list[tuple[str, str]]:
    """The tracks in drawing order: as chosen, or grouped by assay / by biosample (groups in
    the order they were first chosen, tracks inside a group as chosen)."""
    if order not in TRACK_ORDERS:
        raise ValueError(f"unknown track order {shorten(order)}; expected one of "
                         f"{list(TRACK_ORDERS)}")
    if order == "chosen":
        return list(experiments)
    key = 1 if order == "assay" else 0
    first = {}
    for e in experiments:
        first.setdefault(e[key], len(first))
    return sorted(experiments, key=lambda e: first[e[key]])


def move_track(tracks: Sequence[T], index: int, where: str) -> list[T]:
    """The tracks with the one at ``index`` moved; the others keep their order.

    Parameters
    ----------
    tracks: sequence
        The tracks, top to bottom (any items: experiments, their ``"B|A"`` names).
    index: int
        Which track moves (0 is the top one).
    where: str
        ``"top"``, ``"up"`` (one row) or ``"down"`` (one row); a move past an end leaves the
        order as it is (the top track "up").

    Returns
    -------
    list
        A new list; ``tracks`` is not changed.
    """
    if where not in MOVES:
        raise ValueError(f"unknown move {shorten(where)}; expected one of {list(MOVES)}")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ValueError(f"a track's index must be an integer, got {shorten(index)}")
    if not 0 <= index < len(tracks):
        raise ValueError(f"no track at index {index}: there are {len(tracks)} tracks"
                         + (f" (0 to {len(tracks) - 1})" if tracks else ""))
    out = list(tracks)
    target = {"top": 0, "up": max(index - 1, 0), "down": min(index + 1, len(out) - 1)}[where]
    out.insert(target, out.pop(index))
    return out
