"""Reports of an evaluation: markdown summaries, the per-track plot and the output folder.

``summarize`` writes the markdown summary of :func:`~avocado_core.evaluation.cross_validate`
(means per method and per assay, and for each baseline how many tracks the model wins),
``summarize_selection`` that of a nested selection alone, ``plot_evaluation`` the per-track
figure, and ``evaluate_to_dir`` runs the evaluation and writes all of them with the TSV.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import _io
from ..choice import criterion_of, label_of, sign_of
from ..errors import AvocadoKeyError
from ..metrics import HIGHER_IS_BETTER
from .cross_validation import MODEL, cross_validate

__all__ = [
    "evaluate_to_dir",
    "plot_evaluation",
    "summarize",
    "summarize_selection",
    "wins",
]

def summarize_selection(scores: pd.DataFrame, command: str | None = None) -> str:
    """Markdown of :func:`nested_selection`: each fold's best, and every candidate by mean.

    Parameters
    ----------
    scores: pandas.DataFrame
        Output of ``nested_selection``.
    command: str, optional
        The command that produced it, written as a comment at the top.

    Returns
    -------
    markdown: str
    """
    column = criterion_of(scores.columns)
    label, sign = label_of(column), sign_of(column)
    wide = _candidate_table(scores)
    wide.insert(0, f"mean val {label}", wide.mean(axis=1))
    wide = wide.sort_values(f"mean val {label}", ascending=sign > 0, kind="stable")
    best = scores.loc[(sign * scores[column]).groupby(scores["fold"]).idxmin(),
                      ["fold", "params", column]]
    out = [f"<!-- {command} -->\n"] if command else []
    out += ["Nested selection only: every candidate scored on validation tracks split off each "
            "fold's training tracks. No final model was trained and no held-out track was "
            "read.\n",
            "### Each fold's best\n",
            md_table(best.rename(columns={"params": "best", column: f"validation {label}"})),
            f"\n### Every candidate, by mean validation {label} over the folds\n",
            md_table(wide.reset_index())]
    per_fold = scores.attrs.get("biosample_settings")
    if per_fold:
        rows = [{"fold": i, "biosample": b, "settings": json.dumps(s, sort_keys=True)}
                for i, chosen in per_fold.items() for b, s in chosen.items()]
        out += ["\n### Prediction settings chosen per biosample (on its own validation "
                "tracks)\n", md_table(pd.DataFrame(rows))]
    return "\n".join(out)


def wins(results: pd.DataFrame, baseline: str, metric: str) -> tuple[int, int]:
    """Tracks where the model beats a baseline on a metric, and the number compared."""
    wide = results.pivot_table(
        index=["biosample", "assay"], columns="method", values=metric, dropna=False
    )
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
    metrics = [c for c in results.columns if c not in (
        "fold", "biosample", "assay", "method", "train_seconds", "selected", "chosen")
        and not c.startswith("val_")]
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
    if "selected" in results:
        out.append(_selection_section(results))
    if "chosen" in results:
        out.append(_choice_section(results))

    means = results.groupby("method", sort=False)[metrics].mean().loc[methods]
    out.append("### Mean over held-out tracks\n")
    out.append(md_table(means.reset_index(), float_format="{:.4f}"))

    out.append("\n### Tracks where the model wins, per baseline\n")
    rows = []
    for base in methods:
        if base == MODEL:
            continue
        row = {"baseline": base}
        for m in metrics:
            w, n = wins(results, base, m)
            row[m] = f"{w}/{n}" if n else "n/a"  # n = 0: the baseline's metric is undefined
        rows.append(row)
    out.append(md_table(pd.DataFrame(rows)))

    out.append("\n### Mean per assay\n")
    per_assay = results.groupby(["assay", "method"], sort=True)[["mse", "pearson"]].mean()
    wide = per_assay.unstack("method")
    wide.columns = [f"{m} {metric}" for metric, m in wide.columns]
    cols = [f"{m} {metric}" for metric in ("mse", "pearson") for m in methods]
    out.append(md_table(wide.reindex(columns=cols).reset_index(), float_format="{:.4f}"))

    top = [m for m in ("mse1obs", "match1") if m in results]
    if top:
        out.append("\n### Top 1% of bins per assay\n")
        out.append("MSE over the top 1% of observed bins (mse1obs, lower is better) and the share "
                   "of them that are also in the top 1% of imputed bins (match1, higher is "
                   "better): where average activity is hardest to beat.\n")
        per_assay = results.groupby(["assay", "method"], sort=True)[top].mean()
        wide = per_assay.unstack("method")
        wide.columns = [f"{m} {metric}" for metric, m in wide.columns]
        cols = [f"{m} {metric}" for metric in top for m in methods]
        out.append(md_table(wide.reindex(columns=cols).reset_index(), float_format="{:.4f}"))

    cols = [f"{m} {metric}" for metric in ("mse", "pearson") for m in methods]
    out.append("\n### Per track\n")
    per_track = results.pivot_table(index=["biosample", "assay"], columns="method",
                                    values=["mse", "pearson"], dropna=False)
    per_track.columns = [f"{m} {metric}" for metric, m in per_track.columns]
    out.append(md_table(per_track.reindex(columns=cols).reset_index(), float_format="{:.4f}"))
    if "train_seconds" in results:
        t = results.drop_duplicates("fold")["train_seconds"].dropna()
        if len(t):
            out.append(f"\nModel training time per fold: {t.mean():.0f} s on average "
                       f"({t.sum() / 60:.1f} min in all).\n")
    return "\n".join(out)


def _selection_section(results: pd.DataFrame) -> str:
    """Markdown of the nested selection: each fold's choice, and every candidate's score."""
    chosen = results[results["method"] == MODEL].drop_duplicates("fold")
    column = criterion_of(results.columns)
    label = label_of(column)
    out = ["### Nested model selection\n",
           f"Each fold chose its settings by the mean {label} on validation tracks split off "
           "its own training tracks; its held-out tracks chose nothing.\n",
           md_table(chosen[["fold", "selected", column]].rename(
               columns={"selected": "chosen", column: f"validation {label}"}))]
    grid = results.attrs.get("selection")
    if grid is not None and len(grid):
        out.append(f"\nValidation {label} of every candidate:\n")
        out.append(md_table(_candidate_table(grid).reset_index()))
    return "\n".join(out)


def _choice_section(results: pd.DataFrame) -> str:
    """Markdown of what each fold's training chose on validation tracks (``choose_settings``)."""
    rows = []
    for _, row in results[results["method"] == MODEL].drop_duplicates("fold").iterrows():
        chosen = json.loads(row["chosen"])
        window = chosen["average_from"]
        rows.append({"fold": row["fold"],
                     "weights averaged from epoch": "last only" if window is None else window + 1,
                     **{b: ", ".join(f"{k.removeprefix('activity_')} {v:g}"
                                     for k, v in sorted(s.items()))
                        for b, s in sorted(chosen["biosample_settings"].items())}})
    return "\n".join([
        "### Settings chosen by each fold's training\n",
        "Each fold's model chose its averaging window and each biosample's blend towards "
        "average activity and smoothing on validation tracks split off the fold's training "
        "tracks (5 folds, each training track validated once); the held-out tracks chose "
        "nothing.\n",
        md_table(pd.DataFrame(rows))])


def _candidate_table(grid: pd.DataFrame) -> pd.DataFrame:
    """Validation score of every candidate (rows, index "candidate") in every fold (columns),
    in the metric the selection chose by."""
    column = criterion_of(grid.columns)
    wide = grid.pivot_table(index="params", columns="fold", values=column, sort=False)
    wide.columns = [f"fold {c} val {label_of(column)}" for c in wide.columns]
    return wide.rename_axis("candidate")


def md_table(df: pd.DataFrame, float_format: str = "{:.4f}") -> str:
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
        Output of ``cross_validate``: one point per held-out track, the model's score against
        the baseline's.
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
        w, n = wins(results, baseline, metric)
        ax.set_title(f"{label}: model wins {w}/{n}")
        ax.set_xlabel(baseline.replace("_", " "))
        ax.set_ylabel("Avocado (held out)")
    axes[1].legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return _io.write_png(fig, path)


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
    if "selection" in results.attrs:
        _io.write_text(out / f"{prefix}-selection.tsv",
                      results.attrs["selection"].to_csv(sep="\t", index=False,
                                                        float_format="%.6g"))
    _io.write_text(out / f"{prefix}.md", summarize(results, command=command, notes=notes))
    if "average_activity" in set(results["method"]):
        plot_evaluation(results, out / f"{prefix}.png")
    return results
