"""Training values in memory: experiment index x position -> float32."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import AvocadoValueError

__all__ = ["TrackSource"]


class TrackSource:
    """Training values: experiment index x position -> float32.

    Tracks are gathered into one contiguous ``(n_experiments, n_positions)`` float32 array when
    that takes at most ``max_dense_bytes``; otherwise they stay as given (e.g. memory-mapped)
    and each batch reads only the positions it needs.

    Parameters
    ----------
    tracks: sequence of 1-D arrays
        One array per experiment, all of the same length.
    max_dense_bytes: int, optional
        Largest stacked array to build. Default is 2 GiB.
    """

    def __init__(self, tracks: Sequence[np.ndarray], max_dense_bytes: int = 2**31) -> None:
        if len(tracks) == 0:
            raise AvocadoValueError("no training tracks: data is empty")
        self.n_experiments = len(tracks)
        self.n_positions = int(len(tracks[0]))
        self.dense: np.ndarray | None = None
        self.tracks = list(tracks)
        if self.n_experiments * self.n_positions * 4 <= max_dense_bytes:
            self.dense = np.empty((self.n_experiments, self.n_positions), dtype=np.float32)
            for i, track in enumerate(self.tracks):
                self.dense[i] = track
            self.tracks = []

    def values(self, experiments: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Values of (experiment, position) pairs.

        What the trainer asks every batch of; the other sources
        (:class:`~avocado_core.streaming.StreamingSource`,
        :class:`~avocado_core.residual.ResidualSource`) answer as this one does.

        Parameters
        ----------
        experiments, positions: numpy.ndarray, shape=(n,), dtype=int64
            The samples: an experiment's index (the order of ``tracks``) and a position.

        Returns
        -------
        numpy.ndarray, shape=(n,), dtype=float32
            The value of each sample.
        """
        if self.dense is not None:
            return self.dense[experiments, positions]
        out = np.empty(len(positions), dtype=np.float32)
        lo, hi = int(positions.min()), int(positions.max()) + 1
        for e in np.unique(experiments):  # a loop over experiments, not positions
            mask = experiments == e
            if hi - lo <= 4 * len(positions):  # contiguous-ish batch: read one window
                out[mask] = np.asarray(self.tracks[e][lo:hi], dtype=np.float32)[
                    positions[mask] - lo
                ]
            else:
                out[mask] = self.tracks[e][positions[mask]]
        return out
