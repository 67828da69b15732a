"""A read-only mapping of tracks, each made when it is asked for (read from disk, generated)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from .errors import AvocadoKeyError

__all__ = ["LazyTracks"]


class LazyTracks(Mapping):
    """Read-only mapping ``(biosample, assay) -> track`` over a fixed list of experiments.

    A subclass says how a track is made (:meth:`_load`) and what the error for an experiment
    it lacks says (:meth:`_missing`); membership, iteration and length come from the list.
    """

    def __init__(self, keys: Iterable[tuple[str, str]]) -> None:
        self._keys = list(keys)
        self._key_set = set(self._keys)

    def _load(self, key: tuple[str, str]) -> np.ndarray:
        raise NotImplementedError

    def _missing(self, key: object) -> str:
        raise NotImplementedError

    def __getitem__(self, key: tuple[str, str]) -> np.ndarray:
        if key not in self._key_set:
            raise AvocadoKeyError(self._missing(key))
        return self._load(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._key_set
