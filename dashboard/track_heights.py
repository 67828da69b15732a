"""The heights of the locus page's track rows: one for the page, and a track's own.

Pure logic, names in and out. The page's height (the address's ``height=``) draws every track
but those given their own (``heights=B|A:tall,...``), as igv.js and UCSC let one track be made
taller or collapsed to a thin strip without changing the others. A track's own height is kept
by its experiment, so that it follows the track when the order changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from avocado_core.errors import shorten

from .figures.tracks import ROW_GAP

__all__ = ["ROW_UNIT", "TRACK_UNITS", "TRACK_HEIGHTS", "PAGE_HEIGHTS", "next_height",
           "cycle_height", "parse_heights", "format_heights", "row_heights"]

#: Every row's pitch (its height and the gap under it, px) is a whole number of these: the
#: hover's cells of a figure of mixed heights are this high (see ``locus_figure``), so a row
#: has at most six (a page of equal rows, one each).
ROW_UNIT = 21
#: The heights a track can have, in units of :data:`ROW_UNIT`, in the order a click cycles.
TRACK_UNITS = {"collapsed": 1, "compact": 2, "normal": 4, "tall": 6}
#: The heights in pixels: a 15 px strip, 36, 78 and 120 px (compact rows keep 40 tracks on
#: two screens).
TRACK_HEIGHTS = {name: k * ROW_UNIT - ROW_GAP for name, k in TRACK_UNITS.items()}
#: The heights the page offers for all its tracks (a strip is a track's own choice).
PAGE_HEIGHTS = ("compact", "normal", "tall")


def _check(height: str) -> None:
    if height not in TRACK_HEIGHTS:
        raise ValueError(f"unknown track height {shorten(height)}; expected one of "
                         f"{list(TRACK_HEIGHTS)}")


def next_height(height: str) -> str:
    """The height after ``height`` in the cycle collapsed → compact → normal → tall →
    collapsed."""
    _check(height)
    names = list(TRACK_HEIGHTS)
    return names[(names.index(height) + 1) % len(names)]


def cycle_height(own: dict[str, str], track: str, page: str) -> dict[str, str]:
    """The tracks' own heights after a click on ``track``'s height button: its height (its
    own, else the page's) moves on one step of :func:`next_height`; one that comes back to
    the page's is no longer its own. ``own`` is not changed."""
    _check(page)
    out = dict(own)
    height = next_height(out.pop(track, page))
    if height != page:
        out[track] = height
    return out


def parse_heights(items: Iterable[str], tracks: Iterable[str]) -> dict[str, str]:
    """``["E003|H3K4me3:tall", ...]`` (the address's ``heights=`` list) -> the own heights of
    the ``tracks`` (``"B|A"``); other tracks, unknown heights and damaged items are dropped."""
    known = set(tracks)
    out = {}
    for item in items:
        track, _, height = item.rpartition(":")
        if track in known and height in TRACK_HEIGHTS:
            out[track] = height
    return out


def format_heights(own: dict[str, str] | None, tracks: Iterable[str]) -> list[str]:
    """The own heights of ``tracks`` (``"B|A"``, in their order) as the address writes them."""
    own = own or {}
    return [f"{t}:{own[t]}" for t in tracks if t in own]


def row_heights(tracks: Iterable[str], page: str, own: dict[str, str] | None = None
                ) -> list[int]:
    """Each track's row height in pixels: its own, else the page's."""
    _check(page)
    own = own or {}
    return [TRACK_HEIGHTS[own.get(t, page)] for t in tracks]
