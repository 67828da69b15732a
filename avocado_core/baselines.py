"""Simple imputation baselines: the bar a model has to clear.

*Average activity* predicts experiment (b, a) as the mean signal of assay a over the other
biosamples where a was observed. In the ENCODE Imputation Challenge this baseline beat most
submitted methods. *Assay mean* predicts a constant: the mean of every observed value of assay
a in the other biosamples.

Both accept a ``Mapping[(biosample, assay)] -> 1-D array`` or anything with a ``tracks``
attribute (a ``TrackStore``: ``tracks("observed")``; a synthetic compendium: a ``tracks``
dict). Tracks may be memory-mapped; they are read in chunks of positions so that memory stays
bounded for genome-wide tracks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .errors import AvocadoKeyError, AvocadoValueError

__all__ = ["as_track_mapping", "average_activity", "smoothed_average_activity", "assay_mean",
           "mean_track", "windowed_mean"]

#: Window (bins) of ``smoothed_average_activity``: the widest smoothing the README's nested
#: evaluation offers the model (``--select smoothing=1,5,9``).
SMOOTHING_WINDOW = 9

Experiment = tuple[str, str]

#: Positions read at once per track (8 MB of float64 per track and chunk).
CHUNK = 1 << 20


def as_track_mapping(data) -> Mapping[Experiment, np.ndarray]:
    """The observed tracks of ``data`` as a mapping ``(biosample, assay) -> 1-D array``.

    Parameters
    ----------
    data: Mapping or TrackStore or object with a ``tracks`` attribute
        A mapping is returned as is; a ``TrackStore`` gives ``data.tracks("observed")``; an
        object whose ``tracks`` is a mapping (e.g. a synthetic compendium) gives that mapping.

    Returns
    -------
    tracks: Mapping[tuple[str, str], numpy.ndarray]
    """
    if hasattr(data, "tracks"):
        tracks = data.tracks
        data = tracks("observed") if callable(tracks) else tracks
    if not isinstance(data, Mapping):
        raise AvocadoValueError(
            f"data is a {type(data).__name__}; expected a Mapping[(biosample, assay)] -> array "
            "or a TrackStore"
        )
    return data


def _sources(
    tracks: Mapping[Experiment, np.ndarray],
    biosample: str,
    assay: str,
    exclude: Iterable[Experiment] | None,
) -> list[np.ndarray]:
    """The tracks of ``assay`` in biosamples other than ``biosample``, minus ``exclude``."""
    skip = {tuple(e) for e in (exclude or ())}
    keys = [k for k in tracks if k[1] == assay and k[0] != biosample and tuple(k) not in skip]
    if not keys:
        observed = sorted({k[0] for k in tracks if k[1] == assay})
        raise AvocadoKeyError(
            f"no track of assay {assay!r} in a biosample other than {biosample!r} "
            f"(observed in: {observed or 'none'}); average activity needs at least one"
        )
    arrays = [tracks[k] for k in sorted(keys)]
    n = {np.shape(a) for a in arrays}
    if len(n) != 1 or len(next(iter(n))) != 1:
        raise AvocadoValueError(
            f"tracks of assay {assay!r} have shapes {sorted(n)}; expected 1-D tracks of one length"
        )
    return arrays


def _window(n: int, start: int, end: int | None) -> tuple[int, int]:
    end = n if end is None else end
    if not 0 <= start < end <= n:
        raise AvocadoValueError(f"window [{start}, {end}) is not within the {n} bins of a track")
    return start, end


def average_activity(
    data,
    biosample: str,
    assay: str,
    exclude: Iterable[Experiment] | None = None,
    start: int = 0,
    end: int | None = None,
) -> np.ndarray:
    """Average-activity baseline: mean of ``assay`` over the other biosamples, per position.

    NaN values in a source track are skipped (a position where every source is NaN is NaN).

    Parameters
    ----------
    data: Mapping[(biosample, assay)] -> numpy.ndarray, or TrackStore
        Observed tracks (see ``as_track_mapping``).
    biosample: str
        The biosample to predict; its own tracks are never used.
    assay: str
        The assay to predict.
    exclude: iterable of (biosample, assay), optional
        Further experiments not to use (e.g. everything held out in a cross-validation fold).
        Default is None.
    start, end: int, optional
        Bin window to predict, [start, end). Default is the whole track.

    Returns
    -------
    prediction: numpy.ndarray, dtype=float32, shape=(end - start,)
    """
    arrays = _sources(as_track_mapping(data), biosample, assay, exclude)
    return mean_track(arrays, start, end)


def smoothed_average_activity(
    data,
    biosample: str,
    assay: str,
    exclude: Iterable[Experiment] | None = None,
    start: int = 0,
    end: int | None = None,
    window: int = SMOOTHING_WINDOW,
) -> np.ndarray:
    """Average activity as a centred moving mean over ``window`` bins (:func:`windowed_mean`).

    The fair reference for a model whose imputations are smoothed (``Avocado(smoothing=...)``):
    at 25 bp a mean of a few tracks is noisy, and its moving mean is closer to a new track.
    Parameters as :func:`average_activity`, plus ``window`` (default 9 bins, 225 bp); a bin
    window reads half the window past its ends.

    Returns
    -------
    prediction: numpy.ndarray, dtype=float32, shape=(end - start,)
    """
    arrays = _sources(as_track_mapping(data), biosample, assay, exclude)
    start, end = _window(len(arrays[0]), start, end)
    lo, hi = max(0, start - window // 2), min(len(arrays[0]), end + (window - 1) // 2)
    return windowed_mean(mean_track(arrays, lo, hi), window)[start - lo : end - lo]


def mean_track(arrays: Sequence[np.ndarray], start: int = 0, end: int | None = None
               ) -> np.ndarray:
    """Per-position mean of several tracks of one length, NaN values skipped.

    Tracks may be memory-mapped: they are read in chunks of ``CHUNK`` positions.

    Parameters
    ----------
    arrays: sequence of 1-D arrays
        At least one track; all of one length.
    start, end: int, optional
        Bin window, [start, end). Default is the whole track.

    Returns
    -------
    mean: numpy.ndarray, dtype=float32, shape=(end - start,)
        NaN where every track is NaN.
    """
    if len(arrays) == 0:
        raise AvocadoValueError("mean_track needs at least one track, got none")
    start, end = _window(len(arrays[0]), start, end)
    out = np.empty(end - start, dtype=np.float32)
    for s in range(start, end, CHUNK):
        e = min(s + CHUNK, end)
        total = np.zeros(e - s, dtype=np.float64)
        count = np.zeros(e - s, dtype=np.int64)
        for a in arrays:  # a loop over tracks, each step vectorized over positions
            v = np.asarray(a[s:e], dtype=np.float64)
            ok = ~np.isnan(v)
            total += np.where(ok, v, 0.0)
            count += ok
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s - start : e - start] = total / count
    return out


def windowed_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean along the last axis, NaN values skipped.

    Position ``p`` gets the mean of positions ``p - window // 2`` to ``p + (window - 1) // 2``
    that exist (the window is cut at the ends) and are not NaN; NaN where none is.

    Parameters
    ----------
    values: numpy.ndarray, shape=(..., n)
        Rows of values (e.g. one track, or a table of tracks).
    window: int
        Width of the window in bins (1: the values themselves).

    Returns
    -------
    numpy.ndarray, shape=(..., n), dtype=float32
    """
    window = int(window)
    if window < 1:
        raise AvocadoValueError(f"window must be a positive number of bins, got {window}")
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[-1]
    ok = ~np.isnan(values)
    pad = [(0, 0)] * (values.ndim - 1) + [(1, 0)]
    total = np.pad(np.cumsum(np.where(ok, values, 0.0), axis=-1), pad)
    count = np.pad(np.cumsum(ok, axis=-1, dtype=np.int64), pad)
    p = np.arange(n)
    lo = np.maximum(p - window // 2, 0)
    hi = np.minimum(p + (window - 1) // 2 + 1, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (total[..., hi] - total[..., lo]) / (count[..., hi] - count[..., lo])
    return out.astype(np.float32)


def assay_mean(
    data,
    biosample: str,
    assay: str,
    exclude: Iterable[Experiment] | None = None,
    start: int = 0,
    end: int | None = None,
) -> np.ndarray:
    """Per-assay constant baseline: the mean of every observed value of ``assay`` elsewhere.

    Parameters as :func:`average_activity` (``start`` and ``end`` give the window of the
    returned constant array).

    Returns
    -------
    prediction: numpy.ndarray, dtype=float32, shape=(end - start,)
        The constant, repeated.
    """
    arrays = _sources(as_track_mapping(data), biosample, assay, exclude)
    n = len(arrays[0])
    start, end = _window(n, start, end)
    total, count = 0.0, 0
    for a in arrays:
        for s in range(0, n, CHUNK):
            v = np.asarray(a[s : s + CHUNK], dtype=np.float64)
            ok = ~np.isnan(v)
            total += float(v[ok].sum())
            count += int(ok.sum())
    value = total / count if count else np.nan
    return np.full(end - start, value, dtype=np.float32)
