"""Small compendia with a planted answer, shared by test modules."""

from __future__ import annotations

import numpy as np


def mean_of_others(n: int = 1500) -> dict[tuple[str, str], np.ndarray]:
    """5 biosamples x 3 assays over ``n`` bins: B0-B3 follow patterns of their own, and B4's
    tracks are the mean of theirs (exactly what average activity imputes), plus noise."""
    rng = np.random.default_rng(1)
    patterns = np.cumsum(rng.normal(size=(4, n)), axis=1) / 10
    tracks = {(f"B{i}", f"A{j}"): np.log1p(np.exp((1 + j) * patterns[i] + j))
              for i in range(4) for j in range(3)}
    for j in range(3):
        tracks["B4", f"A{j}"] = np.mean([tracks[f"B{i}", f"A{j}"] for i in range(4)], axis=0)
    return {k: (v + 0.05 * rng.normal(size=n)).astype(np.float32) for k, v in tracks.items()}
