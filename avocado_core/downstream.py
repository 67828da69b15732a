"""Downstream usefulness of imputations and latent factors.

Two jobs:

- ``export_features``: per-region features from a trained model, i.e. the genome factors
  (mean over the region's bins or at its centre bin) and / or the imputed signal of chosen
  experiments, ready for a classifier.
- ``compare_feature_sets``: the Avocado paper's downstream comparison. Predict expressed genes
  in IMR90 (E017, label ``y >= 0.5``) and frequently interacting regions (FIREs) in GM12878
  (E116, the first 3,000 labels) from each published feature set (Roadmap observed,
  ChromImpute, PREDICTD, Avocado imputations, Avocado factors where present) by
  stratified k-fold cross-validated gradient boosting (scikit-learn's
  ``HistGradientBoostingClassifier`` with its default settings), scored by average precision
  per fold, reported as mean +/- standard error over folds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import _io
from .errors import AvocadoKeyError, AvocadoValueError
from .regions import read_bed

__all__ = [
    "TASKS",
    "downstream_dir",
    "load_task",
    "cross_validated_ap",
    "compare_feature_sets",
    "downstream_markdown",
    "plot_downstream",
    "read_regions",
    "export_features",
    "write_downstream_results",
]

#: The paper's two tasks: file prefix -> (description, feature sets, label rule).
TASKS: dict[str, dict] = {
    "RNAseq.E017": {
        "title": "Expressed genes, IMR90 (E017)",
        "feature_sets": ["Roadmap", "ChromImpute", "PREDICTD", "AvocadoImp"],
        "threshold": 0.5,  # expressed = y >= 0.5
        "n_labels": None,
    },
    "FIREs.E116": {
        "title": "FIREs, GM12878 (E116)",
        "feature_sets": ["Roadmap", "ChromImpute", "PREDICTD", "AvocadoImp", "AvocadoFac"],
        "threshold": 0.5,  # labels are 0 / 1
        "n_labels": 3000,  # the feature sets cover the first 3,000 labelled regions
    },
}

#: Readable names of the feature sets.
FEATURE_SET_NAMES = {
    "Roadmap": "Roadmap (observed)",
    "ChromImpute": "ChromImpute",
    "PREDICTD": "PREDICTD",
    "AvocadoImp": "Avocado imputations",
    "AvocadoFac": "Avocado factors",
}


def downstream_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder of the downstream feature sets.

    Parameters
    ----------
    path: str or PathLike, optional
        The folder. Default is ``$AVOCADO_DATA_MIRROR/downstream``.

    Returns
    -------
    path: pathlib.Path
    """
    if path is None:
        mirror = os.environ.get("AVOCADO_DATA_MIRROR")
        if not mirror:
            raise AvocadoValueError(
                "no downstream folder given and AVOCADO_DATA_MIRROR is not set; expected a "
                "path to the folder holding RNAseq.E017.*.npy and FIREs.E116.*.npy"
            )
        path = Path(mirror) / "downstream"
    path = Path(path)
    if not path.is_dir():
        raise AvocadoValueError(f"downstream folder {path} does not exist")
    return path


def load_task(
    task: str, path: str | os.PathLike | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Load the feature sets and binary labels of one downstream task.

    Parameters
    ----------
    task: str
        A key of ``TASKS``: ``"RNAseq.E017"`` or ``"FIREs.E116"``.
    path: str or PathLike, optional
        Folder of the files (see ``downstream_dir``).

    Returns
    -------
    features: dict[str, numpy.ndarray]
        Feature-set name -> (n_samples, n_features) float32 matrix, for the files present.
    labels: numpy.ndarray of bool, shape=(n_samples,)
    """
    if task not in TASKS:
        raise AvocadoKeyError(f"unknown downstream task {task!r}; expected one of {list(TASKS)}")
    spec = TASKS[task]
    folder = downstream_dir(path)
    y = np.load(folder / f"{task}.y.npy")
    if spec["n_labels"] is not None:
        y = y[: spec["n_labels"]]
    labels = y >= spec["threshold"]
    features = {}
    for name in spec["feature_sets"]:
        f = folder / f"{task}.{name}.npy"
        if not f.is_file():
            continue
        X = np.load(f).astype(np.float32)
        if X.shape[0] != labels.size:
            raise AvocadoValueError(
                f"{f.name} has {X.shape[0]} rows; expected {labels.size}, one per label"
            )
        features[name] = X
    if not features:
        raise AvocadoValueError(f"no feature set of task {task!r} found in {folder}")
    return features, labels


def cross_validated_ap(
    X: np.ndarray,
    y: np.ndarray,
    n_folds: int = 20,
    seed: int = 0,
    classifier=None,
) -> np.ndarray:
    """Average precision of a classifier on each fold of a stratified k-fold split.

    Parameters
    ----------
    X: numpy.ndarray, shape=(n_samples, n_features)
        Features.
    y: numpy.ndarray of bool, shape=(n_samples,)
        Binary labels.
    n_folds: int, optional
        Number of folds. Default is 20.
    seed: int, optional
        Seed of the fold shuffle and of the classifier. Default is 0.
    classifier: scikit-learn classifier, optional
        Cloned for each fold. Default is ``HistGradientBoostingClassifier(random_state=seed)``.

    Returns
    -------
    ap: numpy.ndarray, shape=(n_folds,)
        Average precision on each held-out fold.
    """
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold

    X = np.asarray(X)
    y = np.asarray(y).astype(bool)
    if X.ndim != 2 or X.shape[0] != y.size:
        raise AvocadoValueError(
            f"X has shape {X.shape} and y {y.shape}; expected (n, n_features) and (n,)"
        )
    n_pos = int(y.sum())
    if not 2 <= n_folds <= min(n_pos, y.size - n_pos):
        raise AvocadoValueError(
            f"n_folds={n_folds}; expected 2 <= n_folds <= the size of the smaller class "
            f"({min(n_pos, y.size - n_pos)})"
        )
    if classifier is None:
        classifier = HistGradientBoostingClassifier(random_state=seed)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = np.empty(n_folds)
    for i, (train, test) in enumerate(folds.split(X, y)):  # loop over folds
        clf = clone(classifier).fit(X[train], y[train])
        scores[i] = average_precision_score(y[test], clf.predict_proba(X[test])[:, 1])
    return scores


def compare_feature_sets(
    tasks: Sequence[str] | None = None,
    path: str | os.PathLike | None = None,
    n_folds: int = 20,
    seed: int = 0,
    feature_sets: Iterable[str] | None = None,
    max_samples: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The paper's downstream comparison: cross-validated average precision per feature set.

    Parameters
    ----------
    tasks: sequence of str, optional
        Keys of ``TASKS``. Default is both.
    path: str or PathLike, optional
        Folder of the feature files (see ``downstream_dir``).
    n_folds: int, optional
        Folds of the stratified cross-validation. Default is 20, as in the paper.
    seed: int, optional
        Seed of the splits and classifiers. Default is 0.
    feature_sets: iterable of str, optional
        Restrict to these feature sets (e.g. ``["Roadmap", "AvocadoImp"]``). Default is all.
    max_samples: int, optional
        Use a stratified random subset of this many samples per task (for quick checks).
        Default is None (all).
    progress: bool, optional
        Show a progress bar over (task, feature set). Default is True.

    Returns
    -------
    table: pandas.DataFrame
        One row per (task, feature set): task, title, feature_set, name, n_samples,
        n_positive, n_features, n_folds, mean_ap, sem_ap (standard error of the mean over
        folds), baseline_ap (the positive fraction: a random ranking's expected AP), and
        fold_ap (the per-fold values).
    """
    from tqdm.auto import tqdm

    tasks = list(TASKS) if tasks is None else list(tasks)
    wanted = None if feature_sets is None else set(feature_sets)
    jobs = []
    for task in tasks:
        features, y = load_task(task, path)
        if max_samples is not None and max_samples < y.size:
            from sklearn.model_selection import train_test_split

            keep, _ = train_test_split(
                np.arange(y.size), train_size=max_samples, stratify=y, random_state=seed
            )
            keep = np.sort(keep)
            features = {k: v[keep] for k, v in features.items()}
            y = y[keep]
        for name, X in features.items():
            if wanted is None or name in wanted:
                jobs.append((task, name, X, y))
    if not jobs:
        raise AvocadoKeyError(
            f"no feature set matches {sorted(wanted or [])}; expected some of "
            f"{sorted({n for t in tasks for n in TASKS[t]['feature_sets']})}"
        )
    rows = []
    for task, name, X, y in tqdm(jobs, desc="downstream", disable=not progress):
        ap = cross_validated_ap(X, y, n_folds=n_folds, seed=seed)
        rows.append({
            "task": task,
            "title": TASKS[task]["title"],
            "feature_set": name,
            "name": FEATURE_SET_NAMES.get(name, name),
            "n_samples": int(y.size),
            "n_positive": int(y.sum()),
            "n_features": int(X.shape[1]),
            "n_folds": n_folds,
            "mean_ap": float(ap.mean()),
            "sem_ap": float(ap.std(ddof=1) / np.sqrt(ap.size)),
            "baseline_ap": float(y.mean()),
            "fold_ap": ap.tolist(),
        })
    return pd.DataFrame(rows)


def downstream_markdown(table: pd.DataFrame) -> str:
    """A markdown table of ``compare_feature_sets`` output.

    Parameters
    ----------
    table: pandas.DataFrame
        Output of ``compare_feature_sets``.

    Returns
    -------
    markdown: str
    """
    lines = [
        "| task | feature set | features | samples (positive) | mean AP +/- s.e. |",
        "|---|---|---:|---:|---:|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.title} | {r.name} | {r.n_features} | {r.n_samples:,} ({r.n_positive:,}) | "
            f"{r.mean_ap:.4f} +/- {r.sem_ap:.4f} |"
        )
    return "\n".join(lines) + "\n"


def plot_downstream(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Bar chart of mean average precision +/- standard error, one panel per task (PNG).

    Parameters
    ----------
    table: pandas.DataFrame
        Output of ``compare_feature_sets``.
    path: str or PathLike
        Where to write the PNG (atomically).

    Returns
    -------
    path: pathlib.Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = table[table["task"] == task]
        ax.bar(np.arange(len(t)), t["mean_ap"], yerr=t["sem_ap"], capsize=4,
               color=plt.cm.tab10(np.arange(len(t))))
        ax.axhline(t["baseline_ap"].iloc[0], color="grey", ls="--", lw=1, label="random")
        ax.set_xticks(np.arange(len(t)), t["name"], rotation=30, ha="right")
        ax.set_ylabel(f"average precision ({t['n_folds'].iloc[0]}-fold CV)")
        ax.set_title(t["title"].iloc[0])
        top = min(1.0, float((t["mean_ap"] + t["sem_ap"]).max()) + 0.1)
        ax.set_ylim(0.0, top)
        ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    return _io.write_png(fig, path)


# --------------------------------------------------------------------------- feature export


def read_regions(regions_bed) -> pd.DataFrame:
    """Regions to featurize: a BED path, or a DataFrame with chrom, start, end (and name).

    Parameters
    ----------
    regions_bed: str or PathLike or pandas.DataFrame
        A BED file (chrom, start, end[, name, score, strand, ...]; gzip allowed) or a frame.

    Returns
    -------
    regions: pandas.DataFrame
        name, chrom, start, end.
    """
    if isinstance(regions_bed, pd.DataFrame):
        df = regions_bed.copy()
    else:
        df = read_bed(regions_bed, ["chrom", "start", "end", "name"], what="regions BED")
    missing = [c for c in ("chrom", "start", "end") if c not in df.columns]
    if missing:
        raise AvocadoValueError(f"regions lack column(s) {missing}; expected chrom, start, end")
    df["start"] = df["start"].astype(np.int64)
    df["end"] = df["end"].astype(np.int64)
    if (df["end"] <= df["start"]).any():
        bad = df[df["end"] <= df["start"]].iloc[0]
        raise AvocadoValueError(
            f"region {bad['chrom']}:{bad['start']}-{bad['end']} is empty; expected start < end"
        )
    if "name" not in df.columns:
        df["name"] = df["chrom"].astype(str) + ":" + df["start"].astype(str) + "-" + df[
            "end"].astype(str)
    return df[["name", "chrom", "start", "end"]].reset_index(drop=True)


def _groups(first: np.ndarray, last: np.ndarray, max_span: int) -> list[np.ndarray]:
    """Split regions (sorted by first bin) into groups whose bins span at most max_span."""
    order = np.argsort(first, kind="stable")
    groups, current, lo = [], [], None
    hi = -1
    for i in order:  # loop over regions (not positions): windows are fetched per group
        if current and max(hi, last[i]) - lo + 1 > max_span:
            groups.append(np.array(current))
            current = []
        if not current:
            lo, hi = first[i], last[i]
        current.append(i)
        hi = max(hi, last[i])
    if current:
        groups.append(np.array(current))
    return groups


def _window_features(values: np.ndarray, lo: int, first, last, center, mode: str) -> np.ndarray:
    """Per-region mean (prefix sums) or centre value of a (n_bins, k) window starting at lo."""
    if mode == "center":
        return values[center - lo]
    cs = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0,
                                                                   dtype=np.float64)])
    return (cs[last + 1 - lo] - cs[first - lo]) / (last - first + 1)[:, None]


def export_features(
    model,
    regions_bed,
    regions,
    mode: str = "mean",
    factors: bool = True,
    experiments: Iterable[tuple[str, str]] | None = None,
    max_span: int = 200_000,
    progress: bool = True,
) -> pd.DataFrame:
    """Features of genomic regions from a trained model: genome factors and / or imputations.

    Parameters
    ----------
    model: Avocado
        A trained model (uses ``genome_embedding(start, end)`` and
        ``predict(biosample, assay, start, end)``).
    regions_bed: str or PathLike or pandas.DataFrame
        The regions to featurize (genes, elements): BED file or frame (see ``read_regions``).
    regions: RegionSet
        The region set whose bins are the model's positions (e.g. ``store.regions``).
    mode: {"mean", "center"}, optional
        Average over the region's bins, or take the bin at the region's centre. Default is
        "mean".
    factors: bool, optional
        Include the genome factors (columns ``factor_0`` ...). Default is True.
    experiments: iterable of (biosample, assay), optional
        Include the imputed signal of these experiments (columns ``"biosample.assay"``).
        Default is None.
    max_span: int, optional
        Most bins fetched from the model at once (memory bound). Default is 200,000.
    progress: bool, optional
        Show a progress bar over groups of nearby regions. Default is True.

    Returns
    -------
    features: pandas.DataFrame
        One row per region in input order: name, chrom, start, end, first_bin, n_bins, then
        the features. Regions not covered contiguously by the model's bins (outside the
        region set, or across a gap between its intervals) get NaN features and
        ``first_bin = -1``.
    """
    from tqdm.auto import tqdm

    if mode not in ("mean", "center"):
        raise AvocadoValueError(f"mode={mode!r}; expected 'mean' or 'center'")
    experiments = [tuple(e) for e in (experiments or [])]
    if not factors and not experiments:
        raise AvocadoValueError("nothing to export: factors=False and no experiments given")
    df = read_regions(regions_bed)
    chrom = df["chrom"].to_numpy().astype(str)
    start, end = df["start"].to_numpy(), df["end"].to_numpy()
    first = regions.bins_of(chrom, start)
    last = regions.bins_of(chrom, end - 1)
    size = regions.bin_size
    ok = (first >= 0) & (last >= 0) & (last - first == (end - 1) // size - start // size)
    center = regions.bins_of(chrom, (start + end - 1) // 2)
    first, last = np.where(ok, first, -1), np.where(ok, last, -1)

    n_factors = 0
    out_cols: list[str] = []
    if factors:
        n_factors = int(np.asarray(model.genome_embedding(0, 1)).shape[1])
        out_cols += [f"factor_{i}" for i in range(n_factors)]
    out_cols += [f"{b}.{a}" for b, a in experiments]
    feats = np.full((len(df), len(out_cols)), np.nan, dtype=np.float32)

    idx = np.flatnonzero(ok)
    groups = _groups(first[idx], last[idx], max_span) if idx.size else []
    for g in tqdm(groups, desc="export features", disable=not progress):
        rows = idx[g]
        lo, hi = int(first[rows].min()), int(last[rows].max()) + 1
        parts = []
        if factors:
            emb = np.asarray(model.genome_embedding(lo, hi), dtype=np.float32)
            parts.append(_window_features(emb, lo, first[rows], last[rows], center[rows], mode))
        if experiments:
            sig = np.stack([np.asarray(model.predict(b, a, lo, hi), dtype=np.float32)
                            for b, a in experiments], axis=1)
            parts.append(_window_features(sig, lo, first[rows], last[rows], center[rows], mode))
        feats[rows] = np.concatenate(parts, axis=1)

    meta = df.assign(first_bin=first, n_bins=np.where(ok, last - first + 1, 0))
    return pd.concat([meta, pd.DataFrame(feats, columns=out_cols)], axis=1)


def write_downstream_results(
    out_dir: str | os.PathLike,
    path: str | os.PathLike | None = None,
    n_folds: int = 20,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``compare_feature_sets`` and write ``downstream.tsv``, ``.md`` and ``.png``.

    Parameters
    ----------
    out_dir: str or PathLike
        Output folder (created if needed).
    path: str or PathLike, optional
        Folder of the feature files (see ``downstream_dir``).
    n_folds, seed: int, optional
        As in ``compare_feature_sets``. Defaults are 20 and 0.
    progress: bool, optional
        Show progress. Default is True.

    Returns
    -------
    table: pandas.DataFrame
    """
    import sklearn

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = compare_feature_sets(path=path, n_folds=n_folds, seed=seed, progress=progress)
    _io.write_text(out / "downstream.tsv", table.drop(columns="fold_ap").to_csv(
        sep="\t", index=False, float_format="%.5f"))
    header = (
        f"<!-- python -c \"from avocado_core.downstream import write_downstream_results; "
        f"write_downstream_results('{out}', n_folds={n_folds}, seed={seed})\" -->\n\n"
        f"Downstream tasks of the Avocado paper, re-scored here: {n_folds}-fold stratified "
        f"cross-validation (seed {seed}) of scikit-learn {sklearn.__version__} "
        "`HistGradientBoostingClassifier` (default settings) on each published feature set; "
        "average precision per held-out fold, mean +/- standard error over folds. 'random' "
        "is the positive fraction.\n\n"
    )
    _io.write_text(out / "downstream.md", header + downstream_markdown(table))
    plot_downstream(table, out / "downstream.png")
    return table
