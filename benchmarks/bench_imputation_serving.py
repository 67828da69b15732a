"""Stored or on-the-fly imputation: which serves the locus page faster, and what storing costs.

The locus page asks the workspace for the observed and imputed values of its tracks over a
window (``Workspace.windows``): observed values come from the store; imputed ones from the
store's "imputed" tracks when it has them, else from the model (``Avocado.predict_many``, one
call for every track of the view). This script times both ways on one workspace, in one run:

* ``on the fly``: ``Workspace.windows`` with no stored imputation (what the app does on the
  ENCODE-layout workspace);
* ``stored``: the same observed reads, plus the imputations read from a scratch store into
  which the script has written exactly those tracks' imputations (``TrackStore.fetch_many``);

for the locus page's default window (100 kb) and its largest (2 Mb), and prints what storing
the whole tensor would take: the disk (cells x bins x 4 bytes) and the time to impute it
(measured per track on the tracks imputed here).

Usage::

    python benchmarks/bench_imputation_serving.py WORKSPACE [--tracks 24] [--repeats 20]

WORKSPACE: e.g. ``avocado demo encode-ws/ --source encode-layout --no-serve``'s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from machine import cpu_model  # noqa: E402

from avocado_core._io import format_bytes  # noqa: E402
from avocado_core.imputation import impute_experiments  # noqa: E402
from avocado_core.store import TrackStore  # noqa: E402
from avocado_core.workspace import Workspace  # noqa: E402

#: The locus page's default window and its largest (dashboard.pages.locus.MAX_WINDOW_BP).
WINDOWS_BP = (100_000, 2_000_000)


def pick_tracks(ws: Workspace, n: int) -> list[tuple[str, str]]:
    """``n`` experiments as a locus view shows them: half observed, half never performed,
    spread over the tensor."""
    status = ws.status()
    observed = [(b, a) for b, a in zip(*np.nonzero(status.to_numpy() == "observed"))]
    missing = [(b, a) for b, a in zip(*np.nonzero(status.to_numpy() != "observed"))]
    rows, cols = list(status.index), list(status.columns)
    chosen = []
    for pool, k in ((observed, n // 2), (missing, n - n // 2)):
        take = np.linspace(0, len(pool) - 1, min(k, len(pool))).astype(int)
        chosen += [(rows[pool[i][0]], cols[pool[i][1]]) for i in take]
    return chosen


def time_calls(fn, starts: list[int]) -> np.ndarray:
    fn(starts[0])  # warm-up: memory maps, first predict
    out = []
    for s in starts:
        t0 = time.perf_counter()
        fn(s)
        out.append(time.perf_counter() - t0)
    return np.asarray(out) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace")
    parser.add_argument("--tracks", type=int, default=24, help="tracks in the view")
    parser.add_argument("--repeats", type=int, default=20, help="windows per measurement")
    args = parser.parse_args()
    ws = Workspace(args.workspace)
    store = ws.store
    experiments = pick_tracks(ws, args.tracks)
    imputed_in_store = [e for e in experiments if store.has_track(*e, "imputed")]
    if imputed_in_store:
        sys.exit(f"{args.workspace} stores imputations ({len(imputed_in_store)} of these "
                 "tracks): this compares against a workspace that imputes on the fly")
    observed = [e for e in experiments if store.has_track(*e, "observed")]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        scratch = TrackStore.create(Path(tmp) / "store", store.regions)
        t0 = time.perf_counter()
        impute_experiments(ws.model, scratch, experiments, progress=False)
        per_track = (time.perf_counter() - t0) / len(experiments)
        print(f"workspace {ws.path}: {len(ws.biosamples)} biosamples x {len(ws.assays)} assays, "
              f"{store.n_bins:,} bins; {len(experiments)} tracks in the view "
              f"({len(observed)} observed); CPU: {cpu_model()}, load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print()
        print("| window | on the fly p50 / p95 | stored p50 / p95 | on the fly / stored (p50) |")
        print("|---|---|---|---|")
        widths = dict.fromkeys(min(span // store.regions.bin_size, store.n_bins)
                               for span in WINDOWS_BP)
        for width in widths:
            span = width * store.regions.bin_size
            starts = list(rng.integers(0, store.n_bins - width + 1, args.repeats))

            def on_the_fly(s: int) -> None:
                ws.windows(experiments, s, s + width)

            def stored(s: int) -> None:
                store.fetch_many(observed, (s, s + width), "observed")
                scratch.fetch_many(experiments, (s, s + width), "imputed")

            fly, disk = time_calls(on_the_fly, starts), time_calls(stored, starts)
            print(f"| {span // 1000:,} kb ({width:,} bins) | {np.median(fly):.1f} / "
                  f"{np.percentile(fly, 95):.1f} ms | {np.median(disk):.1f} / "
                  f"{np.percentile(disk, 95):.1f} ms | {np.median(fly) / np.median(disk):.1f} |")
    cells = len(ws.biosamples) * len(ws.assays)
    print()
    print(f"storing every imputation: {cells:,} tracks, "
          f"{format_bytes(cells * store.n_bins * 4)} on disk, about "
          f"{cells * per_track / 60:.0f} min to impute ({per_track * 1000:.0f} ms per track)")


if __name__ == "__main__":
    main()
