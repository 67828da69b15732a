"""Placing a new biosample among the known ones: fit its embedding row from a track of it with
the model frozen, and measure how near each known biosample's row lies.

What the design page does with an uploaded bigWig (``fit_biosamples`` on a copy of the model,
on the bins the file covers only), as a function of the library: the served model is never
changed.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .errors import AvocadoKeyError, AvocadoValueError, short_list, shorten
from .model import Avocado

__all__ = ["place_biosample"]


def place_biosample(model: Avocado, values: np.ndarray, name: str, assay: str, *,
                    covered: np.ndarray | None = None, n_epochs: int = 3,
                    n_nearest: int = 5, seed: int = 0) -> pd.DataFrame:
    """Fit a new biosample's embedding row from one track, the model frozen (a copy of it).

    Parameters
    ----------
    model: Avocado
        The trained model; it is not changed (a copy learns the new row).
    values: numpy.ndarray, shape=(model.n_positions,)
        The new biosample's signal for ``assay``, on the model's positions.
    name: str
        The new biosample's name (not one the model knows).
    assay: str
        An assay the model knows.
    covered: numpy.ndarray of bool or None, optional
        The positions the track measured; the others are not fitted (not read as zero
        signal). Default is None: every position. Each epoch takes as many steps as a pass
        over every position, whatever the coverage.
    n_epochs, seed: int, optional
        Training of the new row. Defaults are 3 and 0.
    n_nearest: int, optional
        How many known biosamples to return. Default is 5.

    Returns
    -------
    pandas.DataFrame
        ``biosample`` and ``distance`` (Euclidean, in embedding space), nearest first; attrs:
        ``loss`` (the fit's last), ``spacing`` (the median distance of a known biosample to its
        nearest known neighbour: the unit in which a placement's margin reads), ``embedding``
        (the new biosample's fitted row, a list of floats: place it on a map with
        :func:`avocado_core.projection.place_on_map`).

    Raises
    ------
    AvocadoValueError, AvocadoKeyError
        A name the model knows or none, an unknown assay, or a track of the wrong length.
    """
    name = (name or "").strip()
    if not name:
        raise AvocadoValueError("give the new biosample a name")
    if name in set(model.biosamples):
        raise AvocadoValueError(f"a biosample named {shorten(name)} already exists; choose "
                                "another name")
    if assay not in set(model.assays):
        raise AvocadoKeyError(f"unknown assay {shorten(assay)}; the model knows "
                              f"{short_list(model.assays)}")
    copied = copy.deepcopy(model)
    partial = covered is not None and not np.all(covered)
    history = copied.fit_biosamples(
        {(name, assay): values}, n_epochs=n_epochs, seed=seed, progress=False,
        positions=covered if partial else None,
        epoch_size=math.ceil(len(values) / copied.batch_size))
    emb = np.asarray(copied.biosample_embedding())
    names = list(copied.biosamples)
    others = [i for i, n in enumerate(names) if n != name]
    dist = np.linalg.norm(emb[others] - emb[names.index(name)], axis=1)
    order = np.argsort(dist)[:n_nearest]
    out = pd.DataFrame({"biosample": [names[others[i]] for i in order],
                        "distance": dist[order].astype(np.float64)})
    loss = history.get("loss", [])
    spacing = (float(np.median(cKDTree(emb[others]).query(emb[others], k=2)[0][:, 1]))
               if len(others) > 1 else float("nan"))
    out.attrs.update(loss=float(loss[-1]) if len(loss) else None, spacing=spacing,
                     embedding=emb[names.index(name)].astype(float).tolist())
    return out
