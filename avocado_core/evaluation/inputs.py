"""The tracks an evaluation reads: checked to be of one length, and a digest of their values
for the cache keys of finished folds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from .. import baselines as _baselines
from ..errors import AvocadoValueError
from ..folds import Experiment

__all__ = ["data_fingerprint", "tracks_of_one_length"]


def tracks_of_one_length(data) -> dict[Experiment, np.ndarray]:
    """The tracks of a store or a mapping, checked to be of one length."""
    tracks = _baselines.as_track_mapping(data)
    lengths = {len(v) for v in tracks.values()}
    if len(lengths) != 1:
        raise AvocadoValueError(f"tracks have lengths {sorted(lengths)}; expected one length")
    return tracks


#: Bytes of a track hashed at a time (memory-mapped tracks are read chunk by chunk).
_HASH_CHUNK = 1 << 24


def data_fingerprint(tracks: Mapping[Experiment, np.ndarray]) -> str:
    """A digest of every track's name, type and values: the part of a cache key that makes a
    rerun over changed tracks (same names and lengths, other values) train again.

    It reads every value once (BLAKE2b, about a second a GB here), which is small beside the
    many passes of training over the same tracks.
    """
    digest = hashlib.blake2b(digest_size=12)
    for key in sorted(tracks):
        values = np.ascontiguousarray(tracks[key])
        digest.update(json.dumps([list(key), values.dtype.str, len(values)]).encode())
        raw = values.reshape(-1).view(np.uint8)
        for lo in range(0, raw.size, _HASH_CHUNK):
            digest.update(raw[lo : lo + _HASH_CHUNK])
    return digest.hexdigest()
