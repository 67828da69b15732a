"""Scale benchmark: memory and speed of training as the store grows, and 1 vs 2 processes.

Writes synthetic stores (``avocado_core.synthetic``) of 1x, 4x and 16x as many tracks over the
same positions (Roadmap-like growth: more biosamples, the same genome), then measures each run
in its own subprocess, so that peak RSS is per run:

- ``in-RAM``: the default fit (tracks gathered into one array when they take <= 2 GiB);
- ``streamed``: the fit under ``memory_budget`` (tracks read batch by batch from the memory
  maps, :mod:`avocado_core.streaming`);
- the loader alone (``StreamingSource.values`` over sequential batches) against the model's
  training steps with in-RAM data, whose ratio says whether reading keeps up;
- data-parallel training (``torchrun``, gloo) with 1 and 2 processes, next to the plain
  single-process fit.

Samples/s count the timed training steps only (after 5 warm-up steps), not the start-up or the
data check. Peak RSS is the kernel's high-water mark (``VmHWM``), which includes clean pages of
the memory-mapped store (page cache that the kernel reclaims under pressure); peak anonymous RSS
(sampled ``RssAnon``) is the memory the process itself owns.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_scale.py [--positions 500000] [--tracks 64]

Prints a Markdown table (and ``--json`` writes the raw numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------- measuring
class MemoryWatcher:
    """Samples this process's anonymous RSS in a thread; reads the high-water mark at the end."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak_anon_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def status(field: str) -> int:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_anon_kb = max(self.peak_anon_kb, self.status("RssAnon"))
            time.sleep(self.interval)

    def __enter__(self) -> MemoryWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_anon_kb = max(self.peak_anon_kb, self.status("RssAnon"))
        self.peak_rss_kb = self.status("VmHWM")


def _timed(base: type, timings: list[float]) -> type:
    """A trainer class that records the wall time of each step (on the CPU, where a step's
    work is done when ``advance`` returns)."""

    class Timed(base):  # type: ignore[misc, valid-type]
        def advance(self):
            t = time.perf_counter()
            loss = super().advance()
            timings.append(time.perf_counter() - t)
            return loss

    return Timed


def _rate(timings: list[float], batch: int, warmup: int = 5) -> float:
    steady = timings[warmup:] or timings
    return batch * len(steady) / sum(steady)


def _model(store, device: str, batch_size: int):
    from avocado_core import Avocado

    exps = store.experiments()
    return Avocado.small(list(dict.fromkeys(b for b, _ in exps)),
                         list(dict.fromkeys(a for _, a in exps)), store.n_bins,
                         batch_size=batch_size, seed=0, device=device)


# ---------------------------------------------------------------------------------- children
def child_fit(store_path: str, mode: str, steps: int, batch_size: int, budget: str) -> dict:
    """One fit in this process (``mode``: ``in-RAM`` or ``streamed``), then the loader alone."""
    from avocado_core import TrackStore
    from avocado_core.streaming import StreamingSource, memory_budget
    from avocado_core.training import Sampler, Trainer

    with MemoryWatcher() as mem:
        store = TrackStore(store_path)
        timings: list[float] = []
        model = _model(store, "cpu", batch_size)
        scope = memory_budget(budget) if mode == "streamed" else contextlib.nullcontext()
        with scope:
            model.fit(store, n_epochs=1, epoch_size=steps, progress=False, choose_settings=False,
                      trainer=_timed(Trainer, timings))
        out = {"fit_samples_per_s": _rate(timings, batch_size)}
        if mode == "streamed":
            tracks = [store.tracks()[k] for k in store.experiments()]
            source = StreamingSource(tracks)
            sampler = Sampler(store.n_bins, len(tracks), batch_size, "sequential", seed=1)
            loads = []
            for _ in range(steps):
                e, p = sampler.next_batch()
                t = time.perf_counter()
                source.values(e, p)
                loads.append(time.perf_counter() - t)
            out["loader_samples_per_s"] = _rate(loads, batch_size)
    out.update(peak_rss_mb=mem.peak_rss_kb / 1024, peak_anon_mb=mem.peak_anon_kb / 1024)
    return out


def child_ddp(store_path: str, steps: int, batch_size: int, out_json: str) -> None:
    """One rank of a torchrun job: data-parallel training steps, timed."""
    import torch.distributed as dist

    from avocado_core import TrackStore
    from avocado_core.distributed import DistributedTrainer, init_distributed

    with MemoryWatcher() as mem:
        ctx = init_distributed()
        store = TrackStore(store_path)
        timings: list[float] = []
        model = _model(store, str(ctx.device), batch_size)
        model.fit(store, n_epochs=1, epoch_size=steps, progress=False, choose_settings=False,
                  trainer=_timed(DistributedTrainer, timings))
    rates = [None] * ctx.world_size
    dist.all_gather_object(rates, {"rate": _rate(timings, batch_size),
                                   "peak_rss_mb": mem.peak_rss_kb / 1024,
                                   "peak_anon_mb": mem.peak_anon_kb / 1024})
    if ctx.is_main:
        Path(out_json).write_text(json.dumps({
            "fit_samples_per_s": min(r["rate"] for r in rates),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rates),
            "peak_anon_mb": max(r["peak_anon_mb"] for r in rates),
        }))
    # As `avocado train --distributed` does: no rank leaves (closing its gloo connections) while
    # another still talks to it, which aborted rank 0 now and then.
    dist.barrier()
    dist.destroy_process_group()


# ---------------------------------------------------------------------------------- driver
def build_store(path: Path, factor: int, tracks: int, positions: int) -> dict:
    """A synthetic store with about ``factor * tracks`` observed tracks (reused if present)."""
    from avocado_core import TrackStore
    from avocado_core.synthetic import synthetic_compendium

    marker = path / ".bench-complete"
    if not marker.exists():
        shutil.rmtree(path, ignore_errors=True)
        n_assays = 16
        n_biosamples = max(8, round(factor * tracks / (0.2 * n_assays)))
        comp = synthetic_compendium(n_biosamples=n_biosamples, n_assays=n_assays,
                                    n_positions=positions, observed_fraction=0.2, seed=factor)
        comp.write_store(path, progress=False)
        marker.write_text("ok\n")
    store = TrackStore(path)
    n = len(store.experiments())
    return {"tracks": n, "gb": n * store.n_bins * 4 / 1e9}


def _env(threads: int) -> dict:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE",
                PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_child(args: list[str], threads: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=_env(threads), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_torchrun(store: Path, nproc: int, steps: int, batch: int, work: Path) -> dict:
    out = work / f"ddp-{nproc}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={nproc}", __file__, "--child", "ddp", "--store", str(store),
           "--steps", str(steps), "--batch-size", str(batch), "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(1), check=False)
    if proc.returncode != 0 and not out.is_file():  # the ranks' messages first, then torchrun's
        raise RuntimeError(f"torchrun failed:\n{proc.stderr[:3000]}\n...\n{proc.stderr[-1500:]}")
    if proc.returncode != 0:  # rank 0 wrote every rank's numbers, then a rank died on its way out
        first = (proc.stderr.strip().splitlines() or [""])[0][:100]
        print(f"# torchrun, {nproc} processes: a rank aborted after the numbers were gathered "
              f"(gloo's shutdown race under load; {first!r}); the numbers stand", flush=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/avocado-bench-scale"))
    parser.add_argument("--positions", type=int, default=500_000)
    parser.add_argument("--tracks", type=int, default=64, help="tracks of the 1x store")
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--budget", default="100M", help="memory budget of the streamed runs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", choices=["fit", "ddp"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "fit":
        result = child_fit(args.store, args.mode, args.steps, args.batch_size, args.budget)
        print(json.dumps(result))
        return
    if args.child == "ddp":
        child_ddp(args.store, args.steps, args.batch_size, str(args.json))
        return

    import platform

    import torch

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    factors = [int(f) for f in args.sizes.split(",")]
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, "
                                f"{os.cpu_count()} cores, torch {torch.__version__}",
                     "positions": args.positions, "batch_size": args.batch_size,
                     "steps": args.steps, "budget": args.budget, "sizes": [], "processes": []}
    stores = {}
    for f in factors:
        t = time.perf_counter()
        stores[f] = work / f"store-{f}x"
        info = build_store(stores[f], f, args.tracks, args.positions)
        print(f"store {f}x: {info['tracks']} tracks, {info['gb']:.2f} GB "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        for mode in ("in-RAM", "streamed"):
            r = run_child(["--child", "fit", "--store", str(stores[f]), "--mode", mode,
                           "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                           "--budget", args.budget], args.threads)
            results["sizes"].append({"size": f"{f}x", **info, "mode": mode, **r})
            print(f"  {mode}: {r}", file=sys.stderr)

    base = stores[factors[0]]
    single = run_child(["--child", "fit", "--store", str(base), "--mode", "in-RAM",
                        "--steps", str(args.steps), "--batch-size", str(args.batch_size)], 1)
    results["processes"].append({"run": "plain fit, 1 process", **single})
    for nproc in (1, 2):
        r = run_torchrun(base, nproc, args.steps, args.batch_size, work)
        results["processes"].append({"run": f"torchrun data-parallel, {nproc} process"
                                            f"{'es' if nproc > 1 else ''}", **r})
        print(f"  ddp {nproc}: {r}", file=sys.stderr)

    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(render(results))


def render(results: dict) -> str:
    """The Markdown tables of a result dictionary."""
    lines = [f"Machine: {results['machine']}; {results['positions']:,} positions, small config, "
             f"batch {results['batch_size']:,}, {results['steps']} timed steps per run; streamed "
             f"runs under memory_budget({results.get('budget')!r}).", "",
             "| store | tracks | data (GB) | fit | samples/s | loader samples/s | "
             "peak RSS (MB) | peak anon RSS (MB) |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in results["sizes"]:
        loader = f"{r['loader_samples_per_s']:,.0f}" if "loader_samples_per_s" in r else ""
        lines.append(f"| {r['size']} | {r['tracks']} | {r['gb']:.2f} | {r['mode']} | "
                     f"{r['fit_samples_per_s']:,.0f} | {loader} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['peak_anon_mb']:,.0f} |")
    lines += ["", "| training run (1x store) | samples/s | peak RSS per process (MB) | "
                  "peak anon RSS per process (MB) |", "|---|---:|---:|---:|"]
    for r in results["processes"]:
        lines.append(f"| {r['run']} | {r['fit_samples_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | "
                     f"{r['peak_anon_mb']:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
