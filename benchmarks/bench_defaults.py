"""What the defaults cost: ``avocado train`` on the pilot, and the automatic choice as the
compendium grows.

Two tables, in one run, on this machine:

1. ``avocado train pilot/ model/`` with no flag but ``-x E065:H3K4me3`` (the defaults: the
   ``"small"`` preset, 30 epochs, the averaging window and each biosample's blend and smoothing
   chosen on 5 validation folds of the training tracks, 3 models sharing that choice), timed
   end to end in its own process, against one plain ``fit`` of the same model
   (``choose_settings=False``): what the choice and the ensemble cost, in units of one
   training.
2. The choice's cost against one training on synthetic compendia of 50, 100 and 200 biosamples
   (24 assays, 30% observed, clearly synthetic): a training epoch is one pass over the
   positions whatever the number of tracks, and the choice trains a fixed number of copies and
   scores at most ``choice.SCORED_TRACKS`` track-lengths of validation bins per candidate
   window, so the ratio should stay flat as the compendium grows.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_defaults.py            # ~15 min on 2 cores
    python benchmarks/bench_defaults.py --positions 20000 --epochs 2 --sizes 20  # smoke run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from machine import cpu_model
from pilot import add_positions_option, pilot_tracks

from avocado_core import Avocado, synthetic_compendium
from avocado_core.choice import SCORED_TRACKS
from avocado_core.regions import RegionSet
from avocado_core.store import TrackStore

HELD_OUT = ("E065", "H3K4me3")


def _timed_fit(tracks, epochs: int, choose: bool) -> float:
    model = Avocado.from_preset("small", tracks, len(next(iter(tracks.values()))), seed=0,
                                device="cpu")
    t0 = time.perf_counter()
    model.fit(tracks, n_epochs=epochs, progress=False, choose_settings=choose)
    return time.perf_counter() - t0


def _pilot_store(tracks, path: Path) -> Path:
    """The pilot tracks (cut to ``--positions``) as a store on one synthetic chromosome."""
    import pandas as pd

    n = len(next(iter(tracks.values())))
    store = TrackStore.create(path, RegionSet(pd.DataFrame(
        {"chrom": ["chr1"], "start": [0], "end": [n * 25]})))
    store.add_tracks((b, a, v) for (b, a), v in tracks.items())
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_positions_option(p)
    p.add_argument("--epochs", type=int, default=30, help="epochs of every training")
    p.add_argument("--sizes", default="50,100,200", help="biosamples of the synthetic compendia")
    p.add_argument("--synthetic-positions", type=int, default=100_000)
    p.add_argument("--skip-pilot", action="store_true", help="only the synthetic table")
    args = p.parse_args()
    print(f"# CPU: {cpu_model()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}\n")
    warm = synthetic_compendium(n_biosamples=8, n_assays=4, n_positions=2000, seed=1)
    _timed_fit(warm.observed_tracks, 1, choose=False)  # compile the kernels: not timed

    if not args.skip_pilot:
        tracks = pilot_tracks(args.positions)
        train = {k: v for k, v in tracks.items() if k != HELD_OUT}
        with tempfile.TemporaryDirectory() as tmp:
            if args.positions is None:
                from avocado_core import datasets

                path = datasets.roadmap_pilot().path
            else:
                path = _pilot_store(tracks, Path(tmp) / "pilot")
            command = [sys.executable, "-m", "avocado_core", "train", str(path),
                       str(Path(tmp) / "model"), "-x", ":".join(HELD_OUT), "--epochs",
                       str(args.epochs), "-q"]
            t0 = time.perf_counter()
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            default_s = time.perf_counter() - t0
        plain_s = _timed_fit(train, args.epochs, choose=False)
        print("## avocado train with the defaults (the pilot, E065 H3K4me3 held out)\n")
        print(f"`{' '.join(command[2:4])} PILOT MODEL -x {':'.join(HELD_OUT)} --epochs "
              f"{args.epochs}`: {out.strip().splitlines()[-1]}\n")
        print("| run | seconds | in plain trainings |")
        print("|---|---:|---:|")
        print(f"| one plain fit (`choose_settings=False`, one model) | {plain_s:.1f} | 1.0 |")
        print(f"| `avocado train` defaults (choice + 3 models, process start and saving "
              f"included) | {default_s:.1f} | {default_s / plain_s:.1f} |\n")

    print(f"## The choice against one training as the compendium grows (synthetic; "
          f"{args.synthetic_positions:,} positions, scored on at most {SCORED_TRACKS} "
          "track-lengths)\n")
    print("| biosamples | observed tracks | one training (s) | fit with the choice (s) | "
          "ratio |")
    print("|---:|---:|---:|---:|---:|")
    for n in map(int, args.sizes.split(",")):
        comp = synthetic_compendium(n_biosamples=n, n_assays=24,
                                    n_positions=args.synthetic_positions, seed=0)
        data = comp.observed_tracks
        one = _timed_fit(data, args.epochs, choose=False)
        both = _timed_fit(data, args.epochs, choose=True)
        print(f"| {n} | {len(data)} | {one:.1f} | {both:.1f} | {both / one:.1f} |")


if __name__ == "__main__":
    main()
