"""Which training samples each step draws: (experiment index, position) pairs."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import AvocadoValueError

__all__ = ["SAMPLINGS", "Sampler", "position_subset"]

#: Accepted values of ``sampling``.
SAMPLINGS = ("sequential", "permuted", "random")


class Sampler:
    """Draws training batches of (experiment index, position) pairs.

    Each sample pairs a position with one experiment drawn uniformly at random among the
    training experiments, as in the original package.

    Parameters
    ----------
    n_positions: int
        Number of positions.
    n_experiments: int
        Number of training experiments.
    batch_size: int
        Samples per batch.
    sampling: str, optional
        ``"sequential"``: consecutive positions, wrapping around at the end (the scan continues
        across epochs); ``"permuted"``: consecutive chunks of a fresh random permutation of the
        positions for every pass; ``"random"``: positions drawn independently and uniformly
        at random (with replacement). Default is ``"sequential"``.
    seed: int or None, optional
        Seed of the sampler's random generator. Default is None (fresh entropy).
    positions: array-like or None, optional
        Draw only these positions (bin indices, or a boolean mask of ``n_positions``; see
        :func:`position_subset`): the scans and draws above run over them as they would over
        all positions. Default is None: every position.

    Attributes
    ----------
    positions: numpy.ndarray or None
        The sorted positions drawn from (None: all of them).
    n_positions: int
        How many positions the sampler draws from.
    """

    def __init__(
        self,
        n_positions: int,
        n_experiments: int,
        batch_size: int,
        sampling: str = "sequential",
        seed: int | None = None,
        positions: Any = None,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise AvocadoValueError(
                f"unknown sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}"
            )
        if n_positions < 1 or n_experiments < 1 or batch_size < 1:
            raise AvocadoValueError(
                f"sampler needs positive sizes, got n_positions={n_positions}, "
                f"n_experiments={n_experiments}, batch_size={batch_size}"
            )
        self.positions = None if positions is None else position_subset(positions, n_positions)
        self.n_positions = int(n_positions) if self.positions is None else len(self.positions)
        self.n_experiments = int(n_experiments)
        self.batch_size = int(batch_size)
        self.sampling = sampling
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.cursor = 0
        self._pass_seed: int | None = None
        self._perm: np.ndarray | None = None

    # The permutation of a pass is regenerated from its seed, so the state stays tiny.
    def _new_pass(self) -> None:
        self._pass_seed = int(self.rng.integers(0, 2**63 - 1))
        self._perm = np.random.Generator(np.random.PCG64(self._pass_seed)).permutation(
            self.n_positions
        )

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw the next batch.

        Returns
        -------
        experiments: numpy.ndarray, shape=(batch_size,), dtype=int64
        positions: numpy.ndarray, shape=(batch_size,), dtype=int64
        """
        b, n = self.batch_size, self.n_positions
        experiments = self.rng.integers(0, self.n_experiments, size=b, dtype=np.int64)
        if self.sampling == "sequential":
            positions = (self.cursor + np.arange(b, dtype=np.int64)) % n
            self.cursor = int((self.cursor + b) % n)
        elif self.sampling == "random":
            positions = self.rng.integers(0, n, size=b, dtype=np.int64)
        else:
            parts, need = [], b
            while need:
                if self._perm is None or self.cursor >= n:
                    self._new_pass()
                    self.cursor = 0
                take = self._perm[self.cursor : self.cursor + need]
                parts.append(take)
                self.cursor += len(take)
                need -= len(take)
            positions = np.concatenate(parts).astype(np.int64, copy=False)
        if self.positions is not None:  # the scan ran over indices into the subset
            positions = self.positions[positions]
        return experiments, positions

    def state_dict(self) -> dict[str, Any]:
        """JSON-serializable state (to resume the exact same sequence of batches)."""
        return {
            "sampling": self.sampling,
            "cursor": self.cursor,
            "pass_seed": self._pass_seed,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        if state["sampling"] != self.sampling:
            raise AvocadoValueError(
                f"sampler state is for sampling {state['sampling']!r}, not {self.sampling!r}"
            )
        self.cursor = int(state["cursor"])
        self.rng.bit_generator.state = state["rng"]
        self._pass_seed = state["pass_seed"]
        self._perm = None
        if self._pass_seed is not None:
            self._perm = np.random.Generator(np.random.PCG64(self._pass_seed)).permutation(
                self.n_positions
            )


def position_subset(positions: Any, n_positions: int) -> np.ndarray:
    """Positions to train on, as sorted unique bin indices.

    Parameters
    ----------
    positions: array-like of int or of bool
        Bin indices in ``[0, n_positions)``, or a boolean mask of length ``n_positions``.
    n_positions: int
        Number of positions of the model.

    Returns
    -------
    numpy.ndarray, dtype int64
        Sorted, without repeats; never empty.

    Raises
    ------
    AvocadoValueError
        A mask of another length, indices that are not whole numbers or out of range, or no
        position at all.
    """
    arr = np.asarray(positions)
    if arr.dtype == bool:
        if arr.shape != (n_positions,):
            raise AvocadoValueError(
                f"a position mask must have one value per position ({n_positions:,}), "
                f"got shape {arr.shape}"
            )
        out = np.flatnonzero(arr).astype(np.int64)
    elif arr.ndim == 1 and (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        out = np.unique(arr.astype(np.int64))
        if out.size and (out[0] < 0 or out[-1] >= n_positions):
            bad = out[0] if out[0] < 0 else out[-1]
            raise AvocadoValueError(
                f"position {bad:,} is out of range; expected 0 <= position < {n_positions:,}"
            )
    else:
        raise AvocadoValueError(
            f"positions must be bin indices (integers) or a boolean mask, got an array of "
            f"{arr.dtype} with shape {arr.shape}"
        )
    if out.size == 0:
        raise AvocadoValueError("no position to train on: the position subset is empty")
    return out
