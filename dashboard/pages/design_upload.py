"""A new biosample uploaded on the design page: its bytes read, fitted under the frozen model,
placed among the known biosamples and on their map, and described in words."""

from __future__ import annotations

import base64
import binascii
import os
import tempfile

import numpy as np
import pandas as pd

from avocado_core.errors import shorten
from avocado_core.workspace import Workspace

from ..components import error_message, significant
from ..names import labels_of

#: Passes over the positions when placing an uploaded biosample (frozen model).
FIT_EPOCHS = 2


def decode_upload(contents: str | None, filename: str | None, limit: int) -> bytes:
    """The bytes of a dcc.Upload ("data:...;base64,...."), size-checked."""
    if not contents:
        raise ValueError("choose a bigWig file to upload first")
    try:
        data = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error):
        raise ValueError(f"the upload {shorten(filename)} could not be read") from None
    if len(data) > limit:
        raise ValueError(f"{shorten(filename)} is {len(data) / 1e6:.1f} MB; uploads are limited to "
                         f"{limit / 1e6:.0f} MB")
    return data


def fit_uploaded_bigwig(ws: Workspace, data: bytes, filename: str | None, name: str,
                        assay: str, temp_dir: str | None = None,
                        keep: str | os.PathLike | None = None) -> pd.DataFrame:
    """:func:`fit_new_biosample` on the bytes of an uploaded bigWig (``keep``: as there).

    The bytes go to a temporary file in ``temp_dir`` (the app's temporary folder, removed
    when the server stops even if the job is killed before it removes its file). An error
    names the uploaded file, never the server's temporary path.

    Raises
    ------
    ValueError
        With the uploaded file's name in the message.
    """
    with tempfile.TemporaryDirectory(prefix="upload-", dir=temp_dir) as tmp:
        path = os.path.join(tmp, "upload.bw")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            return fit_new_biosample(ws, path, name, assay, n_epochs=FIT_EPOCHS, keep=keep)
        except (ValueError, KeyError) as exc:
            message = error_message(exc).replace(path, shorten(filename or "the upload"))
            raise ValueError(message) from None


#: The binned upload that :func:`fit_new_biosample` keeps (NaN where the file has no data).
UPLOAD_FILE = "upload.npy"


def fit_new_biosample(ws: Workspace, bigwig: str | os.PathLike, name: str, assay: str,
                      n_epochs: int = 3, n_nearest: int = 5,
                      keep: str | os.PathLike | None = None) -> pd.DataFrame:
    """Place a new biosample from one bigWig (:func:`avocado_core.placement.place_biosample`,
    on the bins the file covers only), with the known biosamples' metadata.

    ``keep``: a folder where the file's values on the workspace's bins are kept
    (:data:`UPLOAD_FILE`, NaN where the file has no data), for the page to draw beside the
    new biosample's imputations. Default is None: not kept.

    Returns
    -------
    pd.DataFrame
        biosample, distance and metadata, nearest first; attrs: ``name``, ``assay``,
        ``covered`` (fraction of the bins the file covers), ``n_covered``, ``n_bins``,
        ``signal`` (fraction of the covered bins with signal), ``loss``, ``spacing`` (the unit
        of :func:`placement_text`).
    """
    from avocado_core.bigwig import bin_bigwig
    from avocado_core.placement import place_biosample

    values, covered = bin_bigwig(bigwig, ws.store.regions, allow_missing_chroms=True,
                                 progress=False, return_covered=True)
    n_covered = int(np.count_nonzero(covered))
    if not np.any(values[covered]):
        raise ValueError(
            f"the bigWig has no signal over the workspace's regions ({ws.genome}, chromosomes "
            f"{', '.join(ws.store.regions.chroms[:4])}, ...); is it from another genome "
            "assembly or another chromosome naming?")
    # the workspace's model, loaded once (place_biosample fits a copy of it; placed_point
    # reads the known biosamples' rows from it too)
    out = place_biosample(ws.model, values, name, assay, covered=covered, n_epochs=n_epochs,
                          n_nearest=n_nearest)
    if keep is not None:
        os.makedirs(keep, exist_ok=True)
        np.save(os.path.join(keep, UPLOAD_FILE), np.where(covered, values, np.nan))
    attrs = dict(out.attrs)
    out = out.merge(ws.biosample_metadata(), left_on="biosample", right_index=True, how="left")
    out.attrs.update(attrs, name=name.strip(), assay=assay, covered=n_covered / len(values),
                     n_covered=n_covered, n_bins=len(values),
                     signal=float(np.count_nonzero(values[covered])) / n_covered)
    return out


#: How sure a placement is, from the margin between the nearest and the next known biosample
#: in units of the typical spacing of known biosamples (their nearest-neighbour distance):
#: a margin of half a spacing or more is clear, below a tenth of one a tie.
CLEAR_MARGIN, TIE_MARGIN = 0.5, 0.1


def placed_point(ws: Workspace, nearest: pd.DataFrame, projection: pd.DataFrame) -> pd.DataFrame:
    """Where a placed biosample (:func:`fit_new_biosample`) falls on the biosample map
    ``projection`` (columns name, x, y; ``attrs["method"]``), by
    :func:`avocado_core.projection.place_on_map`.

    Returns
    -------
    pd.DataFrame
        One row: name, x, y and ``note``, how it was placed (for the map's hover).
    """
    from avocado_core.projection import map_placement, place_on_map

    method = projection.attrs.get("method", "umap")
    emb = pd.DataFrame(np.asarray(ws.model.biosample_embedding()), index=ws.model.biosamples)
    known = emb.loc[projection["name"]].to_numpy()
    how = map_placement(method, len(known))
    x, y = place_on_map(np.asarray(nearest.attrs["embedding"]), known,
                        projection[["x", "y"]].to_numpy(), method=method)
    note = ("placed by its nearest biosamples" if how == "nearest"
            else "placed by the map's principal components")
    return pd.DataFrame({"name": [nearest.attrs["name"]], "x": [float(x)], "y": [float(y)],
                         "note": [note]})


def coverage_text(nearest: pd.DataFrame) -> str:
    """How much of the workspace the uploaded file covers, and what the fit made of the rest."""
    a = nearest.attrs
    if a["n_covered"] == a["n_bins"]:
        where = f"The file covers all {a['n_bins']:,} bins of the workspace"
    else:
        where = (f"The file covers {a['covered']:.0%} of the workspace's bins "
                 f"({a['n_covered']:,} of {a['n_bins']:,}); the fit used those only (the other "
                 "bins were left out, not read as zero signal)")
    return f"{where}; {a['signal']:.0%} of the covered bins have signal."


def placement_text(nearest: pd.DataFrame) -> str:
    """How sure the placement is: the margin between the nearest and the next biosample, and
    the nearest distance, in units of the typical spacing of the known biosamples."""
    spacing = nearest.attrs.get("spacing", float("nan"))
    if len(nearest) < 2 or not spacing > 0:
        return ""
    (b1, d1), (b2, d2) = nearest[["biosample", "distance"]].head(2).itertuples(index=False)
    # the nearest rows carry the known biosamples' metadata, their names among them
    b1, b2 = labels_of(nearest.set_index("biosample"), [b1, b2])
    margin = (d2 - d1) / spacing
    if margin >= CLEAR_MARGIN:
        verdict = f"{b1} is clearly the nearest"
    elif margin >= TIE_MARGIN:
        verdict = f"{b1} is the nearest, but not by much"
    else:
        verdict = f"uncertain: {b1} and {b2} are about equally near"
    text = (f"Placement: {verdict} (distance {significant(d1).item():g}, next "
            f"{significant(d2).item():g}; the margin is {significant(margin).item():g} times "
            f"the typical distance between a known biosample and its nearest neighbour, "
            f"{significant(spacing).item():g}).")
    if d1 > 2 * spacing:
        text += (f" It is {significant(d1 / spacing).item():g} times that distance from the "
                 "nearest: unlike every known biosample.")
    return text
