"""Held-out tracks of a workspace: the imputation's error beside average activity's, and how
often the observed signal falls inside the nominal 90 % band drawn by the app.

The workspace's band comes from an ensemble's spread, calibrated on its calibration
experiments (``build_workspace``: one Latin square of the pilot, never trained on, then removed
from the store). This script scores it on the *other* held-out experiments (another Latin
square, never trained on and never used for the calibration), per track and over all of their
bins, beside the members' own uncalibrated 5-95 % range; and it scores the stored imputation
(the ensemble's mean) against average activity over the tracks the models trained on.

Usage::

    python benchmarks/bench_band.py WORKSPACE

WORKSPACE is a workspace built by ``build_workspace`` with held-out experiments and an ensemble
(``avocado demo``'s); it is built when missing (the demo build, a few minutes).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avocado_core.baselines import average_activity  # noqa: E402
from avocado_core.uncertainty import coverage, member_band  # noqa: E402
from avocado_core.workspace import Workspace  # noqa: E402
from avocado_core.workspace_build import build_workspace  # noqa: E402


def band_table(ws: Workspace) -> list[dict]:
    """One row per held-out experiment: coverage of the calibrated and of the members' band,
    and the calibrated band's mean half-width."""
    status = ws.status()
    trained = {k: ws.store.track(*k, "observed") for k in ws.model.trained_on}
    rows = []
    for b in status.index:
        for a in status.columns:
            if status.loc[b, a] != "held out":
                continue
            n = ws.store.n_bins
            band = ws.band(b, a, 0, n)
            if band is None:
                continue
            low, high, calibrated = band
            observed = np.asarray(ws.store.track(b, a, "observed"))
            mean = np.asarray(ws.store.track(b, a, "imputed"))
            spread = np.asarray(ws.store.track(b, a, "spread"))
            activity = average_activity(trained, b, a).astype(np.float64)
            rows.append({
                "experiment": f"{b} {a}", "calibrated": calibrated,
                "mse": float(np.mean((np.maximum(mean, 0) - observed) ** 2)),
                "activity_mse": float(np.mean((activity - observed) ** 2)),
                "coverage": coverage(observed, low, high),
                "members": coverage(observed, *member_band(mean, spread)),
                "width": float(np.mean(high - low) / 2),
                "hits": int(np.sum((observed >= low) & (observed <= high))), "n": n,
            })
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    args = parser.parse_args(argv)
    ws = build_workspace(args.workspace, progress=False) if not (
        args.workspace / "workspace.json").is_file() else Workspace(args.workspace)
    rows = band_table(ws)
    if not rows:
        sys.exit("no held-out experiment with a band in this workspace (it needs held-out "
                 "experiments and an ensemble: build it with build_workspace / avocado demo)")
    band = ws.info.get("band", {})
    print(f"Workspace {ws.path}: {len(ws.member_paths)} models; band calibrated on "
          f"{', '.join(' '.join(e) for e in band.get('calibration', [])) or 'n/a'} "
          f"(level {band.get('level', 'n/a')}, scale {band.get('scale', float('nan')):.3g}, "
          f"floor {band.get('floor', float('nan')):.3g})")
    print()
    print("| held-out experiment | MSE | average activity's MSE | coverage of the 90% band | "
          "members' 5-95% range | mean half-width |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['experiment']} | {r['mse']:.4f} | {r['activity_mse']:.4f} | "
              f"{r['coverage']:.3f} | {r['members']:.3f} | {r['width']:.3f} |")
    hits, n = sum(r["hits"] for r in rows), sum(r["n"] for r in rows)
    members = float(np.mean([r["members"] for r in rows]))
    won = sum(r["mse"] < r["activity_mse"] for r in rows)
    mse, activity = (np.mean([r[k] for r in rows]) for k in ("mse", "activity_mse"))
    print(f"| **all {len(rows)} tracks** ({won} won by MSE) | {mse:.4f} | {activity:.4f} | "
          f"**{hits / n:.3f}** | {members:.3f} | {np.mean([r['width'] for r in rows]):.3f} |")
    if not all(r["calibrated"] for r in rows):
        print("\nwarning: some bands are not calibrated (the members' range is shown)")


if __name__ == "__main__":
    main()
