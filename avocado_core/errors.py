"""Exceptions raised by avocado_core.

Every error names the offending value and what was expected, so that the CLI can print it as a
one-line message and the app can show it as an alert.
"""

from __future__ import annotations

__all__ = ["AvocadoError", "AvocadoValueError", "AvocadoKeyError"]


class AvocadoError(Exception):
    """Base class of all errors raised on purpose by avocado_core."""


class AvocadoValueError(AvocadoError, ValueError):
    """A value has the wrong shape, type, range or format."""


class AvocadoKeyError(AvocadoError, KeyError):
    """A name (biosample, assay, gene, experiment, ...) is not known."""

    def __str__(self) -> str:  # KeyError's str() is the repr of its argument
        return str(self.args[0]) if self.args else ""
