"""CPU imputation speed: the compiled kernel against torch's chunked forward pass, in one run.

For several network shapes (the bench_chromosome / original-fixture network 2 x 64, the small
configuration 1 x 128, narrow and wide two-layer networks, one wide layer and the paper's
2 x 2048), imputes three experiments over positions ``[37, n - 13)`` (not aligned to 250 bp
or 5 kbp rows) of a randomly initialised model with each of ``Avocado``'s two CPU paths,
interleaved, ``--reps`` rounds; prints the best rate of each in million experiment-bins per
second of wall time and per CPU-second (all threads; steadier than wall time where other work
shares the cores), the ratios, the largest difference between their predictions (relative to
the largest value) and the path ``predict_many`` takes.

Then the GIL: one thread imputes (one torch / kernel thread) while another runs a pure-Python
busy loop; printed are each side's rate relative to running alone. A path that holds the GIL
between many small operations is starved by the busy loop (or starves it); one compiled call
per range that releases the GIL lets both run on their own cores.

Last, model selection's scoring: one experiment imputed under a grid of 9 prediction settings
(blend 0.25 / 0.5 / 0.75 x smoothing 5 / 9 / 13, the small configuration with average activity
as an input) by ``predict`` once per setting, against ``predict_settings`` (one network pass
for the grid), and whether the two give the same numbers.

Wall times on a shared machine move; the ratios within one run are what count.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_predict.py
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Callable

import numpy as np
import torch
from machine import cpu_model

from avocado_core import Avocado
from avocado_core.model import PRESETS
from avocado_core.prediction import KERNEL_MAX_WIDTH, kernel_fits
from avocado_core.residual import AverageActivity

FIXTURE = dict(n_layers=2, n_nodes=64, n_biosample_factors=6, n_assay_factors=8,
               n_25bp_factors=5, n_250bp_factors=7, n_5kbp_factors=9)
#: name -> (configuration, positions at full size)
SHAPES = {
    "2 x 64 (bench_chromosome)": (FIXTURE, 1_000_000),
    "1 x 128 (small)": (PRESETS["original-small"], 1_000_000),
    "3 x 32": ({**FIXTURE, "n_layers": 3, "n_nodes": 32}, 1_000_000),
    "2 x 128": ({**FIXTURE, "n_nodes": 128}, 500_000),
    "2 x 256": ({**FIXTURE, "n_nodes": 256}, 200_000),
    "1 x 2048": ({**PRESETS["paper"], "n_layers": 1}, 20_000),
    "2 x 2048 (paper)": (PRESETS["paper"], 2_000),
}
EXPERIMENTS = [("B1", "A2"), ("B2", "A1"), ("B3", "A3")]


def _paths(model: Avocado) -> dict[str, Callable[[int, int], np.ndarray]]:
    """The two CPU paths of ``Avocado._predict_indices`` (before the average-activity step)."""
    b_idx, a_idx = np.array([0, 1, 2]), np.array([1, 0, 2])
    net = model.network
    return {"torch": lambda lo, hi: model._predict_torch(net, b_idx, a_idx, lo, hi),
            "kernel": lambda lo, hi: model._predict_kernel(net, b_idx, a_idx, lo, hi)}


def _best_rates(model: Avocado, n: int, reps: int
                ) -> tuple[dict[str, float], dict[str, float], float]:
    """Best rates (wall, CPU) of each path in M experiment-bins/s and their largest relative
    difference."""
    paths = _paths(model)
    lo, hi = 37, n - 13
    values = {name: run(lo, hi) for name, run in paths.items()}  # also compiles the kernel
    wall = dict.fromkeys(paths, np.inf)
    cpu = dict.fromkeys(paths, np.inf)
    for _ in range(reps):
        for name, run in paths.items():
            t0, c0 = time.perf_counter(), time.process_time()
            run(lo, hi)
            wall[name] = min(wall[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    diff = np.abs(values["kernel"] - values["torch"]).max() / np.abs(values["torch"]).max()
    size = len(EXPERIMENTS) * (hi - lo) / 1e6
    return ({k: size / t for k, t in wall.items()}, {k: size / t for k, t in cpu.items()},
            float(diff))


def _busy_loop(seconds: float, counts: list[int], stop: threading.Event) -> None:
    t_end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < t_end and not stop.is_set():
        i += 1
    counts.append(i)


def _gil_table(model: Avocado, seconds: float) -> None:
    torch.set_num_threads(1)
    paths = _paths(model)
    n = min(65_536, model.n_positions)

    def predict_for(run: Callable[[int, int], np.ndarray], stop: threading.Event) -> float:
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds and not stop.is_set():
            run(0, n)
            done += 1
        return done * n / (time.perf_counter() - t0)

    counts: list[int] = []
    _busy_loop(seconds, counts, threading.Event())
    alone_busy = counts[0] / seconds
    print("| path | imputation rate with a busy Python thread / alone | busy loop rate / alone |")
    print("|---|---:|---:|")
    for name, run in paths.items():
        run(0, n)
        alone = predict_for(run, threading.Event())
        counts, stop = [], threading.Event()
        thread = threading.Thread(target=_busy_loop, args=(seconds, counts, stop))
        thread.start()
        t0 = time.perf_counter()
        together = predict_for(run, stop)
        stop.set()
        thread.join()
        busy = counts[0] / (time.perf_counter() - t0)
        print(f"| {name} | {together / alone:.2f} | {busy / alone_busy:.2f} |")


def _settings_table(n: int, reps: int) -> None:
    """``predict`` once per prediction setting against ``predict_settings`` for the grid."""
    grid = [{"activity_blend": b, "smoothing": w} for b in (0.25, 0.5, 0.75) for w in (5, 9, 13)]
    model = Avocado(["B1", "B2", "B3"], ["A1", "A2", "A3"], n, seed=0, device="cpu",
                    average_activity="input", **PRESETS["original-small"])
    rng = np.random.default_rng(0)
    model.activity = AverageActivity(rng.gamma(1.0, 1.0, (3, n)).astype(np.float32),
                                     np.full(3, 4))

    def one_by_one() -> np.ndarray:
        out = []
        for entry in grid:
            model.activity_blend, model.smoothing = entry["activity_blend"], entry["smoothing"]
            out.append(model.predict("B2", "A1"))
        return np.stack(out)

    best = {"predict per setting": np.inf, "predict_settings": np.inf}
    results = {}
    for _ in range(reps):  # interleaved rounds; the best of each
        for name, run in (("predict per setting", one_by_one),
                          ("predict_settings", lambda: model.predict_settings("B2", "A1", grid))):
            t0 = time.perf_counter()
            results[name] = run()
            best[name] = min(best[name], time.perf_counter() - t0)
    same = np.array_equal(results["predict per setting"], results["predict_settings"])
    print(f"| {len(grid)} settings | {n:,} | {best['predict per setting']:.3f} | "
          f"{best['predict_settings']:.3f} | "
          f"{best['predict per setting'] / best['predict_settings']:.1f} | {same} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3, help="rounds of each path [3]")
    p.add_argument("--scale", type=float, default=1.0,
                   help="fraction of each shape's positions (a smoke run: 0.01) [1]")
    p.add_argument("--shapes", default=None,
                   help="comma-separated shape names (their first word, e.g. 2,1) [all]")
    p.add_argument("--gil-seconds", type=float, default=2.0,
                   help="seconds of each GIL measurement [2]")
    args = p.parse_args()
    threads = torch.get_num_threads()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} CPUs, {threads} torch threads); load average "
          f"{os.getloadavg()[0]:.2f}; three experiments; rates in M experiment-bins/s; "
          f"predict_many's CPU kernel: one hidden layer, or widths <= {KERNEL_MAX_WIDTH}")
    print()
    print("| network | positions | torch | kernel | kernel / torch | torch per CPU-s | "
          "kernel per CPU-s | kernel / torch per CPU-s | max rel. diff | predict_many |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    gil_model, gil_name = None, "-"
    for name, (config, n_full) in SHAPES.items():
        if args.shapes and name.split()[0] not in args.shapes.split(","):
            continue
        n = max(1_000, int(n_full * args.scale))
        model = Avocado(["B1", "B2", "B3"], ["A1", "A2", "A3"], n, seed=0, device="cpu",
                        **config)
        wall, cpu, diff = _best_rates(model, n, args.reps)
        used = "kernel" if kernel_fits(model.network) else "torch"
        print(f"| {name} | {n:,} | {wall['torch']:.2f} | {wall['kernel']:.2f} | "
              f"{wall['kernel'] / wall['torch']:.2f} | {cpu['torch']:.2f} | {cpu['kernel']:.2f} | "
              f"{cpu['kernel'] / cpu['torch']:.2f} | {diff:.1e} | {used} |", flush=True)
        if gil_model is None:
            gil_model, gil_name = model, name
    print()
    print(f"GIL, {gil_name} network, one thread each side:")
    print()
    if gil_model is not None:
        _gil_table(gil_model, args.gil_seconds)
    print()
    print("Model selection's scoring: one experiment under a grid of prediction settings "
          "(small configuration, average activity as an input; seconds, best of the rounds):")
    print()
    print("| grid | positions | predict per setting (s) | predict_settings (s) | ratio | "
          "identical |")
    print("|---|---:|---:|---:|---:|---|")
    _settings_table(max(1_000, int(1_000_000 * args.scale)), args.reps)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
