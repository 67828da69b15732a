"""Two checkouts of the project trained side by side: the same arithmetic, and which is faster.

Each round trains the original tutorial's configuration (the settings as given) on the 24
pilot tracks other than E065 / H3K4me3, in a process of its own per checkout, alternating
between them, and prints the held-out MSE (equal to the last bit when a change moved no
arithmetic) and the samples/s of each, with the ratio per round.

Usage::

    git worktree add --detach ../before <commit>
    OMP_WAIT_POLICY=PASSIVE python benchmarks/compare_versions.py ../before . --rounds 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from machine import cpu_model

HELD_OUT = ("E065", "H3K4me3")
#: What each process runs (inside the checkout, so that its own avocado_core is imported).
WORKER = r"""
import json, sys, time
import numpy as np, torch
from avocado_core import Avocado, datasets
from avocado_core.model import PRESETS
epochs, positions = int(sys.argv[1]), int(sys.argv[2]) or None
torch.set_num_threads(1)
tracks = {k: np.asarray(v[:positions], np.float32)
          for k, v in datasets.roadmap_pilot().tracks("observed").items()}
held = ("E065", "H3K4me3")
train = {k: v for k, v in tracks.items() if k != held}
new = "original-small" in PRESETS  # the tutorial's configuration, by either name
model = Avocado.from_preset("original-small" if new else "small", train,
                            len(tracks[held]), seed=0, device="cpu")
t0 = time.perf_counter()
model.fit(train, n_epochs=epochs, epoch_size=113, progress=False,
          **({"choose_settings": False} if new else {}))
seconds = time.perf_counter() - t0
mse = float(np.mean((model.predict(*held).astype(np.float64) - tracks[held]) ** 2))
print(json.dumps({"samples_per_s": epochs * 113 * 10_000 / seconds, "mse": mse}))
"""


def _run(checkout: Path, epochs: int, positions: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve()),
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    out = subprocess.run([sys.executable, "-c", WORKER, str(epochs), str(positions)],
                         cwd=checkout, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path, help="the first checkout")
    p.add_argument("after", type=Path, help="the second checkout")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--positions", type=int, default=0, help="first N bins only (smoke runs)")
    args = p.parse_args()
    print(f"# CPU: {cpu_model()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| round | before samples/s | after samples/s | after / before | before MSE | "
          "after MSE |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in range(1, args.rounds + 1):
        before, after = (_run(c, args.epochs, args.positions) for c in (args.before, args.after))
        print(f"| {r} | {before['samples_per_s']:,.0f} | {after['samples_per_s']:,.0f} | "
              f"{after['samples_per_s'] / before['samples_per_s']:.2f} | {before['mse']!r} | "
              f"{after['mse']!r} |", flush=True)


if __name__ == "__main__":
    main()
