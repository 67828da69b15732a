"""A synthetic epigenomic compendium with planted structure, for scale tests, benchmarks and demos.

The generator mimics what a Roadmap- or ENCODE-like compendium looks like to Avocado:

- **Positions** are cut into segments of chromatin states (quiescent, promoter, enhancer,
  transcribed, polycomb, heterochromatin, insulator) with state-typical lengths (an enhancer
  spans ~0.5 kb, a transcribed domain ~10 kb), peak-shaped profiles and varying strengths.
- **Biosamples** fall into planted groups with anatomy-like labels (``BLOOD``, ``BRAIN``, ...);
  a biosample's factor is its group centre plus noise. Whether a regulatory element is active in
  a biosample is ``sigmoid(<biosample factor, element factor> + state offset)``: promoters are
  mostly active everywhere, enhancers are group-specific, polycomb marks the inactive promoters.
- **Assays** belong to families (promoter marks, enhancer marks, transcription, polycomb,
  heterochromatin, accessibility, insulator); an assay's response to each state, in its active
  and inactive form, is its family's response with per-assay jitter.
- **Signal**: ``arcsinh(exp(z + noise))`` where ``z = bias + amplitude * response(state,
  activity)`` and the noise is spatially smoothed: mostly near 0.1-0.3, a heavy right tail up to
  about 4-6, lag-1 autocorrelation above 0.8, like the real arcsinh(-log10 p) tracks.
- **Sparsity**: a chosen fraction of the experiments is observed, biased towards popular assays
  (the first assays, like the Roadmap core marks) and towards well-studied biosamples; every
  biosample and every assay has at least one observed experiment.

Tracks are generated on demand, one vectorized pass per experiment, from a per-experiment
random stream, so ``compendium.tracks[(b, a)]`` is deterministic, independent of access order,
and a compendium of 7,200 experiments over millions of positions never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._lazy_tracks import LazyTracks
from .errors import AvocadoKeyError, AvocadoValueError

__all__ = ["synthetic_compendium", "layout_compendium", "SyntheticCompendium", "PlantedLayout",
           "STATES", "ANATOMIES", "ASSAY_FAMILIES"]

#: Chromatin states, their mean segment length in 25 bp bins, genome fraction of segments,
#: whether a segment's activity varies between biosamples, and its activity offset.
STATES = pd.DataFrame(
    [
        ("quiescent", 120, 0.34, False, 0.0),
        ("promoter", 48, 0.10, True, 1.5),
        ("enhancer", 24, 0.26, True, -0.7),
        ("transcribed", 400, 0.09, True, 0.5),
        ("polycomb", 160, 0.07, True, 0.0),
        ("heterochromatin", 300, 0.05, False, 0.0),
        ("insulator", 16, 0.09, False, 0.0),
    ],
    columns=["state", "mean_bins", "segment_fraction", "variable", "offset"],
)
#: Position classes (as in ``Annotations.classify_bins``) of each state, for colouring / strata.
STATE_CLASS = {"quiescent": "other", "promoter": "promoter", "enhancer": "other",
               "transcribed": "gene body", "polycomb": "other", "heterochromatin": "other",
               "insulator": "other"}
_PEAKED = np.array([False, True, True, False, False, False, True])

ANATOMIES = ["BLOOD", "BRAIN", "ESC", "LIVER", "HEART", "LUNG", "MUSCLE", "SKIN", "GI_INTESTINE",
             "KIDNEY", "PANCREAS", "BREAST", "THYMUS", "SPLEEN", "BONE", "ADRENAL"]

#: Assay families: response to each state (columns of STATES) when the element is active ...
_ACTIVE = {
    "promoter mark":   [0, 4.2, 1.2, 0.4, 0, 0, 0],
    "enhancer mark":   [0, 2.0, 3.4, 0.2, 0, 0, 0],
    "transcription":   [0, 0.4, 0, 1.9, 0, 0, 0],
    "polycomb":        [0, 0, 0, 0, 0, 0, 0],
    "heterochromatin": [0, 0, 0, 0, 0, 1.9, 0],
    "accessibility":   [0, 3.8, 2.8, 0, 0, 0, 3.0],
    "insulator":       [0, 0.6, 0, 0, 0, 0, 4.0],
}
#: ... and when it is inactive in that biosample.
_INACTIVE = {
    "promoter mark":   [0, 0, 0, 0, 0, 0.4, 0],
    "enhancer mark":   [0, 0, 0, 0, 0, 0, 0],
    "transcription":   [0, 0, 0, 0, 0, 0.3, 0],
    "polycomb":        [0, 2.4, 0.8, 0, 2.0, 0.3, 0],
    "heterochromatin": [0, 0, 0, 0, 0, 1.9, 0],
    "accessibility":   [0, 0, 0, 0, 0, 0, 3.0],
    "insulator":       [0, 0, 0, 0, 0, 0, 4.0],
}
# Roadmap-like names in order of popularity (the first five are Roadmap's core marks).
_ASSAY_NAMES = [
    ("H3K4me3", "promoter mark"), ("H3K27me3", "polycomb"), ("H3K36me3", "transcription"),
    ("H3K4me1", "enhancer mark"), ("H3K9me3", "heterochromatin"), ("H3K27ac", "enhancer mark"),
    ("H3K9ac", "promoter mark"), ("DNase", "accessibility"), ("H3K4me2", "promoter mark"),
    ("H3K79me2", "transcription"), ("H4K20me1", "transcription"), ("H2A.Z", "promoter mark"),
    ("CTCF", "insulator"), ("ATAC", "accessibility"), ("EZH2", "polycomb"),
    ("H4K20me3", "heterochromatin"), ("H2BK120ac", "enhancer mark"), ("POLR2A", "promoter mark"),
    ("H3K79me1", "transcription"), ("RAD21", "insulator"), ("EP300", "enhancer mark"),
    ("SUZ12", "polycomb"), ("H4K8ac", "enhancer mark"), ("CBX3", "heterochromatin"),
]
ASSAY_FAMILIES = list(_ACTIVE)

_N_BIOSAMPLE_FACTORS = 8
_BACKGROUND = np.log(0.2)  # exp(z) of the quiescent background, before noise


class _Tracks(LazyTracks):
    """Read-only mapping (biosample, assay) -> float32 track, generated on access."""

    def __init__(self, owner: "SyntheticCompendium", keys: list[tuple[str, str]]):
        super().__init__(keys)
        self._owner = owner

    def _load(self, key: tuple[str, str]) -> np.ndarray:
        return self._owner.track(*key)

    def _missing(self, key: object) -> str:
        return (f"unknown experiment {key!r}; expected a (biosample, assay) pair of this "
                f"compendium ({len(self._keys)} experiments)")


@dataclass
class SyntheticCompendium:
    """A generated compendium; build it with :func:`synthetic_compendium` or
    :func:`layout_compendium`.

    Attributes
    ----------
    biosamples: pandas.DataFrame
        Columns ``name``, ``group`` (planted group, int), and its label and metadata:
        ``anatomy``, ``description`` (:func:`synthetic_compendium`) or the layout's columns.
    assays: pandas.DataFrame
        Columns ``name``, ``family`` (and the layout's columns).
    n_positions: int
        Track length in 25 bp bins.
    observed_mask: numpy.ndarray, shape=(n_biosamples, n_assays), bool
        Which experiments are observed.
    truth: dict
        The generating factors: ``biosample`` (n_biosamples, 8), ``group_centers``,
        ``assay_active`` / ``assay_inactive`` (n_assays, n_states), ``assay_bias``,
        ``state`` (n_positions,) int, ``position`` (n_positions, 8) element factors,
        ``amplitude`` (n_positions,), ``state_names``.
    seed: int
    origin: str
        Whose layout the signal was generated over ("random layout" for
        :func:`synthetic_compendium`).
    """

    biosamples: pd.DataFrame
    assays: pd.DataFrame
    n_positions: int
    observed_mask: np.ndarray
    truth: dict
    seed: int
    origin: str = "random layout"
    _b_index: dict = field(default_factory=dict, repr=False)
    _a_index: dict = field(default_factory=dict, repr=False)
    #: The last biosample's activity: tracks are generated biosample by biosample (``observed``
    #: is biosample-major), and the activity is most of a track's cost.
    _last_activity: tuple = field(default=(None, None), repr=False)

    def __post_init__(self) -> None:
        self._b_index = {b: i for i, b in enumerate(self.biosamples["name"])}
        self._a_index = {a: j for j, a in enumerate(self.assays["name"])}

    def __repr__(self) -> str:
        return (f"SyntheticCompendium({len(self.biosamples)} biosamples in "
                f"{self.biosamples['group'].nunique()} groups, {len(self.assays)} assays, "
                f"{self.n_positions:,} positions, {len(self.observed)} observed experiments)")

    @property
    def description(self) -> str:
        """One line saying what the signal is, for labels (stores, workspaces, the app)."""
        return (f"synthetic signal (avocado_core.synthetic, seed {self.seed}; layout: "
                f"{self.origin}), not measured data")

    @property
    def observed(self) -> list[tuple[str, str]]:
        """Observed experiments as (biosample, assay) pairs, biosample-major order."""
        bi, ai = np.nonzero(self.observed_mask)
        names_b, names_a = self.biosamples["name"].to_numpy(), self.assays["name"].to_numpy()
        return [(str(names_b[i]), str(names_a[j])) for i, j in zip(bi, ai)]

    @property
    def missing(self) -> list[tuple[str, str]]:
        """Experiments that are not observed."""
        bi, ai = np.nonzero(~self.observed_mask)
        names_b, names_a = self.biosamples["name"].to_numpy(), self.assays["name"].to_numpy()
        return [(str(names_b[i]), str(names_a[j])) for i, j in zip(bi, ai)]

    @property
    def tracks(self) -> Mapping:
        """ALL experiments (observed and not): a lazy mapping (biosample, assay) -> float32."""
        names_b, names_a = self.biosamples["name"], self.assays["name"]
        return _Tracks(self, [(str(b), str(a)) for b in names_b for a in names_a])

    @property
    def observed_tracks(self) -> Mapping:
        """The observed experiments only: what a model is trained on."""
        return _Tracks(self, self.observed)

    def position_classes(self) -> np.ndarray:
        """An annotation-like class per position ("promoter", "gene body", "other")."""
        names = np.array([STATE_CLASS[s] for s in self.truth["state_names"]], dtype=object)
        return names[self.truth["state"]]

    def activity(self, biosample: str) -> np.ndarray:
        """Activity in [0, 1] of each position's element in a biosample (the planted truth)."""
        i = self._biosample_index(biosample)
        cached, act = self._last_activity
        if cached == i:
            return act.copy()
        t = self.truth
        offset = STATES["offset"].to_numpy()[t["state"]]
        logit = t["position"] @ t["biosample"][i] * (3.0 / np.sqrt(_N_BIOSAMPLE_FACTORS)) + offset
        act = 1.0 / (1.0 + np.exp(-logit))
        act = np.where(STATES["variable"].to_numpy()[t["state"]], act, 1.0)
        self._last_activity = (i, act)  # one tuple: a concurrent reader sees old or new
        return act.copy()

    def _biosample_index(self, biosample: str) -> int:
        try:
            return self._b_index[biosample]
        except KeyError:
            raise AvocadoKeyError(f"unknown biosample {biosample!r}; expected one of "
                                  f"{_preview(self._b_index)}") from None

    def track(self, biosample: str, assay: str) -> np.ndarray:
        """The signal of one experiment (observed or not), arcsinh scale.

        Parameters
        ----------
        biosample, assay: str

        Returns
        -------
        values: numpy.ndarray, shape=(n_positions,), float32
        """
        i = self._biosample_index(biosample)
        try:
            j = self._a_index[assay]
        except KeyError:
            raise AvocadoKeyError(
                f"unknown assay {assay!r}; expected one of {_preview(self._a_index)}"
            ) from None
        t = self.truth
        rng = np.random.default_rng([self.seed, 1, i, j])
        state = t["state"]
        act = self.activity(biosample)
        response = t["assay_active"][j][state] * act + t["assay_inactive"][j][state] * (1.0 - act)
        quality = np.exp(0.15 * rng.standard_normal())
        z = t["assay_bias"][j] + quality * t["amplitude"] * response
        z += _smooth_noise(rng, self.n_positions, sd=0.45, width=4)
        return np.arcsinh(np.exp(z)).astype(np.float32)

    def tensor(self, biosamples: list[str] | None = None, assays: list[str] | None = None,
               start: int = 0, end: int | None = None) -> np.ndarray:
        """Tracks stacked as an array (biosamples x assays x positions[start:end]).

        Parameters
        ----------
        biosamples, assays: list of str or None, optional
            Default is all.
        start, end: int, optional
            Position range. Default is all positions.

        Returns
        -------
        values: numpy.ndarray, shape=(n_b, n_a, end - start), float32
        """
        bs = list(self.biosamples["name"]) if biosamples is None else list(biosamples)
        as_ = list(self.assays["name"]) if assays is None else list(assays)
        end = self.n_positions if end is None else end
        out = np.empty((len(bs), len(as_), end - start), dtype=np.float32)
        for bi, b in enumerate(bs):
            for ai, a in enumerate(as_):
                out[bi, ai] = self.track(b, a)[start:end]
        return out

    def write_store(self, path: Any, regions: Any = None, *, exist_ok: bool = False,
                    progress: bool = True) -> Any:
        """Write the observed tracks, with biosample and assay metadata, into a new TrackStore.

        The store records that its signal is synthetic (``store.info["synthetic"]``: the
        :attr:`description`, the layout's origin and the seed).

        Parameters
        ----------
        path: str or os.PathLike
            The store directory to create.
        regions: RegionSet or None, optional
            Must have ``n_positions`` bins. None uses one synthetic chromosome,
            ``RegionSet.from_chrom_sizes({"chr1": n_positions * 25})``.
        exist_ok: bool, optional
            Passed to ``TrackStore.create``. Default is False.
        progress: bool, optional
            Show a tqdm bar. Default is True.

        Returns
        -------
        store: TrackStore
        """
        from .regions import RegionSet
        from .store import TrackStore

        if regions is None:
            regions = RegionSet.from_chrom_sizes({"chr1": self.n_positions * 25})
        if int(regions.n_bins) != self.n_positions:
            raise AvocadoValueError(f"the region set has {regions.n_bins} bins; expected "
                                    f"{self.n_positions} (one per synthetic position)")
        biosamples = self.biosamples.set_index("name")
        assays = self.assays.set_index("name")
        store = TrackStore.create(path, regions, biosamples=biosamples, assays=assays,
                                  exist_ok=exist_ok)
        store.update_info(synthetic={"description": self.description, "layout": self.origin,
                                     "seed": self.seed})
        observed = self.observed
        if progress:
            from tqdm.auto import tqdm
            observed = tqdm(observed, desc="writing synthetic tracks", unit="track")
        # One catalog commit for all tracks; each track is generated as it is written.
        store.add_tracks(((b, a, self.track(b, a)) for b, a in observed), kind="observed",
                         source=f"synthetic seed={self.seed}", transform="arcsinh",
                         overwrite=exist_ok)
        return store


def _preview(names: Any, limit: int = 8) -> str:
    names = list(names)
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(map(str, names[:limit])) + more


def _smooth_noise(rng: np.random.Generator, n: int, sd: float, width: int) -> np.ndarray:
    """Gaussian noise with a moving-average kernel of ``width`` bins, rescaled to ``sd``."""
    e = rng.standard_normal(n + width - 1)
    c = np.concatenate([[0.0], np.cumsum(e)])
    return (c[width:] - c[:-width]) * (sd / np.sqrt(width))


def _segments(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """State, start and length of segments tiling n positions."""
    mean = STATES["mean_bins"].to_numpy(float)
    frac = STATES["segment_fraction"].to_numpy(float)
    # Draw enough segments: expected length per segment is sum(frac * mean).
    m = int(n / float(frac @ mean) * 1.3) + 16
    while True:
        state = rng.choice(len(STATES), size=m, p=frac / frac.sum())
        length = rng.geometric(1.0 / mean[state])
        if length.sum() >= n:
            break
        m *= 2
    ends = np.cumsum(length)
    k = int(np.searchsorted(ends, n)) + 1
    state, length = state[:k], length[:k].copy()
    length[-1] -= int(ends[k - 1] - n)
    starts = np.concatenate([[0], np.cumsum(length)[:-1]])
    return state, starts, length


def _group_sizes(rng: np.random.Generator, n: int, n_groups: int) -> np.ndarray:
    base = min(2, n // n_groups)
    weights = rng.dirichlet(np.full(n_groups, 3.0))
    return base + rng.multinomial(n - base * n_groups, weights)


def _observed_mask(rng: np.random.Generator, n_b: int, n_a: int, fraction: float) -> np.ndarray:
    popularity = np.log(1.0 / np.arange(1, n_a + 1) ** 0.8)
    depth = rng.normal(0, 0.8, n_b)
    score = popularity[None, :] + depth[:, None] + rng.gumbel(size=(n_b, n_a))
    mask = np.zeros((n_b, n_a), dtype=bool)
    # Every biosample gets its best-scoring assay and every assay its best-scoring biosample ...
    mask[np.arange(n_b), score.argmax(axis=1)] = True
    mask[score.argmax(axis=0), np.arange(n_a)] = True
    # ... then the highest scores fill up to the target count.
    target = max(int(round(fraction * n_b * n_a)), int(mask.sum()))
    order = np.argsort(-np.where(mask, -np.inf, score), axis=None)[: target - int(mask.sum())]
    mask.flat[order] = True
    return mask


def _check_positive(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise AvocadoValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_spread(group_spread: float) -> None:
    if group_spread < 0:
        raise AvocadoValueError(f"group_spread must be >= 0, got {group_spread}")


def _plant(rng: np.random.Generator, group: np.ndarray, n_groups: int, families: list[str],
           n_positions: int, group_spread: float, subgroup: np.ndarray | None = None) -> dict:
    """The generating factors (``SyntheticCompendium.truth``) of planted groups and families.

    A biosample's factor is its group centre plus ``group_spread`` times noise; with
    ``subgroup``, the biosamples of one subgroup share a draw of that noise and keep a half-size
    one of their own, so they sit together inside their group.
    """
    D = _N_BIOSAMPLE_FACTORS
    centers = rng.standard_normal((n_groups, D))
    offset = group_spread * rng.standard_normal((len(group), D))
    if subgroup is not None:
        shared = group_spread * rng.standard_normal((int(subgroup.max()) + 1, D))
        offset = shared[subgroup] + 0.5 * offset
    B = centers[group] + offset

    # Assays: their family's response with per-assay jitter.
    n_assays = len(families)
    jitter = lambda shape: np.exp(0.2 * rng.standard_normal(shape))  # noqa: E731
    active = np.array([_ACTIVE[f] for f in families]) * jitter((n_assays, len(STATES)))
    inactive = np.array([_INACTIVE[f] for f in families]) * jitter((n_assays, len(STATES)))
    bias = _BACKGROUND + 0.25 * rng.standard_normal(n_assays)

    # Positions: state segments with element factors and peak-shaped amplitudes.
    seg_state, seg_start, seg_len = _segments(rng, n_positions)
    seg_of = np.repeat(np.arange(len(seg_state)), seg_len)
    state = seg_state[seg_of]
    seg_factor = rng.standard_normal((len(seg_state), D))
    seg_amp = np.exp(0.3 * rng.standard_normal(len(seg_state)))
    t = (np.arange(n_positions) - seg_start[seg_of] + 0.5) / seg_len[seg_of]
    shape = np.where(_PEAKED[state], 0.3 + 0.7 * np.sin(np.pi * t), 1.0)
    amplitude = seg_amp[seg_of] * shape

    return {
        "biosample": B.astype(np.float32),
        "group_centers": centers.astype(np.float32),
        "assay_active": active.astype(np.float32),
        "assay_inactive": inactive.astype(np.float32),
        "assay_bias": bias.astype(np.float32),
        "state": state.astype(np.int8),
        "state_names": list(STATES["state"]),
        "position": seg_factor[seg_of].astype(np.float32),
        "amplitude": amplitude.astype(np.float32),
    }


def synthetic_compendium(n_biosamples: int = 300, n_assays: int = 24, n_positions: int = 100_000,
                         n_groups: int = 8, observed_fraction: float = 0.3, seed: int = 0,
                         group_spread: float = 0.35) -> SyntheticCompendium:
    """Generate a compendium with planted biosample groups and assay families.

    Parameters
    ----------
    n_biosamples: int, optional
        Number of biosamples (at least ``n_groups``). Default is 300.
    n_assays: int, optional
        Number of assays; the first 24 have Roadmap-like names (H3K4me3, H3K27me3, ...), more
        are named ``<family>-<k>``. Default is 24.
    n_positions: int, optional
        Track length in 25 bp bins. Default is 100,000 (2.5 Mb).
    n_groups: int, optional
        Number of planted biosample groups (anatomy labels). Default is 8.
    observed_fraction: float, optional
        Fraction of experiments observed, in (0, 1]. It is raised if needed so that every
        biosample and assay has at least one observed experiment. Default is 0.3 (Roadmap had
        about 1/3 of its 127 x 24 tensor).
    seed: int, optional
        Everything is a deterministic function of the arguments. Default is 0.
    group_spread: float, optional
        Standard deviation of biosample factors around their group centre (the centres have
        unit scale); larger values blur the groups. Default is 0.35.

    Returns
    -------
    compendium: SyntheticCompendium

    See Also
    --------
    layout_compendium: the same signal over a given layout (names, groups, observed pattern).
    """
    _check_positive(n_biosamples=n_biosamples, n_assays=n_assays, n_positions=n_positions,
                    n_groups=n_groups)
    if n_groups > n_biosamples:
        raise AvocadoValueError(f"n_groups={n_groups} exceeds n_biosamples={n_biosamples}; "
                                f"expected at most one group per biosample")
    if not 0.0 < observed_fraction <= 1.0:
        raise AvocadoValueError(f"observed_fraction must be in (0, 1], got {observed_fraction}")
    _check_spread(group_spread)

    rng = np.random.default_rng([seed, 0])

    # Biosamples: planted groups, shuffled so that groups are not contiguous.
    sizes = _group_sizes(rng, n_biosamples, n_groups)
    group = rng.permutation(np.repeat(np.arange(n_groups), sizes))
    labels = [ANATOMIES[g % len(ANATOMIES)]
              + ("" if g < len(ANATOMIES) else f"_{g // len(ANATOMIES) + 1}")
              for g in range(n_groups)]
    width = max(3, len(str(n_biosamples)))
    biosamples = pd.DataFrame({
        "name": [f"S{i + 1:0{width}d}" for i in range(n_biosamples)],
        "group": group.astype(np.int64),
        "anatomy": [labels[g] for g in group],
    })
    biosamples["description"] = [f"synthetic {a.lower().replace('_', ' ')} biosample"
                                 for a in biosamples["anatomy"]]

    # Assays: Roadmap-like names first, then one per family in turn.
    names, families = [], []
    for j in range(n_assays):
        if j < len(_ASSAY_NAMES):
            nm, fam = _ASSAY_NAMES[j]
        else:
            fam = ASSAY_FAMILIES[j % len(ASSAY_FAMILIES)]
            nm = f"{fam.replace(' ', '-')}-{j + 1}"
        names.append(nm)
        families.append(fam)
    assays = pd.DataFrame({"name": names, "family": families})

    truth = _plant(rng, group, n_groups, families, n_positions, group_spread)
    mask = _observed_mask(rng, n_biosamples, n_assays, observed_fraction)
    return SyntheticCompendium(biosamples=biosamples, assays=assays, n_positions=int(n_positions),
                               observed_mask=mask, truth=truth, seed=int(seed))


@dataclass(frozen=True)
class PlantedLayout:
    """A given layout for :func:`layout_compendium`: names, planted groups, observed pattern.

    Attributes
    ----------
    biosamples: pandas.DataFrame
        Indexed by biosample name; the column named by ``group`` holds each biosample's planted
        group label (e.g. its type), the one named by ``subgroup`` (if any) a finer label whose
        biosamples share most of their factor (e.g. the donors of one tissue). Every column is
        kept as metadata.
    assays: pandas.DataFrame
        Indexed by assay name; column ``family``: one of :data:`ASSAY_FAMILIES`, the signal's
        response to the chromatin states. Every column is kept as metadata.
    observed_mask: numpy.ndarray, shape=(n_biosamples, n_assays), bool
        Which experiments are observed.
    group: str
        The column of planted group labels.
    subgroup: str or None
        The column of subgroup labels. Default is None.
    origin: str
        What the layout is (recorded with the stores written from it). Default is "given
        layout".
    """

    biosamples: pd.DataFrame
    assays: pd.DataFrame
    observed_mask: np.ndarray
    group: str
    subgroup: str | None = None
    origin: str = "given layout"

    def check(self) -> None:
        """Raise AvocadoValueError when the tables and the mask do not fit together."""
        shape = (len(self.biosamples), len(self.assays))
        if np.shape(self.observed_mask) != shape:
            raise AvocadoValueError(f"observed_mask has shape {np.shape(self.observed_mask)}; "
                                    f"expected {shape} (biosamples x assays)")
        for what, table in (("biosample", self.biosamples), ("assay", self.assays)):
            if not table.index.is_unique:
                dup = table.index[table.index.duplicated()][0]
                raise AvocadoValueError(f"{what} name {dup!r} appears twice in the layout")
        for column in (self.group, self.subgroup):
            if column is not None and column not in self.biosamples.columns:
                raise AvocadoValueError(f"the layout's biosamples have no column {column!r}; "
                                        f"columns: {list(self.biosamples.columns)}")
        bad = sorted(set(self.assays.get("family", pd.Series(["(no family column)"])))
                     - set(ASSAY_FAMILIES))
        if bad:
            raise AvocadoValueError(f"unknown assay families {bad}; expected {ASSAY_FAMILIES}")


def layout_compendium(layout: PlantedLayout, n_positions: int = 100_000, seed: int = 0,
                      group_spread: float = 0.35) -> SyntheticCompendium:
    """Generate a compendium over a given layout: its names, groups and observed pattern.

    The signal is that of :func:`synthetic_compendium` (chromatin-state segments, group-specific
    element activity, family responses, arcsinh-like noise); the biosamples, their planted
    groups, the assays, their families and which experiments are observed come from
    ``layout`` (e.g. :meth:`avocado_core.encode_layout.EncodeLayout.planted`).

    Parameters
    ----------
    layout: PlantedLayout
    n_positions: int, optional
        Track length in 25 bp bins. Default is 100,000 (2.5 Mb).
    seed: int, optional
        Everything is a deterministic function of the arguments. Default is 0.
    group_spread: float, optional
        As in :func:`synthetic_compendium`. Default is 0.35.

    Returns
    -------
    compendium: SyntheticCompendium
        ``biosamples``: name, group (int code of the sorted group labels) and the layout's
        columns; ``assays``: name and the layout's columns.
    """
    layout.check()
    _check_positive(n_positions=n_positions)
    _check_spread(group_spread)
    rng = np.random.default_rng([seed, 0])
    group, labels = pd.factorize(layout.biosamples[layout.group].astype(str), sort=True)
    subgroup = (None if layout.subgroup is None
                else pd.factorize(layout.biosamples[layout.subgroup].astype(str))[0])
    biosamples = pd.concat([pd.DataFrame({"name": layout.biosamples.index.astype(str),
                                          "group": group.astype(np.int64)}),
                            layout.biosamples.reset_index(drop=True)], axis=1)
    assays = layout.assays.rename_axis("name").reset_index()
    assays["name"] = assays["name"].astype(str)
    truth = _plant(rng, group, len(labels), list(assays["family"]), n_positions, group_spread,
                   subgroup)
    return SyntheticCompendium(biosamples=biosamples, assays=assays, n_positions=int(n_positions),
                               observed_mask=np.asarray(layout.observed_mask, dtype=bool).copy(),
                               truth=truth, seed=int(seed), origin=layout.origin)
