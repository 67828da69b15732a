"""Held-out evaluation: train on some experiments, score model and baselines on the rest.

``cross_validate`` splits the observed experiments of a store into folds (leave-one-experiment-
out, or k folds chosen so that every biosample and every assay keeps at least one training
experiment in every fold), trains a fresh ``Avocado`` on each fold's training experiments,
and scores the model and each baseline on the held-out tracks with every metric of
``avocado_core.metrics``. Each finished fold is cached (atomically) in ``cache_dir`` under a
key of its experiments and settings, so a rerun resumes after the last finished fold.

``summarize`` writes the markdown summary (means per method and per assay, and for each
baseline how many tracks the model wins), ``plot_evaluation`` the per-track figure, and
``evaluate_to_dir`` all three plus the TSV. ``avocado evaluate`` runs it from the shell.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _io
from . import baselines as _baselines
from .errors import AvocadoKeyError, AvocadoValueError
from .metrics import HIGHER_IS_BETTER, score_track

__all__ = [
    "BASELINES",
    "make_folds",
    "cross_validate",
    "summarize",
    "plot_evaluation",
    "evaluate_to_dir",
]

Experiment = tuple[str, str]

#: Baselines scored next to the model: name -> f(training tracks, biosample, assay).
BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "average_activity": _baselines.average_activity,
    "assay_mean": _baselines.assay_mean,
}

#: Name of the model's rows in the results.
MODEL = "avocado"


def make_folds(
    experiments: Iterable[Experiment],
    n_folds: int | None = 5,
    seed: int = 0,
    max_tries: int = 200,
) -> list[list[Experiment]]:
    """Split experiments into held-out folds that never hide a whole biosample or assay.

    Parameters
    ----------
    experiments: iterable of (biosample, assay)
        The observed experiments.
    n_folds: int or None, optional
        Number of folds; None (or at least the number of experiments) means leave one
        experiment out. Default is 5.
    seed: int, optional
        Seed of the assignment. Default is 0.
    max_tries: int, optional
        Random restarts of the greedy assignment before giving up. Default is 200.

    Returns
    -------
    folds: list of list of (biosample, assay)
        Every experiment is in exactly one fold; within a fold, every biosample and every
        assay keeps at least one experiment outside the fold. Folds are as even in size as the
        greedy assignment allows, and each spreads its experiments over different biosamples
        and assays (a Latin square on a complete grid).
    """
    exps = sorted({(str(b), str(a)) for b, a in experiments})
    if not exps:
        raise AvocadoValueError("no experiments to split into folds")
    bios = sorted({b for b, _ in exps})
    assays = sorted({a for _, a in exps})
    bi = np.array([bios.index(b) for b, _ in exps])
    ai = np.array([assays.index(a) for _, a in exps])
    n_b = np.bincount(bi, minlength=len(bios))
    n_a = np.bincount(ai, minlength=len(assays))
    lonely = [e for e, b, a in zip(exps, bi, ai) if n_b[b] < 2 or n_a[a] < 2]
    if lonely:
        raise AvocadoValueError(
            f"{len(lonely)} experiment(s) cannot be held out without leaving their biosample or "
            f"assay with no training experiment: {lonely[:10]}; every biosample and assay "
            "needs at least two observed experiments"
        )
    if n_folds is None or n_folds >= len(exps):
        return [[e] for e in exps]
    if n_folds < 2:
        raise AvocadoValueError(f"n_folds={n_folds}; expected at least 2 (or None for LOO)")
    rng = np.random.default_rng(seed)
    # ideal spread: no fold holds out more of a biosample / assay than its share
    cap_b = -(-n_b // n_folds)
    cap_a = -(-n_a // n_folds)
    best, best_penalty = None, np.inf
    for _ in range(max_tries):  # restarts of a greedy assignment; a loop over experiments
        held_b = np.zeros((n_folds, len(bios)), dtype=int)
        held_a = np.zeros((n_folds, len(assays)), dtype=int)
        size = np.zeros(n_folds, dtype=int)
        fold_of = np.full(len(exps), -1)
        for i in rng.permutation(len(exps)):
            b, a = bi[i], ai[i]
            allowed = (held_b[:, b] < n_b[b] - 1) & (held_a[:, a] < n_a[a] - 1)
            if not allowed.any():
                break
            # prefer folds where this biosample and assay are not yet held out, then small ones
            cost = (held_b[:, b] + held_a[:, a]) * len(exps) + size + rng.random(n_folds) * 0.5
            f = int(np.argmin(np.where(allowed, cost, np.inf)))
            fold_of[i] = f
            held_b[f, b] += 1
            held_a[f, a] += 1
            size[f] += 1
        if not ((fold_of >= 0).all() and (size > 0).all()):
            continue
        penalty = (np.clip(held_b - cap_b, 0, None).sum() + np.clip(held_a - cap_a, 0, None).sum()
                   + max(0, size.max() - size.min() - 1))
        if penalty < best_penalty:
            best, best_penalty = fold_of.copy(), penalty
            if penalty == 0:
                break
    if best is not None:
        return [[exps[i] for i in np.flatnonzero(best == f)] for f in range(n_folds)]
    raise AvocadoValueError(
        f"could not split {len(exps)} experiments into {n_folds} folds that leave every "
        f"biosample and assay a training experiment; try fewer folds (biosamples with fewest "
        f"experiments: {min(n_b)}, assays: {min(n_a)})"
    )


def _fold_key(fold: Sequence[Experiment], settings: Mapping[str, Any]) -> str:
    text = json.dumps({"held_out": sorted(map(list, fold)), **settings}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cross_validate(
    data,
    n_folds: int | None = 5,
    config: str | Mapping[str, Any] = "small",
    n_epochs: int = 10,
    epoch_size: int | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    n_models: int = 1,
    baselines: Sequence[str] = ("average_activity", "assay_mean"),
    masks: Mapping[str, np.ndarray] | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Held-out evaluation of Avocado and baselines, fold by fold (resumable).

    Parameters
    ----------
    data: TrackStore or Mapping[(biosample, assay)] -> numpy.ndarray
        Observed tracks, all of one length (positions).
    n_folds: int or None, optional
        Number of folds (see ``make_folds``); None = leave one experiment out. Default is 5.
    config: "small", "paper" or dict, optional
        Model configuration, as :meth:`Avocado.from_preset <avocado_core.model.Avocado.from_preset>`
        takes it: a preset, or keyword arguments of ``Avocado(...)`` (a key
        ``"preset": "small"`` starts from ``Avocado.small``). Default is "small".
    n_epochs: int, optional
        Training epochs per fold. Default is 10.
    epoch_size: int, optional
        Batches per epoch (``Avocado.fit``'s default when None).
    fit_kwargs: dict, optional
        Further keyword arguments of ``Avocado.fit`` (e.g. ``sampling``). Default is None.
    seed: int, optional
        Seed of the folds, the model and its training (fold i trains from ``seed + i``).
        Default is 0.
    n_models: int, optional
        Models trained per fold; the model's imputation is the mean of theirs (an
        :class:`~avocado_core.ensemble.AvocadoEnsemble`, member k seeded with
        ``seed + i + 100 k``). Default is 1.
    baselines: sequence of str, optional
        Names in ``BASELINES`` to score next to the model. Default is both.
    masks: dict[str, numpy.ndarray], optional
        Bin masks for ``score_track`` (``"promoter"``, ``"gene"``, ``"enhancer"``).
    cache_dir: str or PathLike, optional
        Folder of per-fold results; a rerun with the same settings reuses finished folds.
        Default is None (no caching).
    device: str, optional
        Torch device of the models. Default is the model's default.
    progress: bool, optional
        Show fold and epoch progress. Default is True.

    Returns
    -------
    results: pandas.DataFrame
        One row per (held-out experiment, method): fold, biosample, assay, method, the metrics,
        and train_seconds (the fold's model training time, all members together; NaN for
        baselines).
    """
    from tqdm.auto import tqdm

    from .ensemble import AvocadoEnsemble, check_n_models
    from .model import Avocado

    tracks = _baselines.as_track_mapping(data)
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise AvocadoKeyError(f"unknown baseline(s) {unknown}; expected some of {list(BASELINES)}")
    lengths = {len(v) for v in tracks.values()}
    if len(lengths) != 1:
        raise AvocadoValueError(f"tracks have lengths {sorted(lengths)}; expected one length")
    n_positions = lengths.pop()
    folds = make_folds(tracks.keys(), n_folds, seed=seed)
    settings = {
        "config": config, "n_epochs": n_epochs, "epoch_size": epoch_size,
        "fit_kwargs": dict(fit_kwargs or {}), "seed": seed, "baselines": list(baselines),
        "masks": sorted(masks or {}), "n_positions": n_positions,
        "experiments": sorted(map(list, tracks.keys())),
    }
    if check_n_models(n_models) > 1:  # one model keeps the cache keys of earlier folds
        settings["n_models"] = int(n_models)
    cache = None if cache_dir is None else Path(cache_dir)

    frames = []
    bar = tqdm(folds, desc="folds", unit="fold", disable=not progress)
    for i, fold in enumerate(bar):
        bar.set_description(f"fold {i + 1}/{len(folds)}")
        file = None if cache is None else cache / f"fold{i:03d}-{_fold_key(fold, settings)}.tsv"
        if file is not None and file.is_file():
            frames.append(pd.read_csv(file, sep="\t"))
            continue
        held = set(fold)
        train = {k: v for k, v in tracks.items() if k not in held}
        kw = dict(fit_kwargs or {})
        if epoch_size is not None:
            kw["epoch_size"] = epoch_size
        t0 = time.perf_counter()
        model = AvocadoEnsemble.fit(
            lambda s: Avocado.from_preset(config, tracks.keys(), n_positions, seed=s,
                                          device=device),
            train, n_models, seed=seed + i, n_epochs=n_epochs, progress=progress, **kw,
        )
        seconds = time.perf_counter() - t0
        rows = []
        for b, a in fold:
            y = np.asarray(tracks[b, a])
            preds = {MODEL: model.predict(b, a)}
            for name in baselines:
                preds[name] = BASELINES[name](train, b, a)
            for method, x in preds.items():
                rows.append({"fold": i, "biosample": b, "assay": a, "method": method,
                             **score_track(y, x, masks),
                             "train_seconds": seconds if method == MODEL else np.nan})
        frame = pd.DataFrame(rows)
        if file is not None:
            _io.write_text(file, frame.to_csv(sep="\t", index=False))
        frames.append(frame)
        if progress:
            m = frame[frame["method"] == MODEL]
            tqdm.write(f"fold {i + 1}/{len(folds)}: {len(fold)} held out, model mean MSE "
                       f"{m['mse'].mean():.4f}, r {m['pearson'].mean():.3f}, "
                       f"trained in {seconds:.0f} s")
    return pd.concat(frames, ignore_index=True)


def _wins(results: pd.DataFrame, baseline: str, metric: str) -> tuple[int, int]:
    """Tracks where the model beats a baseline on a metric, and the number compared."""
    wide = results.pivot_table(index=["biosample", "assay"], columns="method", values=metric, dropna=False)
    both = wide[[MODEL, baseline]].dropna()
    if metric in HIGHER_IS_BETTER:
        return int((both[MODEL] > both[baseline]).sum()), len(both)
    return int((both[MODEL] < both[baseline]).sum()), len(both)


def summarize(results: pd.DataFrame, command: str | None = None,
              notes: str | None = None) -> str:
    """Markdown summary of ``cross_validate`` results.

    Parameters
    ----------
    results: pandas.DataFrame
        Output of ``cross_validate``.
    command: str, optional
        The command that produced the results, written as a comment at the top.
    notes: str, optional
        A paragraph to add after the header (settings, caveats).

    Returns
    -------
    markdown: str
        Means per method (every metric), mean MSE and Pearson per assay and method, the
        number of tracks where the model beats each baseline per metric, and a per-track
        table of MSE and Pearson.
    """
    metrics = [c for c in results.columns
               if c not in ("fold", "biosample", "assay", "method", "train_seconds")]
    methods = list(dict.fromkeys(results["method"]))
    n_tracks = results[["biosample", "assay"]].drop_duplicates().shape[0]
    out = []
    if command:
        out.append(f"<!-- {command} -->\n")
    out.append(f"Held-out evaluation: {n_tracks} tracks, {results['fold'].nunique()} folds; "
               "every track was held out once and scored against a model trained on the "
               "other folds' tracks. Lower is better for the MSE metrics, higher for the "
               "others.\n")
    if notes:
        out.append(notes.strip() + "\n")

    means = results.groupby("method", sort=False)[metrics].mean().loc[methods]
    out.append("### Mean over held-out tracks\n")
    out.append(_md_table(means.reset_index(), float_format="{:.4f}"))

    out.append("\n### Tracks where the model wins, per baseline\n")
    rows = []
    for base in methods:
        if base == MODEL:
            continue
        row = {"baseline": base}
        for m in metrics:
            w, n = _wins(results, base, m)
            row[m] = f"{w}/{n}" if n else "n/a"  # n = 0: the baseline's metric is undefined
        rows.append(row)
    out.append(_md_table(pd.DataFrame(rows)))

    out.append("\n### Mean per assay\n")
    per_assay = results.groupby(["assay", "method"], sort=True)[["mse", "pearson"]].mean()
    wide = per_assay.unstack("method")
    wide.columns = [f"{m} {metric}" for metric, m in wide.columns]
    cols = [f"{m} {metric}" for metric in ("mse", "pearson") for m in methods]
    out.append(_md_table(wide.reindex(columns=cols).reset_index(), float_format="{:.4f}"))

    out.append("\n### Per track\n")
    per_track = results.pivot_table(index=["biosample", "assay"], columns="method",
                                    values=["mse", "pearson"], dropna=False)
    per_track.columns = [f"{m} {metric}" for metric, m in per_track.columns]
    out.append(_md_table(per_track.reindex(columns=cols).reset_index(), float_format="{:.4f}"))
    if "train_seconds" in results:
        t = results.drop_duplicates("fold")["train_seconds"].dropna()
        if len(t):
            out.append(f"\nModel training time per fold: {t.mean():.0f} s on average "
                       f"({t.sum() / 60:.1f} min in all).\n")
    return "\n".join(out)


def _md_table(df: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "n/a" if np.isnan(v) else float_format.format(v)
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(df[c]) else "---"
                         for c in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def plot_evaluation(results: pd.DataFrame, path: str | os.PathLike,
                    baseline: str = "average_activity") -> Path:
    """Per-track scatter of model vs a baseline (MSE and Pearson), coloured by assay (PNG).

    Parameters
    ----------
    results: pandas.DataFrame
        Output of ``cross_validate``.
    path: str or PathLike
        Where to write the PNG (atomically).
    baseline: str, optional
        The baseline on the x axis. Default is "average_activity".

    Returns
    -------
    path: pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if baseline not in set(results["method"]):
        raise AvocadoKeyError(
            f"baseline {baseline!r} not in the results; expected one of "
            f"{sorted(set(results['method']) - {MODEL})}"
        )
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    assays = sorted(set(results["assay"]))
    colors = dict(zip(assays, plt.cm.tab10(np.arange(len(assays)) % 10)))
    for ax, metric, label in zip(axes, ("mse", "pearson"), ("MSE (lower is better)",
                                                            "Pearson r (higher is better)")):
        wide = results.pivot_table(index=["biosample", "assay"], columns="method",
                                   values=metric, dropna=False).reset_index()
        for assay in assays:
            t = wide[wide["assay"] == assay]
            ax.scatter(t[baseline], t[MODEL], s=36, color=colors[assay], label=assay,
                       edgecolor="black", linewidth=0.4)
        lo = float(np.nanmin(wide[[baseline, MODEL]].to_numpy()))
        hi = float(np.nanmax(wide[[baseline, MODEL]].to_numpy()))
        pad = 0.05 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", lw=1, ls="--")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        w, n = _wins(results, baseline, metric)
        ax.set_title(f"{label}: model wins {w}/{n}")
        ax.set_xlabel(baseline.replace("_", " "))
        ax.set_ylabel("Avocado (held out)")
    axes[1].legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    try:
        with _io.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return path


def evaluate_to_dir(
    data,
    out_dir: str | os.PathLike,
    prefix: str = "evaluation",
    command: str | None = None,
    notes: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Run ``cross_validate`` and write ``<prefix>.tsv``, ``<prefix>.md`` and ``<prefix>.png``.

    Parameters
    ----------
    data: TrackStore or Mapping
        Observed tracks.
    out_dir: str or PathLike
        Output folder (created if needed).
    prefix: str, optional
        File name stem. Default is "evaluation".
    command: str, optional
        Command line recorded at the top of the summary.
    notes: str, optional
        Extra paragraph for the summary.
    **kwargs
        Passed to ``cross_validate`` (n_folds, config, n_epochs, cache_dir, ...).

    Returns
    -------
    results: pandas.DataFrame
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = cross_validate(data, **kwargs)
    _io.write_text(out / f"{prefix}.tsv", results.to_csv(sep="\t", index=False,
                                                        float_format="%.6g"))
    _io.write_text(out / f"{prefix}.md", summarize(results, command=command, notes=notes))
    if "average_activity" in set(results["method"]):
        plot_evaluation(results, out / f"{prefix}.png")
    return results
