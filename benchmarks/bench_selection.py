"""Time and memory of facility-location selection of biosamples and genome positions.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_selection.py

Biosamples: planted-group factors from the synthetic compendium (300 and 3,000 biosamples).
Positions: an Avocado model over the 1,126,469 positions of the pilot regions (untrained
weights have the same shapes and cost as trained ones), at several ground-set / pool sizes.
Prints Markdown tables; peak RSS is the process's high-water mark after each run.
"""

from __future__ import annotations

import os
import resource
import time

import pandas as pd


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from avocado_core.model import Avocado
    from avocado_core.regions import RegionSet
    from avocado_core.selection import select_biosamples, select_positions
    from avocado_core.synthetic import synthetic_compendium

    print(f"load average {os.getloadavg()[0]:.1f}, cpus {os.cpu_count()}")
    print("\n| biosamples | profiled | k | seconds |")
    print("|---:|---:|---:|---:|")
    for n in (300, 3000):
        comp = synthetic_compendium(n_biosamples=n, n_assays=24, n_positions=10, seed=0)
        emb = pd.DataFrame(comp.truth["biosample"], index=comp.biosamples["name"])
        assay = "H3K27ac"
        profiled = int(comp.observed_mask[:, list(comp.assays["name"]).index(assay)].sum())
        for k in (10, 50):
            t0 = time.perf_counter()
            select_biosamples(emb, comp.observed, assay, k)
            print(f"| {n:,} | {profiled:,} | {k} | {time.perf_counter() - t0:.3f} |", flush=True)

    regions = RegionSet.roadmap_pilot()
    model = Avocado(["b0", "b1"], ["a0"], regions.n_bins, n_nodes=16, n_layers=1, seed=0)
    print(f"\npositions: {regions.n_bins:,}, genome factors 25/40/45 (110 in all); "
          f"RSS before: {rss_mb():.0f} MB")
    print("\n| ground | pool | k | resolution | seconds | peak RSS MB |")
    print("|---:|---:|---:|---|---:|---:|")
    for ground, pool, k, res in ((20_000, 5_000, 100, "all"), (50_000, 10_000, 100, "all"),
                                 (20_000, 5_000, 100, "250bp"), (20_000, 5_000, 1000, "all"),
                                 (100_000, 20_000, 200, "all")):
        t0 = time.perf_counter()
        df = select_positions(model, k, regions=regions, resolution=res, ground_size=ground,
                              pool_size=pool)
        dt = time.perf_counter() - t0
        assert len(df) == k and df["bin"].is_unique
        print(f"| {ground:,} | {pool:,} | {k} | {res} | {dt:.1f} | {rss_mb():.0f} |", flush=True)


if __name__ == "__main__":
    main()
