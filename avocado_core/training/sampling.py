"""Which training samples each step draws: (experiment index, position) pairs."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import AvocadoValueError

__all__ = ["SAMPLINGS", "Sampler"]

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
    """

    def __init__(
        self,
        n_positions: int,
        n_experiments: int,
        batch_size: int,
        sampling: str = "sequential",
        seed: int | None = None,
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
        self.n_positions = int(n_positions)
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
