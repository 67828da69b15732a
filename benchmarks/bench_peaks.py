"""Why the peaks (MSE1obs) and the mean error pull apart: out-of-fold imputations, pilot tracks.

The 25 pilot tracks are split into the 5 folds of ``avocado evaluate`` (seed 0); inside each
fold, its 20 training tracks into the 5 inner folds of the nested selection (seed = the fold's
index, as ``select_hyperparameters`` splits them). One model per inner split is trained on the
other 16 tracks (the headline's settings: small config, batch 40,000, lr 0.002, average
activity as an input, 30 epochs, weights averaged from epoch 3) and imputes its 4 validation
tracks: 100 imputations from models that did not see them. The held-out tracks of the outer
folds are never read, so nothing here spends them.

Printed, over those 100 imputations:

1. mean MSE and MSE1obs (the MSE on the top 1% of observed bins) of each blend towards
   average activity and smoothing, of average activity, and of the blend and smoothing
   chosen per biosample on its other validation tracks of the fold (by MSE or by MSE1obs);
   with the mean of imputed minus observed on the top 1% (its square is the bias part of
   MSE1obs);
2. the top 1% of observed bins split into shared peaks (in average activity's top 5%) and the
   biosample's own: their share, and the mean observed, average activity and model there;
3. every bin by average activity's percentile: mean observed, average activity and model
   (where the others have peaks, how far this biosample follows).

Full run (docs/average-activity.md's numbers; about 6 minutes on the 2-core machine)::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_peaks.py
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import pandas as pd
from machine import cpu_model
from pilot import add_training_options, pilot_tracks

from avocado_core import Avocado, evaluation
from avocado_core.baselines import windowed_mean
from avocado_core.metrics import top_mask

CONFIG = {"preset": "small", "batch_size": 40000, "learning_rate": 0.002,
          "average_activity": "input"}
BLENDS, SMOOTHINGS = (0.0, 0.25, 0.5, 0.75), (1, 5, 9, 13)
#: Percentile bands of average activity (table 3).
BANDS = ((90, 95), (95, 99), (99, 99.9), (99.9, 100))


def _scores(y: np.ndarray, x: np.ndarray, top: np.ndarray) -> dict[str, float]:
    d = x.astype(np.float64) - y
    return {"mse": float(np.mean(d ** 2)), "mse1obs": float(np.mean(d[top] ** 2)),
            "bias1obs": float(np.mean(d[top]))}


def _track_rows(y: np.ndarray, raw: np.ndarray, mean: np.ndarray) -> tuple[list, list, list]:
    """The three tables' rows of one validation track."""
    top = top_mask(y, 0.01)
    grid = [{"blend": blend, "smoothing": s,
             **_scores(y, windowed_mean((1 - blend) * raw + blend * mean, s), top)}
            for blend, s in itertools.product(BLENDS, SMOOTHINGS)]
    grid.append({"blend": 1.0, "smoothing": 1, **_scores(y, mean, top)})
    shared = top_mask(mean, 0.05)
    split = [{"peaks": name, "share": m.sum() / top.sum(), "observed": y[m].mean(),
              "average activity": mean[m].mean(), "model": raw[m].mean()}
             for name, m in (("shared (in average activity's top 5%)", top & shared),
                             ("the biosample's own", top & ~shared))]
    edges = np.percentile(mean, [lo for lo, _ in BANDS] + [100])
    bands = []
    for (lo, hi), a, b in zip(BANDS, edges[:-1], edges[1:]):
        m = (mean >= a) & ((mean < b) if hi < 100 else (mean <= b))
        bands.append({"average activity percentile": f"{lo:g}-{hi:g}", "observed": y[m].mean(),
                      "average activity": mean[m].mean(), "model": raw[m].mean()})
    return grid, split, bands


def _per_biosample(grid: pd.DataFrame, by: str) -> pd.Series:
    """Each track scored with the blend and smoothing that won, by ``by``, on the other
    validation tracks of its biosample in the same outer fold (leave the track out)."""
    options = grid[grid["blend"] < 1]
    rows = []
    for (fold, b, a), _ in options.groupby(["fold", "biosample", "assay"]):
        others = options[(options["fold"] == fold) & (options["biosample"] == b)
                          & (options["assay"] != a)]
        blend, s = others.groupby(["blend", "smoothing"])[by].mean().idxmin()
        mine = options[(options["fold"] == fold) & (options["biosample"] == b)
                       & (options["assay"] == a) & (options["blend"] == blend)
                       & (options["smoothing"] == s)]
        rows.append(mine[["mse", "mse1obs", "bias1obs"]].iloc[0])
    return pd.DataFrame(rows).mean()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_training_options(p, 30, 2, CONFIG, "Avocado.from_preset's config")
    args = p.parse_args()

    tracks = pilot_tracks(args.positions)
    n = len(next(iter(tracks.values())))
    grid, split, bands = [], [], []
    t0 = time.perf_counter()
    for i, fold in enumerate(evaluation.make_folds(tracks.keys(), 5, seed=0)):
        train = {k: v for k, v in tracks.items() if k not in set(fold)}
        for val in evaluation.make_folds(train.keys(), 5, seed=i):
            inner = {k: v for k, v in train.items() if k not in set(val)}
            model = Avocado.from_preset(args.config, tracks.keys(), n, seed=i)
            model.fit(inner, n_epochs=args.epochs, average_from=args.average_from,
                      progress=False, choose_settings=False)
            for b, a in val:
                y = np.asarray(tracks[b, a], np.float64)
                raw, mean = model.predict_settings(b, a, [{"activity_blend": 0.0},
                                                          {"activity_blend": 1.0}])
                g, s, c = _track_rows(y, raw.astype(np.float64), mean.astype(np.float64))
                key = {"fold": i, "biosample": b, "assay": a}
                grid += [{**key, **r} for r in g]
                split += s
                bands += c
        print(f"fold {i + 1}/5 done ({time.perf_counter() - t0:.0f} s)", flush=True)

    grid = pd.DataFrame(grid)
    n_tracks = len(grid.drop_duplicates(["fold", "biosample", "assay"]))
    print(f"\nCPU: {cpu_model()}. {n_tracks} out-of-fold imputations of validation tracks "
          f"({n:,} bins each; {args.epochs} epochs, weights averaged from epoch "
          f"{args.average_from + 1}).\n")
    print("| imputation | mean MSE | MSE1obs | mean imputed - observed on the top 1% |")
    print("|---|---:|---:|---:|")
    means = grid.groupby(["blend", "smoothing"])[["mse", "mse1obs", "bias1obs"]].mean()
    for (blend, s), r in means.iterrows():
        name = ("average activity" if blend == 1 else
                f"blend {blend:g}, smoothing {s}" if s > 1 else f"blend {blend:g}")
        print(f"| {name} | {r['mse']:.4f} | {r['mse1obs']:.3f} | {r['bias1obs']:.2f} |")
    for by in ("mse", "mse1obs"):
        r = _per_biosample(grid, by)
        print(f"| blend and smoothing per biosample, chosen by {by} | {r['mse']:.4f} | "
              f"{r['mse1obs']:.3f} | {r['bias1obs']:.2f} |")

    print("\nThe top 1% of observed bins (means over the imputations; the model unblended):\n")
    _print_means(split, "peaks")
    print("\nEvery bin, by average activity's percentile (means over the imputations):\n")
    _print_means(bands, "average activity percentile")


def _print_means(rows: list[dict], by: str) -> None:
    """A markdown table of the mean of every other column per value of ``by`` (a share as
    a percentage)."""
    table = pd.DataFrame(rows).groupby(by, sort=False).mean()
    print(f"| {by} | " + " | ".join(table.columns) + " |")
    print("|---|" + "---:|" * len(table.columns))
    for name, r in table.iterrows():
        cells = [f"{v:.0%}" if c == "share" else f"{v:.2f}" for c, v in r.items()]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
