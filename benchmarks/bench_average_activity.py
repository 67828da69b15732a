"""Training speed with average activity in the model, against the plain model, in one run.

Trains the small configuration (batch 40,000, the pilot's evaluation settings) on the 24 real
pilot tracks other than E065 / H3K4me3 for a few epochs, with ``average_activity`` None,
``"input"`` and ``"residual"`` in turn (interleaved, ``--reps`` rounds, one thread each), and
prints samples per second and each variant's speed relative to the plain model (the median
over the rounds), with the CPU model. The issue's bar: within 1.5x of the plain model.
Wall times on a shared machine move; the ratios within one run are what count.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_average_activity.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from machine import cpu_model
from pilot import add_positions_option, pilot_tracks

from avocado_core import Avocado

VARIANTS = (None, "input", "residual")




def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs per timed fit")
    p.add_argument("--reps", type=int, default=3, help="interleaved rounds")
    add_positions_option(p)
    args = p.parse_args()

    tracks = pilot_tracks(args.positions)
    train = {k: v for k, v in tracks.items() if k != ("E065", "H3K4me3")}
    n = len(next(iter(train.values())))
    biosamples = sorted({b for b, _ in tracks})
    assays = sorted({a for _, a in tracks})
    torch.set_num_threads(1)
    rates: dict[str | None, list[float]] = {v: [] for v in VARIANTS}
    for rep in range(args.reps + 1):  # round 0 compiles the kernels: not timed
        for variant in VARIANTS:
            model = Avocado.small(biosamples, assays, n, batch_size=40000, learning_rate=0.002,
                                  average_activity=variant, seed=rep, device="cpu")
            t0 = time.perf_counter()
            model.fit(train, n_epochs=args.epochs if rep else 1, progress=False,
                      choose_settings=False)
            seconds = time.perf_counter() - t0
            if rep:
                samples = args.epochs * -(-n // model.batch_size) * model.batch_size
                rates[variant].append(samples / seconds)
    print(f"CPU: {cpu_model()}; torch {torch.__version__}, 1 thread; "
          f"{args.epochs} epochs x {args.reps} interleaved rounds, fit() wall time "
          "(average activity computed inside fit)\n")
    print("| average_activity | samples/s (median) | time vs plain (median of rounds) |")
    print("|---|---:|---:|")
    for variant in VARIANTS:
        ratio = np.median(np.array(rates[None]) / np.array(rates[variant]))
        print(f"| {variant} | {np.median(rates[variant]):,.0f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
