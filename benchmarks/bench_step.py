"""Host cost of a training step: synchronisations, torch calls and samples/s, before and after.

A GPU only stays busy if the host queues a step's work without waiting for it. This script
counts, per steady-state step of ``Trainer`` (sequential batches of 4,000 over 48,007
positions: after 8 warm-up epochs, over one more epoch of 13 steps, whose last batch wraps;
the counts do not depend on the batch size), what the host does on the CPU:

- **syncs**: calls that would make the host wait for a GPU: reading a value (``.item()``,
  ``.tolist()``, ``.cpu()``, ``.numpy()``, ``bool()``, ``float()``, ``int()``), operations whose
  output size depends on values (``unique``, ``unique_consecutive``, ``nonzero``, ...);
- **blocking uploads**: ``.to(device)`` copies that are not non-blocking from pinned memory
  (on CUDA a copy from pageable memory holds the host until it is done);
- **torch calls**: every call into torch's Python API (a ``TorchFunctionMode``: functions,
  methods, ``x[i]``, ``x.shape``), **aten ops**: operations the dispatcher runs (a
  ``TorchDispatchMode``), and of those the **compute ops**, which are not views (slices,
  transposes, reshapes: metadata only): about the kernel launches of a GPU;
- **runs on meta**: whether the step runs with the network on PyTorch's ``meta`` device, where
  any read of a device value is an error (what the step would do on a GPU, with no GPU);
- **samples/s**: the small configuration on the pilot's length (1,126,469 positions, 24
  tracks of random values), ``train()`` over two epochs after a warm-up epoch; per second of
  wall time, and per second of the process's CPU time (which other jobs on a shared machine
  disturb less).

Two paths: ``torch`` (``Trainer(kernel=False)``: the operations a GPU runs) and ``kernels``
(the compiled CPU kernels, the CPU's default). ``--baseline DIR`` runs the same measurements
on another checkout (e.g. ``git archive <commit> | tar -x -C DIR``) in the same run, the two
alternating round by round, each in its own process.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_step.py --baseline /tmp/before
    python benchmarks/bench_step.py --configs small --rounds 1 --positions 20000   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import cpu_model  # noqa: E402

CONFIGS = {
    "small": dict(n_layers=1, n_nodes=128, n_biosample_factors=32, n_assay_factors=24,
                  n_25bp_factors=10, n_250bp_factors=20, n_5kbp_factors=30, batch=10_000),
    "paper": dict(n_layers=2, n_nodes=2048, n_biosample_factors=32, n_assay_factors=256,
                  n_25bp_factors=25, n_250bp_factors=40, n_5kbp_factors=45, batch=40_000),
}
PILOT_POSITIONS = 1_126_469
N_TRACKS = 24
#: Batch size and warm-up epochs of the counts.
COUNT_BATCH, WARMUP_EPOCHS = 4_000, 8
#: Calls that make the host wait for a GPU (by the name the TorchFunctionMode sees).
SYNCS = {"item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__",
         "unique", "unique_consecutive", "_unique2", "nonzero", "masked_select", "argwhere",
         "bincount", "repeat_interleave"}


# ------------------------------------------------------------------------------ workers
def _trainer(spec: dict, device: str, n_positions: int, batch: int | None = None):
    """A Trainer of the spec's configuration over random tracks (sequential batches)."""
    import numpy as np
    import torch

    from avocado_core.network import AvocadoNetwork
    from avocado_core.training import TrackSource, Trainer

    cfg = dict(CONFIGS[spec["config"]])
    batch = batch or cfg["batch"]
    del cfg["batch"]
    rng = np.random.default_rng(0)
    tracks = [rng.random(n_positions, dtype=np.float32) for _ in range(N_TRACKS)]
    net = AvocadoNetwork(6, 4, n_positions, generator=torch.Generator().manual_seed(0),
                         **cfg).to(device)
    exps = np.arange(N_TRACKS)
    trainer = Trainer(net, exps // 4, exps % 4, TrackSource(tracks), batch, seed=0,
                      kernel=spec["path"] == "kernels", precision=spec.get("precision", "fp32"))
    return trainer, -(-n_positions // batch)


def _step(trainer):
    """One step, as the training loop takes it (``advance`` where the code has it)."""
    return getattr(trainer, "advance", trainer.step)()


def count(spec: dict) -> dict:
    """Syncs, blocking uploads, torch calls and aten ops per steady-state step (CPU), and
    whether the step runs on the meta device."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class Calls(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.calls, self.syncs, self.uploads = 0, Counter(), 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", str(func))
            self.calls += 1
            if name in SYNCS:
                self.syncs[name] += 1
            elif name == "to" and args and isinstance(args[0], torch.Tensor):
                moves = any(isinstance(a, (str, torch.device)) for a in args[1:]) or (
                    "device" in kwargs)
                pinned = kwargs.get("non_blocking") and args[0].is_pinned()
                self.uploads += bool(moves and not pinned)
            return func(*args, **kwargs)

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops = self.compute = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            self.compute += not (func.is_view or func.__name__ in ("lift_fresh", "detach"))
            return func(*args, **(kwargs or {}))

    n_positions = 12 * COUNT_BATCH + 7
    trainer, epoch = _trainer(spec, "cpu", n_positions, COUNT_BATCH)
    for _ in range(WARMUP_EPOCHS * epoch):  # (catch-up coefficients as in a long run)
        _step(trainer)
    calls, ops = Calls(), Ops()
    with calls, ops:
        for _ in range(epoch):
            _step(trainer)
    out = {"syncs": sum(calls.syncs.values()) / epoch, "uploads": calls.uploads / epoch,
           "calls": calls.calls / epoch, "ops": ops.ops / epoch,
           "compute": ops.compute / epoch,
           "sync_names": dict(calls.syncs), "epoch": epoch, "positions": n_positions}
    out["meta"] = "-"
    if spec["path"] == "torch":  # (the kernels are the CPU's)
        meta, _ = _trainer(spec, "meta", n_positions, COUNT_BATCH)
        try:
            for _ in range(epoch + 2):
                _step(meta)
            out["meta"] = "yes"
        except (RuntimeError, NotImplementedError) as exc:
            out["meta"] = f"no: {str(exc).splitlines()[0][:60]}"
    return out


def speed(spec: dict) -> dict:
    """samples/s of ``train()`` over two epochs after a warm-up epoch (CPU)."""
    from avocado_core.training import train

    trainer, epoch = _trainer(spec, "cpu", spec.get("positions") or PILOT_POSITIONS)
    steps = spec.get("steps") or epoch
    train(trainer, 1, steps, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    train(trainer, 2, steps, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    samples = 2 * steps * CONFIGS[spec["config"]]["batch"]
    return {"samples_per_s": samples / wall, "samples_per_cpu_s": samples / cpu}


def worker(spec: dict) -> None:
    sys.path.insert(0, spec["src"])
    import avocado_core

    assert Path(avocado_core.__file__).resolve().is_relative_to(Path(spec["src"]).resolve())
    result = {"count": count, "speed": speed}[spec["what"]](spec)
    print("RESULT " + json.dumps(result))


def run(spec: dict) -> dict:
    """One measurement in its own process (PYTHONPATH: the spec's source tree)."""
    env = dict(os.environ, PYTHONPATH=spec["src"])
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                          capture_output=True, text=True, env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout to measure beside this one")
    parser.add_argument("--configs", default="small,paper",
                        help="configurations whose calls are counted (speed: small only)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating speed rounds")
    parser.add_argument("--positions", type=int, default=None,
                        help="track length of the speed rows (default: the pilot's)")
    parser.add_argument("--speed-steps", type=int, default=None,
                        help="steps per speed epoch (default: one pass over the positions)")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    import torch

    sources = {"after": str(REPO)}
    if args.baseline is not None:
        sources = {"before": str(args.baseline.resolve()), **sources}
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU: {cpu_model()}, "
          f"{os.cpu_count()} CPUs; torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; load {load}")
    for label, src in sources.items():
        print(f"# {label}: {src}")

    print("\n| code | config | path | syncs / step | blocking uploads / step | torch calls / step "
          "| aten ops / step | compute ops / step | runs on meta | syncs by name |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|---|")
    configs = [c for c in args.configs.split(",") if c]
    for config in configs:
        for path in ("torch", "kernels"):
            for label, src in sources.items():
                r = run({"what": "count", "src": src, "config": config, "path": path})
                names = ", ".join(f"{k} {v / r['epoch']:.1f}"
                                  for k, v in sorted(r["sync_names"].items())) or "-"
                print(f"| {label} | {config} | {path} | {r['syncs']:.1f} | {r['uploads']:.1f} "
                      f"| {r['calls']:.0f} | {r['ops']:.0f} | {r['compute']:.0f} | {r['meta']} "
                      f"| {names} |",
                      flush=True)
    if configs:
        print(f"# counted over one epoch of sequential batches of {COUNT_BATCH:,} "
              f"({r['epoch']} steps, {r['positions']:,} positions) after {WARMUP_EPOCHS} "
              "warm-up epochs; fp32")
    if not args.rounds:
        return

    rates: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for path in ("kernels", "torch"):
            for label, src in sources.items():
                r = run({"what": "speed", "src": src, "config": "small", "path": path,
                         "positions": args.positions, "steps": args.speed_steps})
                rates.setdefault((label, path), []).append(r)
    print("\n| code | path | samples/s per round | median | vs before | samples per CPU-s, "
          "median | vs before |")
    print("|---|---|---|---:|---:|---:|---:|")
    for path in ("kernels", "torch"):
        for label in sources:
            cells = [", ".join(f"{r['samples_per_s']:,.0f}" for r in rates[(label, path)])]
            for key in ("samples_per_s", "samples_per_cpu_s"):
                value = statistics.median(r[key] for r in rates[(label, path)])
                before = rates.get(("before", path))
                ratio = (f"{value / statistics.median(r[key] for r in before):.2f}x"
                         if before and label != "before" else "-")
                cells += [f"{value:,.0f}", ratio]
            print(f"| {label} | {path} | {' | '.join(cells)} |")
    print(f"# small configuration, batches of 10,000, {N_TRACKS} tracks; train() over two "
          f"epochs after one; {args.rounds} alternating rounds; load at end "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
