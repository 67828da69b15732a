"""Exceptions raised by avocado_core.

Every error names the offending value and what was expected, so that the CLI can print it as a
one-line message and the app can show it as an alert.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path

__all__ = ["AvocadoError", "AvocadoValueError", "AvocadoKeyError", "AvocadoDiskFullError",
           "short_list", "shorten"]


class AvocadoError(Exception):
    """Base class of all errors raised on purpose by avocado_core."""


class AvocadoValueError(AvocadoError, ValueError):
    """A value has the wrong shape, type, range or format."""


class AvocadoKeyError(AvocadoError, KeyError):
    """A name (biosample, assay, gene, experiment, ...) is not known."""

    def __str__(self) -> str:  # KeyError's str() is the repr of its argument
        return str(self.args[0]) if self.args else ""


class AvocadoDiskFullError(AvocadoError, OSError):
    """A write ran out of disk space (``errno`` is ``ENOSPC``).

    Attributes
    ----------
    needed: int or None
        Bytes the write needed (None when not known).
    free: int
        Bytes free in the target's folder when the write failed.
    path: pathlib.Path
        The file (or folder) being written.
    """

    def __init__(self, message: str, *, needed: int | None, free: int, path: Path) -> None:
        super().__init__(message)
        self.errno = errno.ENOSPC
        self.needed = needed
        self.free = free
        self.path = Path(path)

    def __str__(self) -> str:  # OSError's str() would prefix "[Errno 28]"
        return str(self.args[0]) if self.args else ""


def short_list(items: Iterable[object], limit: int = 12) -> str:
    """The first ``limit`` items, comma-separated, and how many there are in all if more.

    For error messages that name what is available: ``"a, b, c, ... (40 in all)"``.
    """
    items = list(items)
    text = ", ".join(map(str, items[:limit]))
    return text + (f", ... ({len(items)} in all)" if len(items) > limit else "")


#: Characters of a user's value that a message echoes (about half a line).
SHOWN_CHARS = 60


def shorten(value: object, limit: int = SHOWN_CHARS, quote: bool = True) -> str:
    """A value as an error message echoes it: its ``repr`` (or, with ``quote=False``, its
    text), cut to ``limit`` characters with its full length when longer.

    What a user typed or sent can be of any length (a 1 MB locus, a file name, a URL
    parameter); a message shows enough of it to recognise it:
    ``'chr1:99999999999999999999999999999999…' (1,000,069 characters)``.
    """
    text = repr(value) if quote else str(value)
    if len(text) <= limit:
        return text
    full = len(value) if isinstance(value, str) else len(text)
    closing = text[0] if quote and isinstance(value, str) else ""  # repr's own quote mark
    return f"{text[:limit - 1]}…{closing} ({full:,} characters)"
