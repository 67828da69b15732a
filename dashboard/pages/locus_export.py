"""The locus page's downloads: the window's values as CSV, as one multi-track bedGraph, or as a
zip of one bedGraph per series, in the stored units (arcsinh(-log10 p)) or in -log10 p.

Pure builders: tracks in, text or bytes out. Every export starts from one table
(:func:`export_table`: :func:`~dashboard.figures.tracks.tracks_table` in the units asked for),
and both bedGraph exports write each series with :func:`bedgraph_series`.
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pandas as pd

from avocado_core.bigwig import TRANSFORMS
from avocado_core.errors import shorten

from ..figures.tracks import Track, tracks_table

__all__ = ["EXPORT_UNITS", "UNIT_LABELS", "check_units", "in_units", "export_table", "csv_text",
           "bedgraph_header", "bedgraph_series", "bedgraph_text", "bedgraph_zip", "file_name"]

#: Units of the exports -> how the files name them. The store holds arcsinh(-log10 p); the
#: -log10 p signal is its inverse, sinh.
EXPORT_UNITS = {"arcsinh": "arcsinh(-log10 p)", "log10p": "-log10 p"}
#: The page's labels of the units.
UNIT_LABELS = {"arcsinh": "arcsinh", "log10p": "−log₁₀ p"}
#: Four significant digits: the plot's precision, and files a tenth the size of full floats.
FLOAT_FORMAT = "%.4g"
_COORDS = ["chrom", "start", "end"]


def check_units(units: str) -> None:
    """Refuse units that are no key of :data:`EXPORT_UNITS`, naming them."""
    if units not in EXPORT_UNITS:
        raise ValueError(f"unknown units {shorten(units)}; expected one of {list(EXPORT_UNITS)}")


def in_units(values: np.ndarray, units: str) -> np.ndarray:
    """Stored values (arcsinh(-log10 p)) in ``units``, a key of :data:`EXPORT_UNITS`."""
    check_units(units)
    values = np.asarray(values, np.float64)
    return TRANSFORMS["arcsinh"][1](values) if units == "log10p" else values


def export_table(chrom: str, start: int, bin_size: int, tracks: list[Track],
                 units: str = "arcsinh") -> pd.DataFrame:
    """The window's values (:func:`~dashboard.figures.tracks.tracks_table`) in ``units``.

    Parameters
    ----------
    chrom, start, bin_size:
        The window's chromosome, first base and bin size (bp).
    tracks: list of Track
    units: str, optional
        A key of :data:`EXPORT_UNITS`: ``"arcsinh"`` (the stored values) or ``"log10p"`` (their
        sinh, the -log10 p-value signal). Default is ``"arcsinh"``.

    Returns
    -------
    pandas.DataFrame
        chrom, start, end, then one column per series (``"{biosample}.{assay}.{kind}"``).
    """
    check_units(units)
    table = tracks_table(chrom, start, bin_size, tracks)
    series = list(table.columns[len(_COORDS):])
    if units == "log10p" and series:
        table[series] = in_units(table[series].to_numpy(), units)
    return table


def csv_text(chrom: str, start: int, bin_size: int, tracks: list[Track],
             units: str = "arcsinh") -> str:
    """The window as CSV: a header row and one row per bin, in ``units`` (which the page's
    download names in the file name: a plain header that any CSV reader takes)."""
    table = export_table(chrom, start, bin_size, tracks, units)
    return table.to_csv(index=False, float_format=FLOAT_FORMAT)


def bedgraph_header(column: str, units: str, note: str = "") -> str:
    """The ``track`` line of a bedGraph of series ``column`` (``"{biosample}.{assay}.{kind}"``):
    its name, and a description with its units and ``note`` (e.g. where it comes from)."""
    b, a, kind = column.rsplit(".", 2)
    return (f'track type=bedGraph name="{b} {a} {kind}" description="Avocado {kind} signal '
            f'of {a} in {b}{note}, {EXPORT_UNITS[units]}"\n')


def bedgraph_series(table: pd.DataFrame, column: str, units: str, header: bool = True) -> str:
    """One series of an :func:`export_table` as a bedGraph: a ``track`` line naming the series
    and its units (:func:`bedgraph_header`; ``header=False``: none, for the next rows of a
    file written in parts), then one line per bin."""
    out = io.StringIO()
    if header:
        out.write(bedgraph_header(column, units))
    table[[*_COORDS, column]].to_csv(out, sep="\t", header=False, index=False,
                                     float_format=FLOAT_FORMAT)
    return out.getvalue()


def bedgraph_text(chrom: str, start: int, bin_size: int, tracks: list[Track],
                  units: str = "arcsinh") -> str:
    """The window's values as one multi-track bedGraph (one ``track`` line per series)."""
    table = export_table(chrom, start, bin_size, tracks, units)
    return "".join(bedgraph_series(table, c, units) for c in table.columns[len(_COORDS):])


def file_name(text: str) -> str:
    """``text`` as a file name: characters other than letters, digits, ``.``, ``_`` and ``-``
    become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def bedgraph_zip(chrom: str, start: int, bin_size: int, tracks: list[Track],
                 units: str = "arcsinh") -> bytes:
    """A zip of one bedGraph per series, named
    ``{biosample}.{assay}.{kind}.{chrom}_{start}_{end}.bedGraph`` (:func:`file_name`). The same
    bytes for the same values: the entries carry no time stamp."""
    table = export_table(chrom, start, bin_size, tracks, units)
    window = f"{chrom}_{start}_{start + len(table) * bin_size}"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for column in table.columns[len(_COORDS):]:
            name = file_name(f"{column}.{window}") + ".bedGraph"
            info = zipfile.ZipInfo(name)  # dated 1980-01-01: reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, bedgraph_series(table, column, units))
    return out.getvalue()
