"""Accuracy of ensembles of k models against average activity, by k, on the real pilot tracks.

The 25 pilot tracks (5 biosamples x 5 marks) are split into the 5 folds of ``avocado
evaluate`` (seed 0). For each fold, ``--seeds`` models are trained on the other folds (member
m from seed ``fold + 100 m``, as ``AvocadoEnsemble.fit`` and ``evaluate --models`` seed them),
and every subset of k members is scored as an ensemble (the mean of its members'
imputations) on the held-out tracks. The table gives, per k, the mean MSE over the 25 tracks
and the number of tracks where the ensemble beats average activity by MSE: lowest, mean and
highest over the subsets, and the share of subsets that win at least 20 of 25. Training cost
grows as k.

Full run (the README's numbers; about 15 minutes on one core)::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_ensemble.py
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from pilot import add_training_options, pilot_tracks

from avocado_core import Avocado, AvocadoEnsemble, average_activity, evaluation

CONFIG = {"batch_size": 40000, "learning_rate": 0.002, "biosample_decay": 0.1,
          "average_activity": None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=6, help="members trained per fold")
    add_training_options(p, 45, 10, CONFIG, "keyword arguments of Avocado.small")
    args = p.parse_args()

    tracks = pilot_tracks(args.positions)
    n = len(next(iter(tracks.values())))
    biosamples = sorted({b for b, _ in tracks})
    assays = sorted({a for _, a in tracks})
    subsets = {k: list(itertools.combinations(range(args.seeds), k))
               for k in range(1, args.seeds + 1)}
    mse = {k: [] for k in subsets}  # per k: array (subsets, tracks of the fold), by fold
    aa_mse = []
    seconds = 0.0
    for i, fold in enumerate(evaluation.make_folds(tracks.keys(), 5, seed=0)):
        held = set(fold)
        train = {key: v for key, v in tracks.items() if key not in held}
        t0 = time.perf_counter()
        ensemble = AvocadoEnsemble.fit(
            lambda s: Avocado.small(biosamples, assays, n, seed=s, **args.config), train,
            args.seeds, seed=i, n_epochs=args.epochs, average_from=args.average_from,
            progress=False, choose_settings=False)
        seconds += time.perf_counter() - t0
        for b, a in fold:
            y = np.asarray(tracks[b, a], dtype=np.float64)
            aa_mse.append(np.mean((y - average_activity(train, b, a)) ** 2))
            members = np.stack([m.predict(b, a) for m in ensemble.models]).astype(np.float64)
            for k, combos in subsets.items():
                mse[k].append([np.mean((y - members[list(c)].mean(0)) ** 2) for c in combos])
        print(f"fold {i + 1}/5 done ({seconds:.0f} s of training so far)", flush=True)

    aa_mse = np.array(aa_mse)
    print(f"\nAverage activity: mean MSE {aa_mse.mean():.4f} over {len(aa_mse)} tracks. "
          f"{args.seeds} models per fold, {seconds / 5 / args.seeds:.0f} s of training each.\n")
    print("| models (k) | subsets | mean MSE (mean; lowest-highest) "
          "| tracks won by MSE (lowest / mean / highest) | subsets winning >= 20 of 25 |")
    print("|---:|---:|---|---|---:|")
    for k, combos in subsets.items():
        m = np.array(mse[k]).T  # (subsets, tracks)
        wins = (m < aa_mse).sum(1)
        means = m.mean(1)
        print(f"| {k} | {len(combos)} | {means.mean():.4f}; {means.min():.4f}-{means.max():.4f} "
              f"| {wins.min()} / {wins.mean():.1f} / {wins.max()} | {np.mean(wins >= 20):.0%} |")


if __name__ == "__main__":
    main()
