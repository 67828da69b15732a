"""Average activity inside the model: as an input of the network or as a residual baseline.

In the ENCODE Imputation Challenge the *average activity* of the target assay (its mean over
the other biosamples at each position) had a lower mean MSE than every submitted model, and
the best entries gave it to their models. ``Avocado(..., average_activity=...)`` does this:
the model keeps, per assay, the mean of the assay's training tracks at every position
(:class:`AverageActivity`, saved with the model), and

- ``"input"``: each sample's mean is one more input of the network's first layer (the trainer
  appends it to the sample's 25 bp factors, so the fast path and its compiled kernel run
  unchanged); the model predicts what the network makes of it;
- ``"residual"``: the network trains on ``y - mean`` (:class:`ResidualSource` wraps the
  trainer's data source, so every trainer and sampler works unchanged) and the model predicts
  ``mean + network``.

The mean a training track sees is that of the *other* training tracks of its assay
(leave-one-out), which is what a held-out track of the assay sees: the mean of all the assay's
training tracks. A track whose assay has no other training track sees its assay's mean
(itself). Tracks of a biosample added later (``fit_biosamples``) are not in the mean, so they
see the plain mean. An assay the model saw no track of has no mean; predicting it raises
:class:`~avocado_core.errors.AvocadoValueError`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .baselines import mean_track
from .errors import AvocadoValueError

__all__ = ["AVERAGE_ACTIVITY_MODES", "AverageActivity", "ResidualSource"]

#: Accepted values of ``Avocado(average_activity=...)``; None turns it off.
AVERAGE_ACTIVITY_MODES = ("input", "residual")


class AverageActivity:
    """Per-assay mean of the training tracks at every position (the model's baseline).

    Parameters
    ----------
    mean: numpy.ndarray, shape=(n_assays, n_positions), dtype=float32
        Row ``a``: the mean of assay ``a``'s training tracks; NaN for an assay without any.
    count: numpy.ndarray, shape=(n_assays,), dtype=int64
        How many tracks each row averages (0: no baseline).
    """

    def __init__(self, mean: np.ndarray, count: np.ndarray) -> None:
        mean = np.ascontiguousarray(mean, dtype=np.float32)
        count = np.asarray(count, dtype=np.int64)
        if mean.ndim != 2 or count.shape != (mean.shape[0],):
            raise AvocadoValueError(
                f"average activity has a mean of shape {mean.shape} and counts of shape "
                f"{count.shape}; expected (n_assays, n_positions) and (n_assays,)"
            )
        self.mean = mean
        self.count = count

    @classmethod
    def from_tracks(
        cls,
        assays: Sequence[int],
        arrays: Sequence[np.ndarray],
        n_assays: int,
        n_positions: int,
    ) -> AverageActivity:
        """The mean of each assay's tracks (memory-mapped tracks are read in chunks).

        Parameters
        ----------
        assays: sequence of int
            The assay index of each track.
        arrays: sequence of 1-D arrays
            The tracks, each of length ``n_positions``.
        n_assays, n_positions: int
            Shape of the table; assays without tracks get a NaN row.

        Returns
        -------
        AverageActivity
        """
        assays = np.asarray(assays, dtype=np.int64)
        mean = np.full((n_assays, n_positions), np.nan, dtype=np.float32)
        count = np.bincount(assays, minlength=n_assays).astype(np.int64)
        for a in np.flatnonzero(count):  # a loop over assays, each vectorized over positions
            mean[a] = mean_track([arrays[i] for i in np.flatnonzero(assays == a)])
        return cls(mean, count)

    @property
    def n_positions(self) -> int:
        """Number of positions of the table."""
        return self.mean.shape[1]

    def extended(self, other: AverageActivity) -> AverageActivity:
        """This table with ``other``'s rows appended (for assays added to a model)."""
        return AverageActivity(np.concatenate([self.mean, other.mean]),
                               np.concatenate([self.count, other.count]))

    def with_rows(self, rows: Sequence[int], other: AverageActivity) -> AverageActivity:
        """This table with rows ``rows`` replaced by ``other``'s (assays trained again)."""
        mean, count = self.mean.copy(), self.count.copy()
        mean[list(rows)], count[list(rows)] = other.mean, other.count
        return AverageActivity(mean, count)

    def rows(self, assays: np.ndarray, start: int, end: int, names: Sequence[str]) -> np.ndarray:
        """The baseline of assays ``assays`` over positions ``[start, end)``.

        Parameters
        ----------
        assays: numpy.ndarray of int
            Assay indices.
        start, end: int
            Position range.
        names: sequence of str
            The model's assay names (for the error message).

        Returns
        -------
        numpy.ndarray, shape=(len(assays), end - start), dtype=float32

        Raises
        ------
        AvocadoValueError
            An assay has no training track, so no average activity.
        """
        empty = sorted({names[a] for a in assays if self.count[a] == 0})
        if empty:
            raise AvocadoValueError(
                f"assay(s) {empty} have no average activity: the model was trained on no track "
                "of them; train it with tracks of these assays (fit or fit_assays)"
            )
        return self.mean[assays, start:end]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The table as named tensors (saved with the model)."""
        return {"average_activity.mean": torch.from_numpy(self.mean),
                "average_activity.count": torch.from_numpy(self.count)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> AverageActivity | None:
        """Pop the table's tensors out of ``tensors``; None when they are not there."""
        if "average_activity.mean" not in tensors:
            return None
        mean = tensors.pop("average_activity.mean").numpy()
        count = tensors.pop("average_activity.count").numpy()
        return cls(mean, count)


class ResidualSource:
    """A training data source whose values are ``y - baseline`` (wraps any source).

    Its :meth:`input_values` give the baselines themselves (the ``"input"`` mode).

    Parameters
    ----------
    source: object with ``values(experiments, positions)``
        The trainer's source of observed values.
    activity: AverageActivity
        The baseline table.
    assays: sequence of int
        The assay index of each experiment of ``source``.
    in_mean: sequence of bool
        Whether each experiment's track is one of those ``activity`` averages (its baseline
        then leaves it out, when its assay has another track).
    """

    def __init__(self, source, activity: AverageActivity, assays: Sequence[int],
                 in_mean: Sequence[bool]) -> None:
        self.source = source
        self.activity = activity
        self.assays = np.asarray(assays, dtype=np.int64)
        n = activity.count[self.assays].astype(np.float32)
        loo = np.asarray(in_mean, dtype=bool) & (n >= 2)
        # baseline = mean - loo_weight * (y - mean): the mean of the n - 1 others when loo
        self.loo_weight = np.where(loo, 1.0 / np.maximum(n - 1.0, 1.0), 0.0).astype(np.float32)
        if np.any(activity.count[self.assays] == 0):
            raise AvocadoValueError("a training track's assay has no average activity")

    def input_values(self, experiments: np.ndarray, positions: np.ndarray,
                     y: np.ndarray) -> np.ndarray:
        """Each sample's baseline: what ``average_activity="input"`` feeds the network.

        Parameters
        ----------
        experiments, positions: numpy.ndarray, shape=(n,), dtype=int64
        y: numpy.ndarray, shape=(n,)
            The samples' observed values (a track in the mean is left out of its baseline).

        Returns
        -------
        numpy.ndarray, shape=(n,), dtype=float32
        """
        mean = self.activity.mean[self.assays[experiments], positions]
        return (mean - self.loo_weight[experiments] * (y - mean)).astype(np.float32, copy=False)

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    def values(self, experiments: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Residual values of (experiment, position) pairs: parameters and result as
        :meth:`TrackSource.values <avocado_core.training.TrackSource.values>`."""
        y = self.source.values(experiments, positions)
        mean = self.activity.mean[self.assays[experiments], positions]
        # y - (mean - w (y - mean)) = (1 + w) (y - mean)
        return ((1.0 + self.loo_weight[experiments]) * (y - mean)).astype(np.float32, copy=False)
