"""avocado_core against the original Avocado (avocado-epigenome 0.4.0 on TensorFlow-CPU 2.15.1),
side by side in one run.

Protocol: the 25 real Roadmap pilot tracks, one held out (E065 /
H3K4me3 unless ``--held-out`` names others), training on the other 24 with sequential sampling
in both implementations, and with ``choose_settings=False`` on our side (plain training, as the
original does). Every contender runs in its own process and the contenders alternate
(original, ours fp32, ours bf16, original, ours fp32, ...), so that each ratio compares runs
made under the same load on this shared machine; the table gives the ratio of the mean rates
and each round's own ratio.

Rows:

- speed: after a few untimed warm-up batches (graph tracing, first allocations), one ``fit``
  call of ``--small-steps`` batches of 10,000 (small config) or ``--paper-steps`` batches of
  40,000 (paper config, 2 x 2048 hidden); samples/s and the process's peak RSS.
- accuracy: the held-out MSE and Pearson r after ``--small-epochs`` epochs of 113 batches
  (small config, the original tutorial's: 1 x 128 hidden, batches of 10,000, learning rate
  0.001, no average activity; both implementations) and, for our fp32 and bf16, after
  ``--paper-epochs`` epochs of ``--paper-epoch-size`` batches (paper config; 28 batches of
  40,000 are one pass over the pilot's 1.13 M positions). The original is left out of the
  paper accuracy rows: it needs ~15 s a batch here, an hour for a meaningful run. Every
  accuracy row runs once per seed of ``--seeds`` (the original seeds numpy and TensorFlow with
  it, ours ``Avocado(seed=)``) and per held-out track of ``--held-out``.
- from the original's start (small config, with the original): the original saves its model
  as its training begins and the state of the generator its batches are drawn from;
  ``benchmarks/original_start.py`` reads those weights into avocado_core and trains them on the
  same batches in the same order. Its gap to the original, seed by seed, is what the two
  implementations' arithmetic alone makes of the same run.

After the per-run table, a table over seeds gives, per held-out track, each contender's MSE per
seed, their mean, how far its seeds land apart (max/min - 1: what a second random draw of the
same implementation changes) and its mean against the original's (ours/original - 1).

The original runs in a virtual environment of its own, outside the repository (default
``$AVOCADO_CACHE/original-venv``, else ``~/.cache/avocado-bench/original-venv``), built on first
use with ``python3 -m venv`` and ``pip install avocado-epigenome==0.4.0 tensorflow-cpu==2.15.1
'numpy<2'``; ``benchmarks/original_runner.py`` trains it there, through a shim for the one
Keras call avocado 0.4.0 makes that Keras 2.15 rejects (see that file).

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_vs_original.py       # ~20 min on 2 cores
    python benchmarks/bench_vs_original.py --ours-only --configs small   # no original
    # both over seeds and held-out tracks (accuracy only; 27 runs, 14 min on 2 AMD EPYC cores):
    python benchmarks/bench_vs_original.py --accuracy-only --seeds 0,1,2 \
        --held-out E065:H3K4me3,E116:H3K27me3,E017:H3K36me3

Set AVOCADO_DATA_MIRROR to the data mirror (default: ../shared/data beside the repository).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import HELD_OUT, PAPER, SMALL, pilot_files, run

REPO = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().parent / "original_runner.py"
START_RUNNER = Path(__file__).resolve().parent / "original_start.py"
ORIGINAL_PACKAGES = ("avocado-epigenome==0.4.0", "tensorflow-cpu==2.15.1", "numpy<2")
BATCH = {"small": SMALL["batch_size"], "paper": PAPER["batch_size"]}
#: Label of avocado_core trained from the original's initial weights on its batches.
FROM_START = "avocado_core from the original's start"


@dataclass
class Row:
    """One accuracy run: which contender, on which held-out track, with which seed."""

    config: str
    label: str
    held_out: tuple[str, str]
    seed: int
    what: str
    res: dict


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


def held_out_tracks(text: str) -> list[tuple[str, str]]:
    """``"E065:H3K4me3,E116:H3K27me3"`` as pilot tracks; a clear error for any other."""
    known = pilot_files()
    tracks = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        biosample, _, assay = item.partition(":")
        if (biosample, assay) not in known:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not a pilot track; expected BIOSAMPLE:ASSAY, one of "
                f"{', '.join(f'{b}:{a}' for b, a in known)}")
        tracks.append((biosample, assay))
    if not tracks:
        raise argparse.ArgumentTypeError("no held-out track given; expected BIOSAMPLE:ASSAY")
    return tracks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=None,
                        help="which configs to run [default: small,paper; small with "
                             "--accuracy-only]")
    parser.add_argument("--accuracy-only", action="store_true",
                        help="no speed rows: only the held-out accuracy of every contender, "
                             "seed and held-out track")
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
                        help="seeds of every accuracy row, both implementations (e.g. 0,1,2: "
                             "how far seeds of one implementation land apart)")
    parser.add_argument("--held-out", type=held_out_tracks, default=[HELD_OUT],
                        metavar="B:A[,B:A...]",
                        help="held-out tracks of the accuracy rows, each trained on the other "
                             "24 [default: E065:H3K4me3]")
    parser.add_argument("--ours-only", action="store_true", help="leave the original out")
    parser.add_argument("--venv", type=Path, default=default_venv(),
                        help="the original's virtual environment (built if missing)")
    parser.add_argument("--python", default="python3",
                        help="interpreter that builds the original's environment")
    args = parser.parse_args()
    configs = [c for c in (args.configs or ("small" if args.accuracy_only else "small,paper"))
               .split(",") if c]
    bad = sorted(set(configs) - set(BATCH))
    if bad:
        parser.error(f"unknown config {bad[0]!r}; expected small and/or paper")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds must be integers separated by commas, got {args.seeds!r}")
    reps = 0 if args.accuracy_only else args.reps

    import torch

    from avocado_core.precision import resolve_precision

    original = None if args.ours_only else [str(original_python(args.venv, args.python)),
                                            str(RUNNER)]
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU: {cpu_description()}")
    print(f"# torch {torch.__version__}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
          f"load average at start: {_load()}")
    if reps:  # what the machine's matrix products reach now, beside the speed rows
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
    for rep in range(reps):
        for config in configs:
            for label, command, precision in contenders(config):
                res = run(spec_of(config, precision, epochs=0, warmup=warmup[config],
                                  steps=steps[config]), command)
                speed.setdefault((config, label), []).append(res)
                print(f"#   round {rep + 1} {config} {label}: {res['samples_per_s']:,.0f} "
                      f"samples/s, peak RSS {res['peak_rss_mb']:,.0f} MB (load {_load()})",
                      flush=True)

    # ---- accuracy: per held-out track and seed, the contenders one after the other
    accuracy: list[Row] = []
    schedule = {"small": (args.small_epochs, args.small_epoch_size),
                "paper": (args.paper_epochs, args.paper_epoch_size)}
    for config in configs:
        epochs, size = schedule[config]
        if not epochs:
            continue
        what = f"{epochs} x {size} batches"
        for held_out in args.held_out:
            for seed in seeds:
                for label, command, precision in contenders(config):
                    if config == "paper" and command is not None:
                        continue  # the original's paper rows would take hours (see above)
                    spec = spec_of(config, precision, epochs=epochs, warmup=0, epoch_size=size,
                                   seed=seed, held_out=list(held_out))
                    runs = [(label, spec, command)]
                    with tempfile.TemporaryDirectory(prefix="original-start-") as start:
                        if command is not None:  # then ours from its weights, on its batches
                            spec["save_start"] = start
                            runs.append((FROM_START, dict(spec, start_from=start),
                                         [sys.executable, str(START_RUNNER)]))
                        for name, one, how in runs:
                            accuracy.append(Row(config, name, held_out, seed, what,
                                                run(one, how)))
                            _progress(accuracy[-1])

    # ---- tables
    print(f"\n# load average at end: {_load()}")
    if speed:
        _speed_table(configs, contenders, speed)
        print(f"# steps: small {args.small_steps} x {BATCH['small']:,}, paper {args.paper_steps}"
              f" x {BATCH['paper']:,} per speed row after {warmup['small']} / {warmup['paper']}"
              f" warm-up batches; {reps} alternating rounds")
    if accuracy:
        _accuracy_table(accuracy)
        _seeds_table(accuracy, seeds)


def _progress(row: Row) -> None:
    print(f"#   {row.config} {':'.join(row.held_out)} {row.label}, {row.what}, seed {row.seed}: "
          f"MSE {row.res['mse']:.4f}, r {row.res['r']:.3f} (load {_load()})", flush=True)


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


def _accuracy_table(accuracy: list[Row]) -> None:
    """Held-out MSE / Pearson r of every accuracy run (and paper bf16 against fp32)."""
    print("\n| config | held out | contender | training | seed | samples/s | peak RSS MB | "
          "held-out MSE | Pearson r |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for row in accuracy:
        res = row.res
        print(f"| {row.config} | {' '.join(row.held_out)} | {row.label} | {row.what} | "
              f"{row.seed} | {res['samples_per_s']:,.0f} | {res['peak_rss_mb']:,.0f} | "
              f"{res['mse']:.4f} | {res['r']:.3f} |")
    paper: dict[tuple, dict[str, dict]] = {}  # (track, seed) -> precision -> result
    for row in accuracy:
        if row.config == "paper":
            paper.setdefault((row.held_out, row.seed, row.what), {})[row.label.split()[1]] = \
                row.res
    for (held_out, seed, what), rows in paper.items():
        if {"fp32", "bf16"} <= set(rows):
            f, b = rows["fp32"], rows["bf16"]
            print(f"# paper bf16 vs fp32 after the same batches ({' '.join(held_out)}, {what}, "
                  f"seed {seed}): MSE {b['mse'] / f['mse'] - 1:+.2%}, Pearson r "
                  f"{b['r'] / f['r'] - 1:+.2%}")


def _seeds_table(accuracy: list[Row], seeds: list[int]) -> None:
    """Per held-out track and contender: MSE per seed, their mean, the spread of the seeds
    (max/min - 1) and the gap of the means to the original's (ours/original - 1) with its
    standard error (Welch's, over the original's mean: how far the means of that many seeds
    move by chance); seed by seed to the original's run of the same seed as well."""
    groups: dict[tuple, dict[str, dict[int, dict]]] = {}
    for row in accuracy:
        groups.setdefault((row.config, row.held_out, row.what), {}) \
            .setdefault(row.label, {})[row.seed] = row.res
    print(f"\n| config | held out | contender | MSE, seed {', '.join(map(str, seeds))} | "
          "mean MSE | seed spread (max/min - 1) | mean vs original (± s.e.) | "
          "per seed vs original | mean Pearson r |")
    print("|---|---|---|---|---:|---:|---:|---|---:|")
    for (config, held_out, _), by_label in groups.items():
        base = by_label.get("original")
        for label, by_seed in by_label.items():
            mse = [by_seed[s]["mse"] for s in seeds]
            mean = sum(mse) / len(mse)
            spread = f"{max(mse) / min(mse) - 1:.1%}" if len(mse) > 1 else "-"
            gap = per_seed = "-"
            if base and label != "original":
                base_mse = [base[s]["mse"] for s in seeds]
                base_mean = sum(base_mse) / len(base_mse)
                gap = f"{mean / base_mean - 1:+.2%}"
                if len(seeds) > 1:
                    se = math.sqrt(statistics.variance(mse) / len(mse)
                                   + statistics.variance(base_mse) / len(base_mse))
                    gap += f" ± {se / base_mean:.2%}"
                per_seed = ", ".join(f"{a / b - 1:+.2%}" for a, b in zip(mse, base_mse))
            r = sum(by_seed[s]["r"] for s in seeds) / len(seeds)
            print(f"| {config} | {' '.join(held_out)} | {label} | "
                  f"{', '.join(f'{x:.4f}' for x in mse)} | {mean:.4f} | {spread} | {gap} | "
                  f"{per_seed} | {r:.3f} |")


if __name__ == "__main__":
    main()
