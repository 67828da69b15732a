"""Uncertainty bands around an ensemble's imputation, calibrated on held-out tracks.

The members of an :class:`~avocado_core.ensemble.AvocadoEnsemble` disagree where the data leave
the factors loose, but they agree far more than they are right: an interval spanning the
members (mean +/- 1.645 standard deviations, their "5-95 %" range under a normal spread)
holds the observed signal of a held-out experiment much less often than 90 % of the time.
This module widens it by split conformal calibration ("normalized" scores): on calibration
tracks that no member trained on, the score of each bin is

    |observed - mean| / (spread + floor)

and the band's half-width is ``scale * (spread + floor)``, with ``scale`` the ``level``
quantile of the scores. ``floor`` (the calibration tracks' mean spread) keeps the band from
collapsing where the members happen to agree. The band then holds about ``level`` of the bins
of experiments like the calibration ones; its coverage must be measured on other held-out
tracks (``benchmarks/bench_band.py``), never on the calibration tracks.

A store holds what the band needs: the mean imputation (kind ``"imputed"``) and the members'
spread (kind ``"spread"``), both written by ``impute_experiments(..., spread=True)``, and the
calibration, recorded under the tracks' source in ``imputation.json`` by
:func:`calibrate_store_band`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .errors import AvocadoKeyError, AvocadoValueError
from .store import TrackStore

__all__ = [
    "MEMBER_Z",
    "BandCalibration",
    "band",
    "calibrate_band",
    "calibrate_store_band",
    "coverage",
    "member_band",
    "store_band_calibration",
]

#: Half-width, in members' standard deviations, of their 5-95 % range under a normal spread.
MEMBER_Z = 1.6449


@dataclass(frozen=True)
class BandCalibration:
    """How wide the band is: ``mean +/- scale * (spread + floor)``.

    Attributes
    ----------
    level: float
        The nominal coverage (0.9: a 90 % band).
    scale, floor: float
        See the module docstring.
    experiments: list of [biosample, assay]
        The calibration tracks.
    n_bins: int
        The bins the scale was chosen on.
    """

    level: float
    scale: float
    floor: float
    experiments: list
    n_bins: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BandCalibration:
        return cls(level=float(data["level"]), scale=float(data["scale"]),
                   floor=float(data["floor"]), experiments=[list(e) for e in data["experiments"]],
                   n_bins=int(data["n_bins"]))


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise AvocadoValueError(f"level must be between 0 and 1 (e.g. 0.9), got {level!r}")
    return level


def band(mean: np.ndarray, spread: np.ndarray, calibration: BandCalibration
         ) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated band ``(low, high)`` around ``mean`` (float32 arrays)."""
    half = calibration.scale * (np.asarray(spread, dtype=np.float32) + calibration.floor)
    mean = np.asarray(mean, dtype=np.float32)
    return (mean - half).astype(np.float32), (mean + half).astype(np.float32)


def member_band(mean: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The members' own 5-95 % range (``mean +/- 1.645 spread``), uncalibrated."""
    half = MEMBER_Z * np.asarray(spread, dtype=np.float32)
    mean = np.asarray(mean, dtype=np.float32)
    return (mean - half).astype(np.float32), (mean + half).astype(np.float32)


def coverage(observed: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """The fraction of bins whose observed value lies within [low, high]."""
    observed = np.asarray(observed)
    if observed.size == 0:
        raise AvocadoValueError("coverage of an empty track is undefined")
    return float(np.mean((observed >= low) & (observed <= high)))


def calibrate_band(observed: Sequence[np.ndarray], mean: Sequence[np.ndarray],
                   spread: Sequence[np.ndarray], level: float = 0.9,
                   experiments: Sequence[tuple[str, str]] = ()) -> BandCalibration:
    """Choose the band's scale on calibration tracks (split conformal, normalized scores).

    Parameters
    ----------
    observed, mean, spread: sequences of 1-D arrays
        For each calibration track: its observed signal, the ensemble's mean imputation and the
        members' spread, over the same bins. No member may have trained on these tracks.
    level: float
        Nominal coverage. Default is 0.9.
    experiments: sequence of (biosample, assay)
        Names of the calibration tracks, recorded in the result.

    Returns
    -------
    BandCalibration
    """
    level = _check_level(level)
    if not (len(observed) == len(mean) == len(spread)) or not len(observed):
        raise AvocadoValueError(
            f"calibrate_band needs as many observed, mean and spread tracks (at least one), "
            f"got {len(observed)}, {len(mean)} and {len(spread)}")
    obs = np.concatenate([np.asarray(v, dtype=np.float32) for v in observed])
    mu = np.concatenate([np.asarray(v, dtype=np.float32) for v in mean])
    sd = np.concatenate([np.asarray(v, dtype=np.float32) for v in spread])
    if not (obs.shape == mu.shape == sd.shape):
        raise AvocadoValueError(
            f"observed, mean and spread tracks cover different bins: {obs.shape[0]}, "
            f"{mu.shape[0]}, {sd.shape[0]}")
    floor = float(np.mean(sd))
    if floor <= 0:
        raise AvocadoValueError("the members' spread is 0 everywhere on the calibration tracks; "
                                "is the ensemble made of identical models?")
    scores = np.abs(obs - mu) / (sd + floor)
    # The conformal quantile: the ceil((n + 1) level)-th smallest score.
    n = scores.size
    rank = min(int(np.ceil((n + 1) * level)), n) - 1
    scale = float(np.partition(scores, rank)[rank])
    return BandCalibration(level=level, scale=scale, floor=floor,
                           experiments=[[str(b), str(a)] for b, a in experiments], n_bins=n)


def _source(store: TrackStore, biosample: str, assay: str) -> str:
    cat = store.catalog
    hit = cat[(cat["biosample"] == biosample) & (cat["assay"] == assay)
              & (cat["kind"] == "imputed")]
    if hit.empty:
        raise AvocadoKeyError(f"({biosample!r}, {assay!r}) has no imputed track in {store.path}")
    return str(hit["source"].iloc[0])


def calibrate_store_band(store: TrackStore, experiments: Sequence[tuple[str, str]],
                         level: float = 0.9) -> BandCalibration:
    """Calibrate the band of a store's ensemble imputations and record it in the store.

    Parameters
    ----------
    store: TrackStore
        It must hold, for each calibration experiment, the observed track and the "imputed"
        and "spread" tracks of one source (``impute_experiments(..., spread=True)``).
    experiments: sequence of (biosample, assay)
        Calibration tracks; none may be among the experiments the models trained on (a band
        fitted on training fit would be far too narrow). Report coverage on other tracks.
    level: float
        Nominal coverage. Default is 0.9.

    Returns
    -------
    BandCalibration
        Also recorded in ``imputation.json`` under the tracks' source, where
        :func:`store_band_calibration` finds it.
    """
    experiments = [(str(b), str(a)) for b, a in experiments]
    if not experiments:
        raise AvocadoValueError("name at least one calibration experiment (biosample, assay)")
    sources = {_source(store, b, a) for b, a in experiments}
    if len(sources) != 1:
        raise AvocadoValueError(f"the calibration tracks were imputed by different sources "
                                f"{sorted(sources)}; calibrate one source at a time")
    source = sources.pop()
    entry = store.imputation_info.get("sources", {}).get(source, {})
    trained = {tuple(k) for k in entry.get("trained_on", [])}
    if not trained:
        raise AvocadoValueError(
            f"the store does not record which experiments {source!r} trained on, so it cannot "
            "be checked that the calibration tracks were held out; re-impute with a model "
            "saved by this version")
    seen = [e for e in experiments if e in trained]
    if seen:
        raise AvocadoValueError(
            f"calibration experiments {seen} were used for training; calibrate on held-out "
            "tracks only")
    observed, mean, spread = [], [], []
    for b, a in experiments:
        for kind, out in (("observed", observed), ("imputed", mean), ("spread", spread)):
            if not store.has_track(b, a, kind):
                raise AvocadoKeyError(
                    f"({b!r}, {a!r}) has no {kind} track in {store.path}; calibration needs the "
                    "observed signal and an ensemble's imputed and spread tracks "
                    "(impute_experiments(..., spread=True))")
            out.append(store.track(b, a, kind))
    calibration = calibrate_band(observed, mean, spread, level, experiments)
    store.update_imputation_source(source, band=calibration.to_dict())
    return calibration


def store_band_calibration(store: TrackStore, source: str) -> BandCalibration | None:
    """The band calibration recorded for a source's imputations, or None."""
    entry = store.imputation_info.get("sources", {}).get(source, {})
    return BandCalibration.from_dict(entry["band"]) if entry.get("band") else None
