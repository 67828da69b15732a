"""Facility-location selection of diverse biosamples or genome positions.

The Avocado papers choose which experiments to run next by *submodular selection* over the
learned embeddings: pick items that together represent the whole compendium. The objective is
facility location over a ground set ``V``,

    f(S) = sum_{i in V} max_{j in S} s(i, j),

where ``s >= 0`` is a similarity. ``f`` is monotone and submodular, so the greedy algorithm
(repeatedly add the candidate with the largest marginal gain) is within ``1 - 1/e`` of the best
set of the same size, and its gains never increase (diminishing returns). Items already profiled
are *chosen*: the coverage they give is the starting point, and the greedy picks fill the gaps
they leave.

Similarity
----------
The default is an RBF kernel, ``s(i, j) = exp(-||x_i - x_j||^2 / h)`` with the bandwidth ``h``
the median squared distance between ground-set points. It is bounded in (0, 1], equals 1 on the
diagonal, is invariant to the scale of the embedding, and is *local*: a point is covered only by
picks near it, so a compendium with several clusters gets a pick in each cluster before a second
one in any. ``metric="sqeuclidean"`` is apricot-select's choice (the largest squared distance
minus the squared distance, a global similarity that favours central points);
``metric="cosine"`` is ``max(0, cosine similarity)``.

Algorithm and memory
--------------------
Lazy greedy (Minoux's accelerated greedy): the gains of all candidates are computed once, in
blocks of columns of the similarity matrix; afterwards only the candidate on top of a priority
queue is re-evaluated until it stays on top. The result (ties broken by the lowest index) is the
same as plain greedy. Similarities are computed from the features on demand, block by block, so
memory is ``O(block x ground)`` and not ``O(candidates x ground)``.

For genome positions (1.1 million in the pilot regions, 124 million genome-wide)
:func:`select_positions` samples a ground set (default 20,000 positions) whose coverage is the
objective, and a candidate pool (default 5,000 positions, drawn from the ground set) from which
picks are made: about 100 M similarities per full pass, in blocks of 16 MB.
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import _io
from .errors import AvocadoKeyError, AvocadoValueError

__all__ = [
    "SelectionResult",
    "similarity",
    "facility_location",
    "select_biosamples",
    "select_positions",
    "write_bed",
    "METRICS",
]

METRICS = ("rbf", "sqeuclidean", "cosine")
#: Entries of one block of the similarity matrix (columns x ground points), about 16 MB.
BLOCK_ENTRIES = 4_000_000


def _sqdist(A: np.ndarray, B: np.ndarray, a2: np.ndarray | None = None) -> np.ndarray:
    a2 = (A * A).sum(1) if a2 is None else a2
    d = A @ B.T
    d *= -2.0
    d += a2[:, None]
    d += (B * B).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d)


class _Similarity:
    """Columns of the ground x candidate similarity matrix, computed on demand."""

    def __init__(self, ground: np.ndarray, cands: np.ndarray, metric: str, bandwidth: float | None,
                 seed: int = 0):
        self.metric = metric
        self.G = ground
        self.C = cands
        if metric == "cosine":
            gn = np.linalg.norm(ground, axis=1, keepdims=True)
            cn = np.linalg.norm(cands, axis=1, keepdims=True)
            self.G = ground / np.where(gn == 0, 1.0, gn)
            self.C = cands / np.where(cn == 0, 1.0, cn)
        self.g2 = (self.G * self.G).sum(1)
        if metric == "rbf":
            if bandwidth is None:
                bandwidth = _median_sqdist(ground, seed)
            if not bandwidth > 0:
                raise AvocadoValueError(f"RBF bandwidth must be > 0, got {bandwidth}")
        self.bandwidth = bandwidth
        self.shift = None
        if metric == "sqeuclidean":
            # apricot's choice: the largest squared distance of the ground set to any candidate
            # minus the squared distance; computed in blocks.
            self.shift = max(float(_sqdist(self.G, self.C[sl], self.g2).max())
                             for sl in _blocks(len(self.C), len(self.G)))

    def columns(self, idx: np.ndarray | slice) -> np.ndarray:
        C = self.C[idx]
        if self.metric == "cosine":
            return np.maximum(self.G @ C.T, 0.0)
        d = _sqdist(self.G, C, self.g2)
        if self.metric == "rbf":
            d *= -1.0 / self.bandwidth
            return np.exp(d, out=d)
        return self.shift - d


def _blocks(n_cols: int, n_rows: int) -> Iterable[slice]:
    step = max(1, BLOCK_ENTRIES // max(n_rows, 1))
    for start in range(0, n_cols, step):
        yield slice(start, min(start + step, n_cols))


def _median_sqdist(X: np.ndarray, seed: int = 0, n_pairs: int = 20_000) -> float:
    n = len(X)
    if n < 2:
        return 1.0
    if n * (n - 1) // 2 <= n_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, n_pairs)
        j = (i + rng.integers(1, n, n_pairs)) % n
    d = ((X[i] - X[j]) ** 2).sum(1)
    med = float(np.median(d))
    return med if med > 0 else (float(d.max()) if d.max() > 0 else 1.0)


def similarity(X: np.ndarray, Y: np.ndarray | None = None, metric: str = "rbf",
               bandwidth: float | None = None) -> np.ndarray:
    """The similarity matrix used by :func:`facility_location` (rows X, columns Y).

    Parameters
    ----------
    X: numpy.ndarray, shape=(n, d)
    Y: numpy.ndarray or None, shape=(m, d), optional
        Default is ``X``.
    metric: str, optional
        ``"rbf"``, ``"sqeuclidean"`` or ``"cosine"`` (see the module docstring). Default is
        ``"rbf"``.
    bandwidth: float or None, optional
        RBF bandwidth; None uses the median squared distance between rows of ``X``.

    Returns
    -------
    S: numpy.ndarray, shape=(n, m), float64, non-negative
    """
    X = _features(X, "X")
    Y = X if Y is None else _features(Y, "Y")
    if metric not in METRICS:
        raise AvocadoValueError(
            f"unknown similarity metric {metric!r}; expected one of {list(METRICS)}")
    return _Similarity(X, Y, metric, bandwidth).columns(slice(None))


def _features(X: Any, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise AvocadoValueError(
            f"{name} must be a non-empty 2-D array (items x features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise AvocadoValueError(f"{name} contains NaN or infinite values; expected finite features")
    return X


@dataclass
class SelectionResult:
    """The outcome of a greedy facility-location selection.

    Attributes
    ----------
    indices: numpy.ndarray, shape=(k,), int64
        Picked items (rows of ``X``), in pick order.
    gains: numpy.ndarray, shape=(k,)
        Marginal gain of each pick; non-increasing (diminishing returns).
    objective: numpy.ndarray, shape=(k,)
        Facility-location objective after each pick (including the chosen items' coverage).
    initial_objective: float
        The objective of the already-chosen items alone (0 when none).
    max_objective: float
        The objective if every candidate and chosen item were picked: the ceiling of the curve.
    chosen: numpy.ndarray
        The already-chosen items that were the starting point.
    """

    indices: np.ndarray
    gains: np.ndarray
    objective: np.ndarray
    initial_objective: float
    max_objective: float
    chosen: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def coverage(self) -> np.ndarray:
        """``objective / max_objective``: the fraction of the achievable coverage, in [0, 1]."""
        if self.max_objective > 0:
            return self.objective / self.max_objective
        return np.ones_like(self.objective)


def _index_array(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values if values is not None else [], dtype=np.int64).ravel()
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = arr[(arr < 0) | (arr >= n)][0]
        raise AvocadoValueError(f"{name} index {bad} is out of range; expected 0 <= index < {n}")
    return np.unique(arr)


def facility_location(X: np.ndarray, k: int, chosen: Sequence[int] | np.ndarray | None = None,
                      candidates: Sequence[int] | np.ndarray | None = None, *,
                      metric: str = "rbf", bandwidth: float | None = None,
                      ground: Sequence[int] | np.ndarray | None = None, seed: int = 0,
                      progress: bool = False) -> SelectionResult:
    """Greedy facility-location selection of ``k`` rows of ``X``.

    Parameters
    ----------
    X: numpy.ndarray, shape=(n, d)
        Features of the items (e.g. biosample embeddings).
    k: int
        How many to pick; at most the number of candidates.
    chosen: array-like of int or None, optional
        Items already selected (e.g. biosamples profiled for the assay): their coverage is the
        starting point and they are never picked. Default is None.
    candidates: array-like of int or None, optional
        Items that may be picked. None means every item not in ``chosen``. Chosen items are
        removed from the candidates. Default is None.
    metric: str, optional
        ``"rbf"`` (default), ``"sqeuclidean"`` or ``"cosine"``; see the module docstring.
    bandwidth: float or None, optional
        RBF bandwidth; None uses the median squared distance between ground points.
    ground: array-like of int or None, optional
        The items whose coverage is the objective. None means all ``n`` rows. Default is None.
    seed: int, optional
        Seed for the pair sample of the median bandwidth on large ground sets. Default is 0.
    progress: bool, optional
        Show a tqdm bar over the picks. Default is False.

    Returns
    -------
    result: SelectionResult
        Picks in order with their marginal gains and the objective curve.
    """
    X = _features(X, "X")
    n = X.shape[0]
    if metric not in METRICS:
        raise AvocadoValueError(
            f"unknown similarity metric {metric!r}; expected one of {list(METRICS)}")
    chosen_idx = _index_array(chosen, n, "chosen")
    if candidates is None:
        cand_idx = np.setdiff1d(np.arange(n), chosen_idx)
    else:
        cand_idx = np.setdiff1d(_index_array(candidates, n, "candidate"), chosen_idx)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise AvocadoValueError(f"k must be a positive integer, got {k!r}")
    if k > len(cand_idx):
        raise AvocadoValueError(f"k={k} exceeds the number of candidates ({len(cand_idx)})")
    ground_idx = np.arange(n) if ground is None else _index_array(ground, n, "ground")
    if ground_idx.size == 0:
        raise AvocadoValueError("the ground set is empty; expected at least one item")

    G = X[ground_idx]
    # Candidates and chosen items share one similarity provider: chosen first.
    pool_idx = np.concatenate([chosen_idx, cand_idx])
    sim = _Similarity(G, X[pool_idx], metric, bandwidth, seed=seed)
    n_chosen = len(chosen_idx)

    cur = np.zeros(len(G))
    best_all = np.zeros(len(G))
    gains = np.empty(len(cand_idx))
    for sl in _blocks(n_chosen, len(G)):
        np.maximum(cur, sim.columns(sl).max(axis=1), out=cur)
    initial = float(cur.sum())
    best_all[:] = cur
    # When the whole candidate block fits in memory keep it, else recompute columns on demand.
    dense = None
    for sl in _blocks(len(cand_idx), len(G)):
        S = sim.columns(slice(n_chosen + sl.start, n_chosen + sl.stop))
        if sl.start == 0 and sl.stop == len(cand_idx):
            dense = S.copy()
        np.maximum(best_all, S.max(axis=1), out=best_all)
        S -= cur[:, None]
        gains[sl] = np.maximum(S, 0.0, out=S).sum(axis=0)

    # Max-heap of upper bounds on the gains, ties -> lowest candidate index (= plain greedy).
    # Keys are gains rounded to a grid far below any meaningful difference, so that values that
    # differ only by floating-point noise (a column computed alone or within a block) tie.
    top = float(best_all.max()) if len(best_all) else 1.0
    grid = 1e-10 * max(top, 1e-300) * len(G)

    def key(g: float) -> float:
        return -round(g / grid) * grid

    heap = [(key(g), int(c)) for c, g in enumerate(gains)]
    heapq.heapify(heap)
    fresh = np.ones(len(cand_idx), dtype=bool)  # bound computed against the current coverage
    picks, pick_gains, objective = [], [], []
    total = initial
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=k, desc="facility location", unit="pick")
    def columns(c: np.ndarray) -> np.ndarray:
        return dense[:, c] if dense is not None else sim.columns(n_chosen + c)

    exact = gains.copy()  # the unrounded gain behind each fresh key
    batch, max_batch = 1, max(1, min(1024, BLOCK_ENTRIES // len(G)))  # memory-bounded batches
    while len(picks) < k:
        item = heapq.heappop(heap)
        c = item[1]
        if not fresh[c]:
            # Re-evaluate the stale top, and with it the next few stale entries: when bounds
            # keep dropping (e.g. a pick covers a whole cluster), batches grow 1, 2, 4, ...
            stale = [c]
            while len(stale) < batch and heap and not fresh[heap[0][1]]:
                stale.append(heapq.heappop(heap)[1])
            idx = np.asarray(stale)
            exact[idx] = np.maximum(columns(idx) - cur[:, None], 0.0).sum(axis=0)
            fresh[idx] = True
            for i in stale:
                heapq.heappush(heap, (key(exact[i]), i))
            batch = min(2 * batch, max_batch)
            continue
        batch = 1
        col = columns(np.array([c]))[:, 0]
        np.maximum(cur, col, out=cur)
        total = float(cur.sum())
        picks.append(cand_idx[c])
        pick_gains.append(exact[c])
        objective.append(total)
        fresh[:] = False
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return SelectionResult(indices=np.asarray(picks, dtype=np.int64),
                           gains=np.asarray(pick_gains, dtype=np.float64),
                           objective=np.asarray(objective, dtype=np.float64),
                           initial_objective=initial, max_objective=float(best_all.sum()),
                           chosen=chosen_idx)


# --------------------------------------------------------------------------------------------
# Biosamples


def _embedding_frame(model_or_embedding: Any) -> pd.DataFrame:
    if isinstance(model_or_embedding, pd.DataFrame):
        df = model_or_embedding
        if df.index.has_duplicates:
            dup = df.index[df.index.duplicated()][0]
            raise AvocadoValueError(
                f"biosample {dup!r} appears twice in the embedding; expected unique names")
        return df
    if hasattr(model_or_embedding, "biosample_embedding"):
        X = np.asarray(model_or_embedding.biosample_embedding())
        index = pd.Index(list(model_or_embedding.biosamples), name="biosample")
        return pd.DataFrame(X, index=index)
    raise AvocadoValueError(
        f"expected an Avocado model or a DataFrame of embeddings indexed by biosample, "
        f"got {type(model_or_embedding).__name__}")


def _observed_pairs(store_or_observed: Any) -> list[tuple[str, str]]:
    if hasattr(store_or_observed, "experiments"):
        return [tuple(e) for e in store_or_observed.experiments()]
    if isinstance(store_or_observed, Mapping):
        return [tuple(e) for e in store_or_observed.keys()]
    try:
        pairs = [tuple(e) for e in store_or_observed]
    except TypeError:
        raise AvocadoValueError(
            f"expected a TrackStore, a mapping keyed by (biosample, assay) or a list of pairs, "
            f"got {type(store_or_observed).__name__}") from None
    if any(len(p) != 2 for p in pairs):
        raise AvocadoValueError("observed experiments must be (biosample, assay) pairs")
    return pairs


def _close(name: str, known: Iterable[str]) -> str:
    import difflib
    known = sorted(set(map(str, known)))
    close = difflib.get_close_matches(str(name), known, n=3)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f"expected one of: {shown}{hint}"


def select_biosamples(model_or_embedding: Any, store_or_observed: Any, assay: str, k: int,
                      candidates: Sequence[str] | None = None, *, query: str | None = None,
                      metadata: pd.DataFrame | None = None, metric: str = "rbf",
                      bandwidth: float | None = None, progress: bool = False) -> pd.DataFrame:
    """Rank biosamples to profile next for an assay, by facility location on their embedding.

    The ground set is every biosample of the embedding. Biosamples that already have the assay
    observed count as chosen; candidates are the others (optionally narrowed by ``candidates``
    and a metadata ``query``). Observed experiments of biosamples that the embedding does not
    contain are ignored (they have no factors to cover anything with).

    Parameters
    ----------
    model_or_embedding: Avocado or pandas.DataFrame
        A model (its ``biosample_embedding()`` and ``biosamples``) or a DataFrame of embeddings
        indexed by biosample name.
    store_or_observed: TrackStore, Mapping or iterable of (biosample, assay)
        What has been observed: a store (its observed experiments), a mapping keyed by
        experiment (e.g. ``compendium.observed_tracks``) or a list of pairs.
    assay: str
        The assay to plan.
    k: int
        How many biosamples to pick.
    candidates: sequence of str or None, optional
        Restrict the picks to these biosamples; ones that already have the assay are dropped.
        Default is None (every biosample missing the assay).
    query: str or None, optional
        A pandas ``DataFrame.query`` expression on the biosample metadata (e.g.
        ``"anatomy in ['BLOOD', 'BRAIN']"``) that candidates must satisfy. Default is None.
    metadata: pandas.DataFrame or None, optional
        Biosample metadata indexed by name, for ``query``; defaults to ``store.biosamples``.
    metric, bandwidth
        As :func:`facility_location`.
    progress: bool, optional
        Show a progress bar. Default is False.

    Returns
    -------
    picks: pandas.DataFrame
        Columns ``rank`` (from 1), ``biosample``, ``gain``, ``objective`` (cumulative),
        ``coverage`` (objective / its ceiling). ``attrs``: ``assay``, ``profiled`` (the
        biosamples counted as chosen), ``initial_objective``, ``max_objective``,
        ``n_candidates``.
    """
    emb = _embedding_frame(model_or_embedding)
    names = [str(n) for n in emb.index]
    pos = {name: i for i, name in enumerate(names)}
    pairs = _observed_pairs(store_or_observed)
    known_assays = {a for _, a in pairs}
    for source in (model_or_embedding, store_or_observed):
        extra = getattr(source, "assays", None)
        if extra is not None:
            known_assays |= set(map(str, extra.index if isinstance(extra, pd.DataFrame) else extra))
    if assay not in known_assays:
        raise AvocadoKeyError(f"unknown assay {assay!r}; {_close(assay, known_assays)}")
    profiled = sorted({b for b, a in pairs if a == assay and b in pos})

    if candidates is None:
        cand = [n for n in names if n not in set(profiled)]
    else:
        cand = []
        for c in candidates:
            if str(c) not in pos:
                raise AvocadoKeyError(f"unknown biosample {c!r}; {_close(c, names)}")
            cand.append(str(c))
        cand = [c for c in dict.fromkeys(cand) if c not in set(profiled)]
    if query is not None:
        meta = metadata if metadata is not None else getattr(store_or_observed, "biosamples", None)
        if meta is None:
            raise AvocadoValueError(
                "a metadata query needs biosample metadata: pass metadata= or a TrackStore")
        try:
            keep = set(map(str, meta.query(query).index))
        except Exception as exc:  # pandas raises many types for a bad expression
            raise AvocadoValueError(
                f"bad metadata query {query!r}: {exc}; columns are {list(meta.columns)}"
            ) from None
        cand = [c for c in cand if c in keep]
    if not cand:
        raise AvocadoValueError(f"no candidate biosamples for {assay!r}: every candidate already "
                                f"has it observed or was filtered out")
    if k > len(cand):
        raise AvocadoValueError(f"k={k} exceeds the {len(cand)} candidate biosamples for {assay!r}")

    result = facility_location(emb.to_numpy(dtype=np.float64), k,
                               chosen=[pos[b] for b in profiled], candidates=[pos[c] for c in cand],
                               metric=metric, bandwidth=bandwidth, progress=progress)
    df = pd.DataFrame({"rank": np.arange(1, k + 1),
                       "biosample": [names[i] for i in result.indices],
                       "gain": result.gains, "objective": result.objective,
                       "coverage": result.coverage})
    df.attrs.update(assay=assay, profiled=profiled, initial_objective=result.initial_objective,
                    max_objective=result.max_objective, n_candidates=len(cand))
    return df


# --------------------------------------------------------------------------------------------
# Genome positions


def select_positions(genome_factors: Any, k: int, regions: Any = None, *,
                     resolution: str = "all", candidates: np.ndarray | None = None,
                     ground_size: int = 20_000, pool_size: int = 5_000, metric: str = "rbf",
                     bandwidth: float | None = None, seed: int = 0,
                     progress: bool = False) -> pd.DataFrame:
    """Pick ``k`` diverse genome positions by facility location on their factors.

    Memory stays bounded for millions of positions: a uniform random *ground set* of
    ``ground_size`` positions stands for the genome (its coverage is the objective), and the
    picks come from a *pool* of ``pool_size`` positions drawn from the ground set (or from
    ``candidates``). Similarities are computed in blocks, never as a full matrix.

    Parameters
    ----------
    genome_factors: numpy.ndarray or Avocado
        A (n_positions, n_factors) array, or a model (its genome factors at ``resolution``,
        gathered only for the sampled positions).
    k: int
        How many positions to pick.
    regions: RegionSet or None, optional
        When given, the table gets ``chrom``, ``start``, ``end`` columns for BED export.
    resolution: str, optional
        For a model: ``"all"``, ``"25bp"``, ``"250bp"`` or ``"5kbp"``. Default is ``"all"``.
    candidates: numpy.ndarray or None, optional
        A boolean mask over positions, or position indices, that picks must come from (e.g.
        promoter bins). At a coarse resolution, indices are rows of that table, and a per-bin
        mask selects the rows holding any masked bin. Default is None (any position).
    ground_size, pool_size: int, optional
        Sizes of the ground set and of the candidate pool. Defaults are 20,000 and 5,000.
    metric, bandwidth
        As :func:`facility_location`.
    seed: int, optional
        Seed of the samples. Default is 0.
    progress: bool, optional
        Show a progress bar. Default is False.

    Returns
    -------
    picks: pandas.DataFrame
        Columns ``rank``, ``bin`` (25 bp bin index), ``gain``, ``objective``, ``coverage``, and
        with ``regions`` also ``chrom``, ``start``, ``end`` (0-based, half-open). ``attrs``:
        ``ground_size``, ``pool_size``, ``n_positions``.
    """
    from .projection import RESOLUTIONS, factor_rows, genome_features
    from .regions import GENOME_RESOLUTIONS

    is_model = hasattr(genome_factors, "genome_factors")
    per_row = 1
    if is_model:
        if resolution not in RESOLUTIONS:
            raise AvocadoValueError(
                f"unknown resolution {resolution!r}; expected one of {list(RESOLUTIONS)}")
        n_positions = int(genome_factors.n_positions)
        n = factor_rows(genome_factors, resolution)
        if resolution in ("250bp", "5kbp"):
            per_row = GENOME_RESOLUTIONS[resolution]
    else:
        F = np.asarray(genome_factors)
        if F.ndim != 2:
            raise AvocadoValueError(
                f"genome factors must be a 2-D array (positions x factors), got shape {F.shape}")
        n = n_positions = F.shape[0]
    if not isinstance(ground_size, (int, np.integer)) \
            or not isinstance(pool_size, (int, np.integer)) \
            or ground_size < 1 or pool_size < 1:
        raise AvocadoValueError(f"ground_size and pool_size must be positive integers, "
                                f"got {ground_size!r} and {pool_size!r}")
    rng = np.random.default_rng(seed)
    ground = np.sort(rng.choice(n, size=min(ground_size, n), replace=False))
    if candidates is None:
        pool = np.sort(rng.choice(ground, size=min(pool_size, len(ground)), replace=False))
    else:
        cmask = np.asarray(candidates)
        if cmask.dtype == bool:
            if cmask.shape == (n_positions,) and per_row > 1:
                # a per-bin mask at a coarse resolution: rows with any candidate bin
                row_of_bin = np.arange(n_positions) // per_row
                cmask = np.bincount(row_of_bin, weights=cmask, minlength=n)[:n] > 0
            if cmask.shape != (n,):
                raise AvocadoValueError(f"candidate mask has shape {cmask.shape}; expected ({n},)")
            cidx = np.flatnonzero(cmask)
        else:
            cidx = _index_array(cmask, n, "candidate position")
        if cidx.size == 0:
            raise AvocadoValueError("no candidate positions; expected at least one")
        pool = np.sort(rng.choice(cidx, size=min(pool_size, len(cidx)), replace=False))
    if k > len(pool):
        raise AvocadoValueError(f"k={k} exceeds the candidate pool of {len(pool)} positions")
    items = np.union1d(ground, pool)
    feats = genome_features(genome_factors, items, resolution) if is_model else F[items]
    result = facility_location(feats, k, candidates=np.searchsorted(items, pool),
                               ground=np.searchsorted(items, ground), metric=metric,
                               bandwidth=bandwidth, seed=seed, progress=progress)
    first = items[result.indices] * per_row
    n_bins = np.minimum(per_row, n_positions - first)
    df = pd.DataFrame({"rank": np.arange(1, k + 1), "bin": first.astype(np.int64),
                       "n_bins": n_bins.astype(np.int64), "gain": result.gains,
                       "objective": result.objective, "coverage": result.coverage})
    if regions is not None:
        chrom, start, end = _span_coordinates(regions, first, n_bins)
        df["chrom"], df["start"], df["end"] = chrom, start, end
    df.attrs.update(ground_size=len(ground), pool_size=len(pool), n_positions=n_positions,
                    resolution=resolution if is_model else "features")
    return df


def _span_coordinates(regions: Any, first: np.ndarray, n_bins: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """chrom, start, end of runs of bins; a run that leaves its region is cut at the region end."""
    bin_size = int(getattr(regions, "bin_size", 25))
    if int(np.max(first + n_bins)) > int(regions.n_bins):
        raise AvocadoValueError(f"positions go up to bin {int(np.max(first + n_bins)) - 1} but the "
                                f"region set has {regions.n_bins} bins; expected the model's "
                                f"region set")
    chrom, start = regions.bin_coordinates(first)
    last_chrom, last_start = regions.bin_coordinates(first + n_bins - 1)
    chrom = np.asarray(chrom, dtype=object)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(last_start, dtype=np.int64) + bin_size
    same_chrom = np.asarray(last_chrom, dtype=object) == chrom
    contiguous = same_chrom & (end - start == n_bins * bin_size)
    for i in np.flatnonzero(~contiguous):  # only the few picks that straddle two regions
        row = regions.region_of_bin(int(first[i]))
        region_last = int(row["offset"]) + int(row["n_bins"]) - 1
        _, s = regions.bin_coordinates(np.array([region_last]))
        end[i] = int(np.asarray(s)[0]) + bin_size
    return chrom, start, end


def write_bed(picks: pd.DataFrame, path: str | os.PathLike, name_column: str = "rank") -> None:
    """Write picked positions as BED (chrom, start, end, name, score = gain), atomically.

    Parameters
    ----------
    picks: pandas.DataFrame
        The output of :func:`select_positions` called with ``regions``.
    path: str or os.PathLike
        The BED file to write.
    name_column: str, optional
        The column used as the BED name. Default is ``"rank"``.
    """
    missing = [c for c in ("chrom", "start", "end", name_column) if c not in picks.columns]
    if missing:
        raise AvocadoValueError(
            f"picks lack columns {missing}; call select_positions(..., regions=...) first")
    bed = picks[["chrom", "start", "end"]].copy()
    bed["name"] = picks[name_column].astype(str)
    bed["score"] = picks["gain"].map(lambda g: f"{g:.6g}") if "gain" in picks else "0"
    bed = bed.sort_values(["chrom", "start"], kind="stable")
    _io.write_text(path, bed.to_csv(sep="\t", header=False, index=False))
