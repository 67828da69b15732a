"""Impute experiments with a trained model into a track store and / or bigWig files.

One home for "predict these experiments over the store's region set and write them out", used by
``avocado impute``, the workspace builder and the app.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from ._paths import file_stem, writable_dir
from .errors import AvocadoKeyError, AvocadoValueError
from .store import TrackStore

__all__ = ["check_predictions", "impute_experiments", "missing_experiments"]

#: Bytes of predictions held in memory at once.
PREDICT_BYTES = 256 * 2**20
#: The transform imputations carry (the model's scale: its training tracks'), recorded in the
#: store and in the bigWigs.
_TRANSFORM = "arcsinh"


def check_predictions(values: np.ndarray, experiments: Sequence[tuple[str, str]],
                      first_bin: int = 0) -> None:
    """Refuse predictions that are not finite before anything writes them.

    A bigWig leaves NaN bins out, so a track of NaN would be an empty file; a store refuses
    them, but only once the first tracks of a run are written. Finite weights can still
    overflow to infinity (weights near float32's largest).

    Parameters
    ----------
    values: numpy.ndarray, shape=(len(experiments), n_bins)
        Checked as the float32 they are written as.
    experiments: sequence of (str, str)
        The (biosample, assay) of each row.
    first_bin: int, optional
        Bin of the first column (named in the message). Default is 0.

    Raises
    ------
    AvocadoValueError
        Naming the first experiment with a non-finite value, how many it has and where.
    """
    with np.errstate(over="ignore"):  # beyond float32's range: inf, refused here
        values = np.asarray(values, dtype=np.float32)
    bad = ~np.isfinite(values)
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size:
        row = int(rows[0])
        b, a = experiments[row]
        at = int(np.flatnonzero(bad[row])[0])
        raise AvocadoValueError(
            f"the model predicts {int(bad[row].sum()):,} non-finite value(s) for {b}/{a} (the "
            f"first at bin {first_bin + at:,}: {values[row, at]}); its weights or settings are "
            "damaged, so the track is not written"
        )


def missing_experiments(model, store: TrackStore) -> list[tuple[str, str]]:
    """Every (biosample, assay) of the model's tensor that the store has not observed."""
    observed = set(store.experiments("observed"))
    return [(b, a) for b in model.biosamples for a in model.assays if (b, a) not in observed]


def impute_experiments(
    model,
    store: TrackStore,
    experiments: Iterable[tuple[str, str]] | None = None,
    *,
    into_store: bool = True,
    bigwig_dir: str | os.PathLike | None = None,
    chrom_sizes: str | os.PathLike | Mapping[str, int] | None = None,
    overwrite: bool = False,
    source: str = "avocado",
    spread: bool = False,
    progress: bool = True,
) -> list[tuple[str, str]]:
    """Predict experiments over the store's region set and write them out.

    Parameters
    ----------
    model: Avocado or AvocadoEnsemble
        A trained model (or an ensemble: the mean of its members' imputations) covering the
        store's bins (``model.n_positions == store.n_bins``).
    store: TrackStore
    experiments: iterable of (biosample, assay), optional
        Default is None: every (biosample, assay) of the model's tensor.
    into_store: bool
        Write each prediction into the store as an ``"imputed"`` track. Default is True.
    bigwig_dir: path-like, optional
        Also write ``BIOSAMPLE.ASSAY.imputed.bw`` files into this folder (names escaped by
        :func:`~avocado_core._paths.file_stem`: ``/`` and ``.`` in a name become ``%2F``,
        ``%2E``).
    chrom_sizes: path-like or mapping, optional
        Chromosome sizes of the bigWig headers. Default: those recorded in the store.
    overwrite: bool
        Re-impute experiments that already have an imputed track in the store. Default is
        False: they are skipped (unless bigWig files are asked for).
    source: str
        Provenance recorded in the store's catalog. Default is ``"avocado"``. The store's
        ``imputation.json`` records under it which experiments the model trained on
        (``model.trained_on``) and how many models it averages, so that an app can tell
        training fit from held-out imputations.
    spread: bool
        Also write the members' standard deviation around the mean as a ``"spread"`` track
        (``model`` must be an :class:`~avocado_core.ensemble.AvocadoEnsemble` of at least two
        models); :mod:`avocado_core.uncertainty` turns it into a calibrated band. Default is
        False.
    progress: bool
        Show a progress bar. Default is True.

    Returns
    -------
    list of (str, str)
        The experiments that were predicted.
    """
    if not into_store and bigwig_dir is None:
        raise AvocadoValueError("nothing to write: into_store is False and no bigwig_dir given")
    if int(model.n_positions) != int(store.n_bins):
        raise AvocadoValueError(
            f"the model covers {model.n_positions:,} positions but the store {store.path} has "
            f"{store.n_bins:,} bins; use a model trained (or genome-fitted) on this region set"
        )
    n_models = len(getattr(model, "models", [model]))
    if spread and n_models < 2:
        raise AvocadoValueError(
            f"spread=True needs an ensemble of at least 2 models, got {n_models}; pass several "
            "model directories (AvocadoEnsemble)"
        )
    if experiments is None:
        experiments = [(b, a) for b in model.biosamples for a in model.assays]
    experiments = list(dict.fromkeys((str(b), str(a)) for b, a in experiments))
    known_b, known_a = set(model.biosamples), set(model.assays)
    for b, a in experiments:
        if b not in known_b:
            raise AvocadoKeyError(f"biosample {b!r} is not in the model; it knows "
                                  f"{', '.join(model.biosamples)}")
        if a not in known_a:
            raise AvocadoKeyError(f"assay {a!r} is not in the model; it knows "
                                  f"{', '.join(model.assays)}")
    if bigwig_dir is None and not overwrite:
        experiments = [e for e in experiments if not store.has_track(*e, kind="imputed")]
    sizes = None
    if bigwig_dir is not None:
        from .bigwig import resolve_chrom_sizes, write_bigwig

        sizes = resolve_chrom_sizes(store, chrom_sizes)
        bigwig_dir = writable_dir(bigwig_dir, "bigWig folder")  # before any prediction

    # A few experiments per predict_many call share the genome term; memory stays bounded.
    per_call = int(max(1, min(8, PREDICT_BYTES // (4 * max(store.n_bins, 1)))))
    if into_store and experiments:
        store.update_imputation_source(
            source, trained_on=[list(k) for k in getattr(model, "trained_on", [])],
            n_models=n_models)
    bar = tqdm(total=len(experiments), desc=f"imputing ({model.predict_precision})", unit="track",
               disable=not progress or len(experiments) < 2)
    for i in range(0, len(experiments), per_call):
        batch = experiments[i:i + per_call]
        means, spreads = (model.predict_spread(batch) if spread
                          else (model.predict_many(batch), [None] * len(batch)))
        check_predictions(np.asarray(means), batch)
        for (b, a), values, sd in zip(batch, means, spreads):
            if into_store and (overwrite or not store.has_track(b, a, kind="imputed")):
                store.add_track(b, a, values, kind="imputed", source=source,
                                transform=_TRANSFORM, overwrite=overwrite)
                if sd is not None:
                    store.add_track(b, a, sd, kind="spread", source=source,
                                    transform=_TRANSFORM, overwrite=True)
            if bigwig_dir is not None:
                write_bigwig(values, store.regions, bigwig_dir / f"{file_stem(b, a)}.imputed.bw",
                             sizes, transform=_TRANSFORM)
        bar.update(len(batch))
    bar.close()
    return experiments
