"""Training speed and peak memory on a GPU, against the CPU and the GPU's own matrix-product peak.

For the small and the paper configuration, in fp32, TF32 and bf16, the script times ``train()``
of a ``Trainer`` over sequential batches of random tracks of the pilot's length (1,126,469
positions, 24 tracks), after a warm-up, and reads the device's peak memory. In the same run it
times the CPU (the paper configuration in fp32 and, where the CPU multiplies bfloat16 natively,
in bf16; the small one in fp32 by its compiled kernel) and measures the GPU's matrix-product
peak (``torch.mm`` of 8192 x 8192 in each precision), the roofline a training step's products
are held against: achieved = samples/s x the MLP's training FLOPs per sample (forward and
backward: 3 x 2 x its multiply-adds).

Usage (``benchmarks/gpu_check.sh`` runs it after the GPU suite)::

    python benchmarks/bench_gpu.py                      # a few minutes on one GPU
    python benchmarks/bench_gpu.py --smoke --device cpu  # tiny, to know it runs (tests)
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_step import CONFIGS, N_TRACKS, PILOT_POSITIONS  # noqa: E402
from machine import cpu_model  # noqa: E402

from avocado_core.network import AvocadoNetwork  # noqa: E402
from avocado_core.precision import cpu_has_native_bf16  # noqa: E402
from avocado_core.training import TrackSource, Trainer, train  # noqa: E402

#: Batches of 40,000 (the small preset's and the paper's).
BATCH = 40_000
#: --smoke: the same code on sizes that run in seconds on a CPU.
SMOKE = dict(n_nodes=64, batch=2_000)


def flops_per_sample(cfg: dict) -> float:
    """Training FLOPs of one sample through the MLP (forward and backward: 3 x 2 x MACs)."""
    width = (cfg["n_biosample_factors"] + cfg["n_assay_factors"] + cfg["n_25bp_factors"]
             + cfg["n_250bp_factors"] + cfg["n_5kbp_factors"])
    n = cfg["n_nodes"]
    macs = width * n + (cfg["n_layers"] - 1) * n * n + n
    return 3 * 2 * macs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mm_peak(device: torch.device, precision: str, size: int) -> float:
    """TFLOP/s of a size x size x size matrix product in ``precision`` right now."""
    from avocado_core.precision import matmul_precision

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    with matmul_precision(precision, device):
        a @ b
        sync(device)
        reps = 10 if device.type == "cuda" else 2
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
    return reps * 2 * size**3 / (time.perf_counter() - t0) / 1e12


def tracks(n_positions: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random(n_positions, dtype=np.float32) for _ in range(N_TRACKS)]


def run_training(config: dict, device: torch.device, precision: str, data: list[np.ndarray],
                 warmup: int, steps: int) -> dict:
    """samples/s of train() over ``steps`` batches after ``warmup``, and the peak memory."""
    cfg = dict(config)
    batch = cfg.pop("batch")
    net = AvocadoNetwork(6, 4, len(data[0]), generator=torch.Generator().manual_seed(0),
                         **cfg).to(device)
    exps = np.arange(N_TRACKS)
    trainer = Trainer(net, exps // 4, exps % 4, TrackSource(data), batch, seed=0,
                      precision=precision)
    train(trainer, 1, warmup, progress=False)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    train(trainer, 1, steps, progress=False)  # (reads the loss once: waits for the device)
    elapsed = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"samples_per_s": steps * batch / elapsed, "peak_mb": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", default="small,paper")
    parser.add_argument("--precisions", default="fp32,tf32,bf16")
    parser.add_argument("--steps", type=int, default=None, help="timed batches [default: 50]")
    parser.add_argument("--cpu-steps", type=int, default=None,
                        help="timed batches of the CPU rows [default: 3]")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU rows")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (20,000 positions, 64 nodes, batches of 2,000)")
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = args.steps or (3 if args.smoke else 50)
    cpu_steps = args.cpu_steps or 3
    n_positions = 20_000 if args.smoke else PILOT_POSITIONS
    mm_size = 512 if args.smoke else 8192
    configs = {name: {**CONFIGS[name], "batch": BATCH, **(SMOKE if args.smoke else {})}
               for name in args.configs.split(",") if name}
    precisions = [p for p in args.precisions.split(",") if p]

    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU {cpu_model()}")
    cap = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; device: {name}"
          + (f" (compute capability {cap[0]}.{cap[1]}, "
             f"{torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB)"
             if cap else "")
          + f"; host CPU: {cpu_model()}, {os.cpu_count()} CPUs; torch {torch.__version__}")
    peaks = {p: mm_peak(device, p, mm_size) for p in precisions}
    print("# matrix product " + f"{mm_size}^3 on the device: "
          + ", ".join(f"{p} {v:.1f} TFLOP/s" for p, v in peaks.items()))

    data = tracks(n_positions)
    rows = []
    for cname, cfg in configs.items():
        for precision in precisions:
            r = run_training(cfg, device, precision, data, warmup=3, steps=steps)
            rows.append((str(device), cname, precision, r, peaks[precision], cfg))
            print(f"#   {cname} {precision} on {device}: {r['samples_per_s']:,.0f} samples/s",
                  flush=True)
        if not args.no_cpu and device.type != "cpu":
            cpu = torch.device("cpu")
            cpu_precisions = ["fp32"] + (["bf16"] if cpu_has_native_bf16()
                                         and cfg["n_layers"] >= 2 else [])
            for precision in cpu_precisions:
                r = run_training(cfg, cpu, precision, data, warmup=1, steps=cpu_steps)
                rows.append(("cpu", cname, precision, r, None, cfg))
                print(f"#   {cname} {precision} on cpu: {r['samples_per_s']:,.0f} samples/s",
                      flush=True)

    print("\n| device | config | precision | samples/s | vs CPU fp32 | s / pilot epoch "
          "| peak memory MB | achieved TFLOP/s | of the mm peak |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    base = {c: r["samples_per_s"] for dev, c, p, r, _, _ in rows if dev == "cpu" and p == "fp32"}
    for dev, cname, precision, r, peak, cfg in rows:
        sps = r["samples_per_s"]
        vs = f"{sps / base[cname]:.1f}x" if cname in base else "-"
        achieved = sps * flops_per_sample(cfg) / 1e12
        of_peak = f"{100 * achieved / peak:.0f}% of {peak:.2f}" if peak else "-"
        print(f"| {dev} | {cname} | {precision} | {sps:,.0f} | {vs} | "
              f"{n_positions / sps:.2f} | {r['peak_mb']:,.0f} | {achieved:.2f} | {of_peak} |")
    memory = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "peak RSS"
    print(f"# {n_positions:,} positions x {N_TRACKS} tracks, sequential batches of "
          f"{next(iter(configs.values()))['batch']:,}; {steps} timed batches after 3 "
          f"(CPU: {cpu_steps} after 1); peak memory: {memory} (CPU rows: the process's "
          "peak RSS); TF32 is fp32 off CUDA")


if __name__ == "__main__":
    main()
