"""avocado_core against the original Avocado (avocado-epigenome 0.4.0 on TensorFlow-CPU 2.15.1),
side by side in one run.

Protocol (the core-model issue): the 25 real Roadmap pilot tracks, E065 / H3K4me3 held out,
training on the other 24 with sequential sampling and seed 0 in both implementations. Every
contender runs in its own process and the contenders alternate (original, ours fp32, ours bf16,
original, ours fp32, ...), so that each ratio compares runs made under the same load on this
shared machine; the table gives the ratio of the mean rates and each round's own ratio.

Rows:

- speed: after a few untimed warm-up batches (graph tracing, first allocations), one ``fit``
  call of ``--small-steps`` batches of 10,000 (small config) or ``--paper-steps`` batches of
  40,000 (paper config, 2 x 2048 hidden); samples/s and the process's peak RSS.
- accuracy: the held-out MSE and Pearson r after ``--small-epochs`` epochs of 113 batches
  (small config, the issue's protocol, both implementations) and, for our fp32 and bf16,
  after ``--paper-epochs`` epochs of ``--paper-epoch-size`` batches (paper config; 28 batches
  of 40,000 are one pass over the pilot's 1.13 M positions). The original is left out of the
  paper accuracy rows: it needs ~15 s a batch here, an hour for a meaningful run. With
  ``--seeds 0,1`` our accuracy rows run once per seed, and the table adds how far two seeds of
  one contender land apart: the yardstick for the gap between bf16 and fp32.

The original runs in a virtual environment of its own, outside the repository (default
``$AVOCADO_CACHE/original-venv``, else ``~/.cache/avocado-bench/original-venv``), built on first
use with ``python3 -m venv`` and ``pip install avocado-epigenome==0.4.0 tensorflow-cpu==2.15.1
'numpy<2'``; ``benchmarks/original_runner.py`` trains it there, through a shim for the one
Keras call avocado 0.4.0 makes that Keras 2.15 rejects (see that file).

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_vs_original.py       # ~20 min on 2 cores
    python benchmarks/bench_vs_original.py --ours-only --configs small   # no original

Set AVOCADO_DATA_MIRROR to the data mirror (default: ../shared/data beside the repository).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import PAPER, SMALL, run

REPO = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().parent / "original_runner.py"
ORIGINAL_PACKAGES = ("avocado-epigenome==0.4.0", "tensorflow-cpu==2.15.1", "numpy<2")
BATCH = {"small": SMALL["batch_size"], "paper": PAPER["batch_size"]}


def default_venv() -> Path:
    """Where the original's virtual environment lives (outside the repository)."""
    cache = os.environ.get("AVOCADO_CACHE")
    base = Path(cache) if cache else Path.home() / ".cache" / "avocado-bench"
    return base / "original-venv"


def original_python(venv: Path, python: str) -> Path:
    """The original's interpreter, building its virtual environment first if needed."""
    exe = venv / "bin" / "python"
    probe = "import avocado, tensorflow, keras"
    if exe.exists():
        found = subprocess.run([exe, "-c", probe], capture_output=True, check=False)
        if found.returncode == 0:
            return exe
    print(f"# building the original's environment in {venv} (a few minutes)", flush=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([exe, "-m", "pip", "install", "-q", *ORIGINAL_PACKAGES], check=True)
    return exe


def cpu_description() -> str:
    """The CPU model and its bf16 / AMX flags, from /proc/cpuinfo."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} CPUs, flags: {' '.join(shown) or 'none of avx2/avx512'}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="small,paper", help="which configs to run")
    parser.add_argument("--reps", type=int, default=2, help="alternating rounds of speed rows")
    parser.add_argument("--small-steps", type=int, default=113, help="timed small batches")
    parser.add_argument("--paper-steps", type=int, default=4, help="timed paper batches")
    parser.add_argument("--small-epochs", type=int, default=10,
                        help="epochs of 113 batches of the small accuracy rows (0: none)")
    parser.add_argument("--small-epoch-size", type=int, default=113, help=argparse.SUPPRESS)
    parser.add_argument("--paper-epochs", type=int, default=2,
                        help="epochs of the paper accuracy rows, ours fp32 vs bf16 (0: none)")
    parser.add_argument("--paper-epoch-size", type=int, default=28,
                        help="batches per epoch of the paper accuracy rows")
    parser.add_argument("--seeds", default="0",
                        help="seeds of our accuracy rows (e.g. 0,1: how far two seeds land "
                             "apart, beside bf16 against fp32)")
    parser.add_argument("--ours-only", action="store_true", help="leave the original out")
    parser.add_argument("--venv", type=Path, default=default_venv(),
                        help="the original's virtual environment (built if missing)")
    parser.add_argument("--python", default="python3",
                        help="interpreter that builds the original's environment")
    args = parser.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    bad = sorted(set(configs) - set(BATCH))
    if bad:
        parser.error(f"unknown config {bad[0]!r}; expected small and/or paper")

    import torch

    from avocado_core.precision import resolve_precision

    original = None if args.ours_only else [str(original_python(args.venv, args.python)),
                                            str(RUNNER)]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU: {cpu_description()}")
    print(f"# torch {torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
          f"load average at start: {_load()}")
    gflops = run({"impl": "matmul"})
    print(f"# matrix product 40000x2048x2048 (torch): fp32 {gflops['fp32']:.0f} GFLOP/s, "
          f"bf16 {gflops['bf16']:.0f} GFLOP/s", flush=True)
    auto = {c: resolve_precision("auto", cfg["n_layers"], cfg["n_nodes"], "cpu")
            for c, cfg in (("small", SMALL), ("paper", PAPER))}
    print(f"# precision='auto' (the default) picks here: small {auto['small']}, "
          f"paper {auto['paper']}")

    def contenders(config: str) -> list[tuple[str, list[str] | None, str | None]]:
        """(label, command, precision): command None is ours (bench_training's worker)."""
        ours = [(f"avocado_core {p}{' (auto)' if auto[config] == p else ''}", None, p)
                for p in (["fp32", "bf16"] if config == "paper" else [auto["small"]])]
        return ([("original", original, None)] if original else []) + ours

    def spec_of(config: str, precision: str | None, **kw) -> dict:
        spec = dict(kw, config=config, impl="avocado", gemm=False)
        if precision:
            spec["precision"] = precision
        return spec

    # ---- speed, alternating
    speed: dict[tuple[str, str], list[dict]] = {}
    steps = {"small": args.small_steps, "paper": args.paper_steps}
    warmup = {"small": 3, "paper": 1}
    for rep in range(args.reps):
        for config in configs:
            for label, command, precision in contenders(config):
                res = run(spec_of(config, precision, epochs=0, warmup=warmup[config],
                                  steps=steps[config]), command)
                speed.setdefault((config, label), []).append(res)
                print(f"#   round {rep + 1} {config} {label}: {res['samples_per_s']:,.0f} "
                      f"samples/s, peak RSS {res['peak_rss_mb']:,.0f} MB (load {_load()})",
                      flush=True)

    # ---- accuracy
    accuracy: list[tuple[str, str, str, dict]] = []
    runs = []
    seeds = [int(s) for s in args.seeds.split(",")]
    if "small" in configs and args.small_epochs:  # the original's row: its own seed 0
        runs += [("small", label, command, precision, args.small_epochs, args.small_epoch_size,
                  seed) for label, command, precision in contenders("small")
                 for seed in (seeds if command is None else [0])]
    if "paper" in configs and args.paper_epochs:
        runs += [("paper", label, None, precision, args.paper_epochs, args.paper_epoch_size,
                  seed) for seed in seeds
                 for label, command, precision in contenders("paper") if command is None]
    for config, label, command, precision, epochs, size, seed in runs:
        res = run(spec_of(config, precision, epochs=epochs, warmup=0, epoch_size=size,
                          **({"seed": seed} if command is None else {})), command)
        what = f"{epochs} x {size} batches" + (f", seed {seed}" if seeds != [0] else "")
        accuracy.append((config, label, what, res))
        print(f"#   {config} {label}, {what}: MSE {res['mse']:.4f}, r {res['r']:.3f} "
              f"(load {_load()})", flush=True)

    # ---- tables
    print(f"\n# load average at end: {_load()}")
    if speed:
        _speed_table(configs, contenders, speed)
        print(f"# steps: small {args.small_steps} x {BATCH['small']:,}, paper {args.paper_steps}"
              f" x {BATCH['paper']:,} per speed row after {warmup['small']} / {warmup['paper']}"
              f" warm-up batches; {args.reps} alternating rounds")
    if accuracy:
        _accuracy_table(accuracy)


def _speed_table(configs: list[str], contenders, speed: dict) -> None:
    """Samples/s per round, the in-run ratios to the original and peak RSS."""
    print("\n| config | contender | samples/s per round | mean samples/s | vs original "
          "(per round) | peak RSS MB | RSS vs original |")
    print("|---|---|---|---:|---|---:|---:|")
    for config in configs:
        base = speed.get((config, "original"))
        for label, _, _ in contenders(config):
            rows = speed[(config, label)]
            rates = [r["samples_per_s"] for r in rows]
            mean = sum(rates) / len(rates)
            rss = max(r["peak_rss_mb"] for r in rows)
            ratio = rss_ratio = "-"
            if base and label != "original":
                base_rates = [r["samples_per_s"] for r in base]
                per_round = ", ".join(f"{a / b:.2f}x" for a, b in zip(rates, base_rates))
                ratio = f"{mean / (sum(base_rates) / len(base_rates)):.2f}x ({per_round})"
                rss_ratio = f"{rss / max(r['peak_rss_mb'] for r in base):.2f}x"
            print(f"| {config} | {label} | {', '.join(f'{x:,.0f}' for x in rates)} | "
                  f"{mean:,.0f} | {ratio} | {rss:,.0f} | {rss_ratio} |")


def _accuracy_table(accuracy: list) -> None:
    """Held-out MSE / Pearson r of the accuracy rows (and paper bf16 against fp32)."""
    print("\n| config | contender | training | samples/s | peak RSS MB | held-out MSE | "
          "Pearson r |")
    print("|---|---|---|---:|---:|---:|---:|")
    for config, label, what, res in accuracy:
        print(f"| {config} | {label} | {what} | {res['samples_per_s']:,.0f} | "
              f"{res['peak_rss_mb']:,.0f} | {res['mse']:.4f} | {res['r']:.3f} |")
    paper: dict[str, dict[str, dict]] = {}  # training (with its seed) -> precision -> result
    for config, label, what, res in accuracy:
        if config == "paper":
            paper.setdefault(what, {})[label.split()[1]] = res
    for what, rows in paper.items():
        if {"fp32", "bf16"} <= set(rows):
            f, b = rows["fp32"], rows["bf16"]
            print(f"# paper bf16 vs fp32 after the same batches ({what}): MSE "
                  f"{b['mse'] / f['mse'] - 1:+.2%}, Pearson r {b['r'] / f['r'] - 1:+.2%}")
    by_label: dict[tuple[str, str], list[tuple[str, dict]]] = {}
    for config, label, what, res in accuracy:
        by_label.setdefault((config, label), []).append((what, res))
    for (config, label), rows in by_label.items():
        if len(rows) > 1:  # the same contender, another seed: how far apart runs land anyway
            (w0, r0), (w1, r1) = rows[0], rows[1]
            print(f"# {config} {label}, {w1.split(', ')[-1]} vs {w0.split(', ')[-1]}: MSE "
                  f"{r1['mse'] / r0['mse'] - 1:+.2%}, Pearson r {r1['r'] / r0['r'] - 1:+.2%}")


if __name__ == "__main__":
    main()
