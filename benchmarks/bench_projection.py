"""Time UMAP / PCA projections of genome-factor-shaped data (points x 110 factors).

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_projection.py --sizes 10000 100000

The data are structured like genome factors (a mixture of clusters on a low-dimensional manifold
embedded in 110 dimensions, plus noise), so that UMAP's nearest-neighbour search behaves as on
real factors rather than on isotropic noise. Prints one Markdown table row per variant.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def genome_like(n: int, d: int = 110, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, 8)) * 3
    z = centers[rng.integers(0, 20, n)] + rng.normal(size=(n, 8))
    W = rng.normal(size=(8, d)) / np.sqrt(8)
    return (np.tanh(z) @ W + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--variants", nargs="+",
                        default=["pca", "umap-pca30-lowmem", "umap-raw-lowmem",
                                 "umap-pca30-highmem", "umap-pca30-unseeded"])
    args = parser.parse_args()

    from avocado_core.projection import project

    # Compile numba code once so that it is not charged to the first timing.
    # (5,000 points: above umap-learn's 4,096-point switch to approximate nearest neighbours)
    project(genome_like(5000), method="umap", seed=0)
    numba_threads = os.environ.get("NUMBA_NUM_THREADS", "default")
    print(f"threads: NUMBA_NUM_THREADS={numba_threads}, cpus={os.cpu_count()}")
    print("| points | variant | wall s | CPU s | load avg before |")
    print("|---:|---|---:|---:|---:|")
    for n in args.sizes:
        X = genome_like(n)
        for variant in args.variants:
            kw: dict = {}
            if variant == "pca":
                kw = dict(method="pca")
            elif variant == "umap-pca30-lowmem":
                kw = dict(method="umap", pca_dims=30, low_memory=True)
            elif variant == "umap-raw-lowmem":
                kw = dict(method="umap", pca_dims=None, low_memory=True)
            elif variant == "umap-pca30-highmem":
                kw = dict(method="umap", pca_dims=30, low_memory=False)
            elif variant == "umap-pca30-unseeded":  # parallel, not reproducible
                kw = dict(method="umap", pca_dims=30, low_memory=True, seed=None)
            else:
                raise SystemExit(f"unknown variant {variant!r}")
            kw.setdefault("seed", 0)
            load = os.getloadavg()[0]
            t0, c0 = time.perf_counter(), time.process_time()
            Y = project(X, **kw)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            assert Y.shape == (n, 2) and np.isfinite(Y).all()
            print(f"| {n:,} | {variant} | {dt:.1f} | {dc:.1f} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    main()
