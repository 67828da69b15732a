"""Two-dimensional projections (UMAP or PCA) of a model's learned factors, cached per model.

Three axes can be projected: the biosample embedding (one point per biosample), the assay
embedding (one point per assay) and the genome factors (one point per position). The genome has
far too many positions to draw (1.1 million 25 bp bins in the pilot regions, 124 million
genome-wide), so :func:`model_projection` draws a *stratified* sample of them: given one class
label per bin (promoter / gene body / CpG island / other, from
``Annotations.classify_bins(regions)``), half of the sample is shared equally among the classes
and half proportionally to their sizes, so that a class of 2 % of the genome still gets
thousands of points.

UMAP on 100,000 points is the slow part (tens of seconds to minutes on two cores; see
``benchmarks/bench_projection.py``), so :class:`ProjectionCache` stores every projection as a
file keyed by the model's fingerprint and the projection's parameters; the app computes each one
once per model.

Small inputs: UMAP needs ``n_neighbors < n``. :func:`project` uses ``n_neighbors =
min(15, n - 1)``; with fewer than :data:`MIN_UMAP_POINTS` points (too few for UMAP's spectral
initialisation and neighbour graph to mean anything) it falls back to PCA and says so in a
warning. A single point projects to the origin.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import _io
from .errors import AvocadoValueError
from .regions import GENOME_RESOLUTIONS

__all__ = [
    "project",
    "pca",
    "place_on_map",
    "map_placement",
    "stratified_sample",
    "genome_features",
    "factor_rows",
    "model_projection",
    "model_fingerprint",
    "ProjectionCache",
    "METHODS",
    "AXES",
    "RESOLUTIONS",
]

METHODS = ("umap", "pca")
AXES = ("biosamples", "assays", "genome")
RESOLUTIONS = ("all", "25bp", "250bp", "5kbp")
#: Below this many points :func:`project` uses PCA instead of UMAP.
MIN_UMAP_POINTS = 8
#: Inputs wider than this are reduced by PCA to this many dimensions before UMAP.
UMAP_PCA_DIMS = 30


def _check_matrix(X: Any, name: str = "X") -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise AvocadoValueError(
            f"{name} must be a 2-D array (points x features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise AvocadoValueError(
            f"{name} must have at least one point and one feature, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise AvocadoValueError(f"{name} must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64 if X.dtype == np.float64 else np.float32, copy=False)
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise AvocadoValueError(
            f"{name} has {bad} row(s) with NaN or infinite values; expected finite values")
    return X


def pca(X: np.ndarray, n_components: int = 2, *, return_variance: bool = False
        ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Principal component scores of the rows of ``X``, with deterministic signs.

    Parameters
    ----------
    X: numpy.ndarray, shape=(n, d)
        The points.
    n_components: int, optional
        The number of components. When it exceeds ``min(n, d)`` the missing components are
        zeros. Default is 2.
    return_variance: bool, optional
        Also return the fraction of the points' variance that each component holds (what a
        map's axes say: "PC1 (31 %)"). Default is False.

    Returns
    -------
    scores: numpy.ndarray, shape=(n, n_components), dtype=float32
        Scores on the leading principal axes; each axis is oriented so that its largest
        absolute loading is positive, which makes the result independent of the SVD routine.
    variance: numpy.ndarray, shape=(n_components,), dtype=float64
        Only with ``return_variance``: each component's share of the total variance (0 for a
        missing component, and for every component when the points do not vary).
    """
    X = _check_matrix(X)
    if n_components < 1:
        raise AvocadoValueError(f"n_components must be >= 1, got {n_components}")
    centre, axes, power = _pca_fit(X, n_components)
    out = np.zeros((X.shape[0], n_components), dtype=np.float32)
    share = np.zeros(n_components)
    out[:, :axes.shape[1]] = (X.astype(np.float64) - centre) @ axes
    if not return_variance:
        return out
    total = float(power.sum())
    if total > 0:
        r = axes.shape[1]
        share[:r] = power[:r] / total
    return out, share


def _pca_fit(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centre (d,), the signed principal axes (d, r) and the variance along every axis of
    the rows of ``X``: what :func:`pca` projects with, and :func:`place_on_map` reuses."""
    centre = X.mean(axis=0, dtype=np.float64)
    Xc = X.astype(np.float64) - centre
    n, d = Xc.shape
    r = min(n, d, n_components)
    if n == 1:
        return centre, np.zeros((d, 0)), np.zeros(0)
    if n > 4 * d:
        # Tall matrix (genome positions): eigendecomposition of the d x d covariance is cheaper
        # than an SVD of the n x d matrix.
        cov = Xc.T @ Xc
        vals, vecs = np.linalg.eigh(cov)
        axes, power = vecs[:, ::-1][:, :r], np.clip(vals[::-1], 0.0, None)
    else:
        _, sv, vt = np.linalg.svd(Xc, full_matrices=False)
        axes, power = vt[:r].T, sv ** 2
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(r)])
    signs[signs == 0] = 1.0
    return centre, axes * signs, power


def map_placement(method: str, n_known: int) -> str:
    """How :func:`place_on_map` places new points on a map made by ``method`` from
    ``n_known`` points: ``"pca"`` (the map's own linear map) or ``"nearest"`` (among the
    nearest known points; a UMAP map keeps no fitted reducer)."""
    if method not in METHODS:
        raise AvocadoValueError(
            f"unknown projection method {method!r}; expected one of {list(METHODS)}")
    # below MIN_UMAP_POINTS, project() made a UMAP map with PCA
    return "pca" if method == "pca" or n_known < MIN_UMAP_POINTS else "nearest"


def place_on_map(vectors: np.ndarray, known: np.ndarray, points: np.ndarray,
                 method: str = "pca", k: int = 5) -> np.ndarray:
    """Where new factor vectors fall on a 2-D map of known ones, e.g. a biosample fitted
    after the map was made (:func:`avocado_core.placement.place_biosample`).

    Parameters
    ----------
    vectors: numpy.ndarray, shape=(m, d) or (d,)
        The new points' factors.
    known: numpy.ndarray, shape=(n, d)
        The factors the map was projected from (e.g. ``model.biosample_embedding()``), in
        the order of ``points``.
    points: numpy.ndarray, shape=(n, c)
        The map: the known points' coordinates (``x``, ``y`` of :func:`model_projection`).
    method: str, optional
        How the map was made: ``"pca"`` or ``"umap"``. A PCA map places the new vectors with
        its own linear map (the known points' centre and principal axes), exactly where
        :func:`pca` would put them. A UMAP map keeps no fitted reducer, so a new vector goes
        to the inverse-distance weighted mean of the map coordinates of its ``k`` nearest
        known vectors (Euclidean, in factor space); a vector equal to a known one lands on
        it. :func:`map_placement` says which applies. Default is ``"pca"``.
    k: int, optional
        Neighbours for a UMAP map (at most ``n``). Default is 5.

    Returns
    -------
    placed: numpy.ndarray, shape=(m, c) or (c,), dtype=float32
        The new points' map coordinates (one row per vector; 1-D for a 1-D ``vectors``).
    """
    single = np.ndim(vectors) == 1
    V = _check_matrix(np.atleast_2d(vectors), "vectors")
    K = _check_matrix(known, "known")
    P = _check_matrix(points, "points")
    if V.shape[1] != K.shape[1]:
        raise AvocadoValueError(f"vectors have {V.shape[1]} factors; the known points have "
                                f"{K.shape[1]}")
    if P.shape[0] != K.shape[0]:
        raise AvocadoValueError(f"{K.shape[0]} known vectors but {P.shape[0]} map points; "
                                "expected one point per known vector")
    if k < 1:
        raise AvocadoValueError(f"k must be >= 1, got {k}")
    if map_placement(method, K.shape[0]) == "pca":
        centre, axes, _ = _pca_fit(K, P.shape[1])
        out = np.zeros((V.shape[0], P.shape[1]), dtype=np.float32)
        out[:, :axes.shape[1]] = (V.astype(np.float64) - centre) @ axes
    else:
        k = min(int(k), K.shape[0])
        dist = np.sqrt(((V[:, None, :].astype(np.float64) - K[None]) ** 2).sum(axis=2))
        idx = np.argpartition(dist, k - 1, axis=1)[:, :k]
        d = np.take_along_axis(dist, idx, axis=1)
        exact = d == 0
        with np.errstate(divide="ignore"):
            w = np.where(exact.any(axis=1, keepdims=True), exact, 1.0 / d)
        out = ((w[:, :, None] * P[idx]).sum(axis=1) / w.sum(axis=1, keepdims=True)
               ).astype(np.float32)
    return out[0] if single else out


def project(X: np.ndarray, method: str = "umap", n_components: int = 2, seed: int | None = 0, *,
            n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "euclidean",
            pca_dims: int | None = UMAP_PCA_DIMS, low_memory: bool = True,
            n_epochs: int | None = None, progress: bool = False) -> np.ndarray:
    """Project the rows of ``X`` to ``n_components`` dimensions with UMAP or PCA.

    Parameters
    ----------
    X: numpy.ndarray, shape=(n, d)
        The points, e.g. ``model.biosample_embedding()``.
    method: str, optional
        ``"umap"`` (umap-learn) or ``"pca"``. Default is ``"umap"``.
    n_components: int, optional
        The output dimension. Default is 2.
    seed: int or None, optional
        Random seed; the same seed gives the same projection. With a seed, umap-learn runs its
        optimisation on one thread; None lets it use every core, but then the result changes
        from run to run. Default is 0.
    n_neighbors: int, optional
        UMAP's neighbourhood size, capped at ``n - 1``. Default is 15 (umap-learn's default).
    min_dist: float, optional
        UMAP's minimum distance between embedded points. Default is 0.1.
    metric: str, optional
        UMAP's input metric. Default is ``"euclidean"``.
    pca_dims: int or None, optional
        For UMAP, inputs with more than this many columns are first reduced to this many
        principal components (faster nearest-neighbour search; the leading components of the
        factors hold most of their variance). None disables it. Default is 30.
    low_memory: bool, optional
        umap-learn's ``low_memory`` nearest-neighbour descent. Default is True.
    n_epochs: int or None, optional
        UMAP optimisation epochs; None lets umap-learn choose (200 for large inputs, 500 for
        small). Default is None.
    progress: bool, optional
        Let umap-learn print its progress. Default is False.

    Returns
    -------
    Y: numpy.ndarray, shape=(n, n_components), dtype=float32
        The projected points.

    Notes
    -----
    Small inputs: UMAP uses ``n_neighbors = min(n_neighbors, n - 1)``. With fewer than
    ``MIN_UMAP_POINTS`` (8) points, UMAP's neighbour graph and spectral initialisation are
    degenerate, so PCA is used instead (with a ``UserWarning``). One point maps to the origin.
    """
    if method not in METHODS:
        raise AvocadoValueError(
            f"unknown projection method {method!r}; expected one of {list(METHODS)}")
    if not isinstance(n_components, (int, np.integer)) or n_components < 1:
        raise AvocadoValueError(f"n_components must be a positive integer, got {n_components!r}")
    X = _check_matrix(X)
    n = X.shape[0]
    if method == "pca":
        return pca(X, n_components)
    if n < MIN_UMAP_POINTS:
        warnings.warn(f"UMAP needs at least {MIN_UMAP_POINTS} points, got {n}; using PCA instead",
                      UserWarning, stacklevel=2)
        return pca(X, n_components)
    if n_neighbors < 2:
        raise AvocadoValueError(f"n_neighbors must be >= 2, got {n_neighbors}")

    import umap  # imported lazily: it compiles numba code on first import (seconds)

    if pca_dims is not None and X.shape[1] > pca_dims and n > pca_dims:
        X = pca(X, pca_dims)
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=int(min(n_neighbors, n - 1)),
        min_dist=min_dist,
        metric=metric,
        random_state=None if seed is None else int(seed),
        low_memory=low_memory,
        n_epochs=n_epochs,
        # umap's spectral init can fail on disconnected tiny graphs; it falls back to random by
        # itself but warns. Its init="spectral" default is kept.
        verbose=progress,
    )
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state": expected, seeds fix it.
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        warnings.filterwarnings("ignore", message=".*Graph is not fully connected.*")
        Y = reducer.fit_transform(X)
    return np.asarray(Y, dtype=np.float32)


def stratified_sample(strata: np.ndarray | Sequence, n: int, seed: int = 0,
                      equal_share: float = 0.5) -> np.ndarray:
    """Indices of a stratified random sample of ``n`` items, sorted.

    Parameters
    ----------
    strata: array-like, shape=(N,)
        One class label per item.
    n: int
        Sample size; with ``n >= N`` every item is returned.
    seed: int, optional
        Random seed. Default is 0.
    equal_share: float, optional
        The fraction of the sample shared equally among the classes (a class smaller than its
        share gives all its items, and the rest goes to the others in proportion to their
        sizes). 0 is a proportional sample, 1 as balanced as the class sizes allow.
        Default is 0.5.

    Returns
    -------
    indices: numpy.ndarray, shape=(min(n, N),), dtype=int64
        Positions of the sampled items, in increasing order.
    """
    strata = np.asarray(strata)
    if strata.ndim != 1:
        raise AvocadoValueError(f"strata must be 1-D, got shape {strata.shape}")
    if not 0.0 <= equal_share <= 1.0:
        raise AvocadoValueError(f"equal_share must be in [0, 1], got {equal_share}")
    if n < 1:
        raise AvocadoValueError(f"sample size must be >= 1, got {n}")
    N = strata.shape[0]
    if n >= N:
        return np.arange(N, dtype=np.int64)
    codes, uniques = _factorize(strata)
    sizes = np.bincount(codes, minlength=len(uniques))
    quota = np.minimum(sizes, int(equal_share * n) // len(sizes))
    rest = n - int(quota.sum())
    capacity = sizes - quota
    if rest > 0:
        share = rest * capacity / capacity.sum()
        extra = np.floor(share).astype(np.int64)
        short = rest - int(extra.sum())
        # Largest remainders get the last few; never beyond a class's capacity.
        order = np.argsort(-(share - extra), kind="stable")[:short]
        extra[order] += 1
        quota = quota + np.minimum(extra, capacity)
    rng = np.random.default_rng(seed)
    # Sort by class, randomly within a class (codes + U[0, 1) is one float key: beats lexsort).
    order = np.argsort(codes + rng.random(N))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(N, dtype=np.int64)
    rank[order] = np.arange(N) - starts[codes[order]]
    return np.flatnonzero(rank < quota[codes])


def _factorize(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and sorted unique labels (hash-based: fast on a million strings)."""
    codes, uniques = pd.factorize(np.asarray(labels).ravel(), sort=True)
    if (codes < 0).any():
        raise AvocadoValueError(
            "strata contain missing labels (None / NaN); expected a label for every item")
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def genome_features(
    model: Any, rows: np.ndarray | None = None, resolution: str = "all"
) -> np.ndarray:
    """The genome factors of a model for some positions, without building the whole table.

    Parameters
    ----------
    model: Avocado
        A model exposing ``genome_factors(resolution)`` (the raw 25 bp / 250 bp / 5 kbp
        tables) and ``n_positions``.
    rows: numpy.ndarray or None, optional
        Row indices at ``resolution``: 25 bp bins for ``"all"`` and ``"25bp"``, rows of the
        250 bp or 5 kbp table otherwise. None means all rows. Default is None.
    resolution: str, optional
        ``"all"`` (the 25 bp, 250 bp and 5 kbp factors of each bin side by side, as
        ``model.genome_embedding()``), ``"25bp"``, ``"250bp"`` or ``"5kbp"``. Default is
        ``"all"``.

    Returns
    -------
    features: numpy.ndarray, shape=(len(rows), n_factors), dtype=float32
    """
    if resolution not in RESOLUTIONS:
        raise AvocadoValueError(
            f"unknown resolution {resolution!r}; expected one of {list(RESOLUTIONS)}")
    if resolution != "all":
        table = np.asarray(model.genome_factors(resolution))
        return np.asarray(table if rows is None else table[rows], dtype=np.float32)
    f25 = np.asarray(model.genome_factors("25bp"))
    if rows is None:
        rows = np.arange(f25.shape[0])
    parts = [f25[rows]]
    for res in ("250bp", "5kbp"):
        table = np.asarray(model.genome_factors(res))
        idx = np.minimum(rows // GENOME_RESOLUTIONS[res], table.shape[0] - 1)
        parts.append(table[idx])
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def factor_rows(model: Any, resolution: str) -> int:
    """Rows of a model's genome factors at ``resolution`` (``"all"``: its positions)."""
    if resolution in ("all", "25bp"):
        return int(model.n_positions)
    return int(np.asarray(model.genome_factors(resolution)).shape[0])


def _row_strata(strata: np.ndarray, n_positions: int, n_rows: int, per_row: int) -> np.ndarray:
    """Per-bin labels -> one label per coarse row: the row's most frequent label."""
    if strata.shape[0] == n_rows:
        return strata
    if strata.shape[0] != n_positions:
        raise AvocadoValueError(
            f"strata has {strata.shape[0]} labels; expected one per position ({n_positions}) "
            f"or per row of the chosen resolution ({n_rows})")
    codes, labels = _factorize(strata)
    row = np.minimum(np.arange(n_positions) // per_row, n_rows - 1)
    counts = np.bincount(row * len(labels) + codes, minlength=n_rows * len(labels))
    return labels[counts.reshape(n_rows, len(labels)).argmax(axis=1)]


def model_projection(model: Any, axis: str = "biosamples", method: str = "umap",
                     resolution: str = "all", n_points: int = 100_000,
                     strata: np.ndarray | Sequence | None = None, seed: int = 0,
                     **project_kw: Any) -> pd.DataFrame:
    """Project one axis of a model's factors to 2-D.

    Parameters
    ----------
    model: Avocado
        A trained model (anything with ``biosamples``, ``assays``, ``n_positions``,
        ``biosample_embedding()``, ``assay_embedding()`` and ``genome_factors(resolution)``).
    axis: str, optional
        ``"biosamples"``, ``"assays"`` or ``"genome"``. Default is ``"biosamples"``.
    method: str, optional
        ``"umap"`` or ``"pca"``. Default is ``"umap"``.
    resolution: str, optional
        For the genome: ``"all"`` (all 110 factors of each 25 bp bin), ``"25bp"``, ``"250bp"``
        or ``"5kbp"`` (one point per row of that table). Ignored for the other axes.
        Default is ``"all"``.
    n_points: int, optional
        For the genome: the sample size (all rows if there are fewer). Default is 100,000.
    strata: array-like or None, optional
        For the genome: a class label per 25 bp bin (or per row of the chosen resolution), e.g.
        ``annotations.classify_bins(regions)``. A coarse row takes the most frequent label of its
        bins. None samples uniformly. Default is None.
    seed: int, optional
        Seed of the sample and of UMAP. Default is 0.
    **project_kw
        Passed on to :func:`project` (e.g. ``n_neighbors``, ``min_dist``).

    Returns
    -------
    projection: pandas.DataFrame
        Biosamples and assays: columns ``name``, ``x``, ``y`` in model order. Genome: columns
        ``bin`` (first 25 bp bin of the point), ``n_bins`` (bins it spans: 1, 10 or 200),
        ``x``, ``y``, ``stratum`` (``"all"`` without strata), sorted by bin. ``attrs`` holds
        the method, resolution and, for the genome, the number of rows sampled from; for a PCA
        also ``explained_variance``, each axis's share of the factors' variance.
    """
    if axis not in AXES:
        raise AvocadoValueError(f"unknown axis {axis!r}; expected one of {list(AXES)}")
    if method not in METHODS:
        raise AvocadoValueError(
            f"unknown projection method {method!r}; expected one of {list(METHODS)}")
    if axis in ("biosamples", "assays"):
        if axis == "biosamples":
            X, names = model.biosample_embedding(), list(model.biosamples)
        else:
            X, names = model.assay_embedding(), list(model.assays)
        Y, variance = _project(np.asarray(X), method, seed, project_kw)
        df = pd.DataFrame({"name": names, "x": Y[:, 0], "y": Y[:, 1]})
        df.attrs.update(axis=axis, method=method, n_total=len(names), **variance)
        return df

    if resolution not in RESOLUTIONS:
        raise AvocadoValueError(
            f"unknown resolution {resolution!r}; expected one of {list(RESOLUTIONS)}")
    n_positions = int(model.n_positions)
    n_rows = factor_rows(model, resolution)
    per_row = 1 if resolution in ("all", "25bp") else GENOME_RESOLUTIONS[resolution]
    if strata is None:
        labels = None
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n_rows, size=min(n_points, n_rows), replace=False))
    else:
        labels = _row_strata(np.asarray(strata), n_positions, n_rows, per_row)
        rows = stratified_sample(labels, n_points, seed=seed)
    X = genome_features(model, rows, resolution)
    Y, variance = _project(X, method, seed, project_kw)
    first_bin = rows * per_row
    df = pd.DataFrame({
        "bin": first_bin.astype(np.int64),
        "n_bins": np.minimum(per_row, n_positions - first_bin).astype(np.int64),
        "x": Y[:, 0],
        "y": Y[:, 1],
        "stratum": np.asarray(labels[rows], dtype=str) if labels is not None else "all",
    })
    df.attrs.update(axis=axis, method=method, resolution=resolution, n_total=n_rows,
                    **variance)
    return df


def _project(X: np.ndarray, method: str, seed: int, project_kw: dict
             ) -> tuple[np.ndarray, dict]:
    """:func:`project`, and for a PCA the attrs ``{"explained_variance": [share of PC1, share
    of PC2]}``."""
    if method == "pca":
        Y, share = pca(X, 2, return_variance=True)
        return Y, {"explained_variance": [round(float(v), 6) for v in share]}
    return project(X, method=method, seed=seed, **project_kw), {}


def model_fingerprint(model: Any) -> str:
    """A content hash of a model: its config, names and every factor table.

    Two models with equal fingerprints give equal projections. Hashing reads all the genome
    factors once (about 0.3 s for the pilot's 1.1 million positions).

    Parameters
    ----------
    model: Avocado

    Returns
    -------
    fingerprint: str
        16 hex digits.
    """
    h = hashlib.blake2b(digest_size=8)
    config = getattr(model, "config", None)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for names in (model.biosamples, model.assays):
        h.update("\x1f".join(map(str, names)).encode() + b"\x1e")
    tables = [model.biosample_embedding(), model.assay_embedding()]
    tables += [model.genome_factors(res) for res in ("25bp", "250bp", "5kbp")]
    for table in tables:
        a = np.ascontiguousarray(np.asarray(table, dtype=np.float32))
        h.update(str(a.shape).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _strata_digest(strata: Any) -> str:
    if strata is None:
        return "none"
    codes, uniq = _factorize(np.asarray(strata))
    h = hashlib.blake2b(digest_size=6)
    h.update("\x1f".join(map(str, uniq)).encode())
    h.update(np.ascontiguousarray(codes.astype(np.int32)).tobytes())
    return h.hexdigest()


class ProjectionCache:
    """Projections stored as files in a directory, computed once per model and parameters.

    Each projection is one ``.npz`` file (no pickles) named after the model fingerprint and
    the parameters: ``<fingerprint>/<axis>-<method>-<resolution>-n<n_points>-s<seed>-<strata>.npz``.
    Files are written atomically (temporary file + ``os.replace``), so concurrent app workers
    can share a directory: at worst two compute the same projection and one wins.

    Parameters
    ----------
    directory: str or os.PathLike
        Where the files go; created if missing.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fingerprints: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"ProjectionCache({str(self.directory)!r})"

    def fingerprint(self, model: Any) -> str:
        """The model's fingerprint (computed once per model object)."""
        key = id(model)
        if key not in self._fingerprints:
            self._fingerprints[key] = model_fingerprint(model)
        return self._fingerprints[key]

    def path(self, fingerprint: str, axis: str, method: str = "umap", resolution: str = "all",
             n_points: int = 100_000, seed: int = 0, strata: Any = None) -> Path:
        """The file that holds (or will hold) one projection."""
        if axis not in AXES:
            raise AvocadoValueError(f"unknown axis {axis!r}; expected one of {list(AXES)}")
        if method not in METHODS:
            raise AvocadoValueError(
                f"unknown projection method {method!r}; expected one of {list(METHODS)}")
        if axis != "genome":
            resolution, n_points, strata_key = "-", 0, "none"
        else:
            if resolution not in RESOLUTIONS:
                raise AvocadoValueError(
                    f"unknown resolution {resolution!r}; expected one of {list(RESOLUTIONS)}")
            strata_key = _strata_digest(strata)
        name = f"{axis}-{method}-{resolution}-n{int(n_points)}-s{int(seed)}-{strata_key}.npz"
        return self.directory / str(fingerprint) / name

    def get(self, fingerprint: str, axis: str, method: str = "umap", resolution: str = "all",
            n_points: int = 100_000, seed: int = 0, strata: Any = None) -> pd.DataFrame | None:
        """A stored projection, or None when it has not been computed."""
        path = self.path(fingerprint, axis, method, resolution, n_points, seed, strata)
        if not path.exists():
            return None
        return _read_frame(path)

    def get_or_compute(self, model: Any, axis: str = "biosamples", method: str = "umap",
                       resolution: str = "all", n_points: int = 100_000, seed: int = 0,
                       strata: Any = None, fingerprint: str | None = None,
                       **project_kw: Any) -> pd.DataFrame:
        """Return the stored projection, computing and storing it first if needed.

        Parameters
        ----------
        model: Avocado
            The model (only touched when the projection must be computed, and to fingerprint
            it when ``fingerprint`` is None).
        axis, method, resolution, n_points, seed, strata
            As :func:`model_projection`.
        fingerprint: str or None, optional
            A key that identifies the model, e.g. a hash the caller already has; None computes
            :func:`model_fingerprint` (once per model object). Default is None.
        **project_kw
            Passed on to :func:`project`; they are not part of the key, so keep them fixed for a
            given cache directory.

        Returns
        -------
        projection: pandas.DataFrame
            As :func:`model_projection`; ``attrs["seconds"]`` is the time the computation took.
        """
        fp = fingerprint if fingerprint is not None else self.fingerprint(model)
        path = self.path(fp, axis, method, resolution, n_points, seed, strata)
        if path.exists():
            return _read_frame(path)
        t0 = time.perf_counter()
        df = model_projection(model, axis=axis, method=method, resolution=resolution,
                              n_points=n_points, strata=strata, seed=seed, **project_kw)
        df.attrs["seconds"] = round(time.perf_counter() - t0, 3)
        _write_frame(path, df)
        return df


def _write_frame(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for col in df.columns:
        values = df[col].to_numpy()
        arrays[f"col:{col}"] = values.astype(str) if values.dtype == object else values
    meta = {"columns": list(df.columns), "attrs": df.attrs}
    arrays["__meta__"] = np.array(json.dumps(meta, default=str))
    _io.remove_stale(path.parent)
    with _io.atomic_file(path) as fh:
        np.savez(fh, **arrays)


def _read_frame(path: Path) -> pd.DataFrame:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        df = pd.DataFrame({col: data[f"col:{col}"] for col in meta["columns"]})
    df.attrs.update(meta["attrs"])
    return df
