"""A workspace: what the app serves — a track store, a trained model, annotations and projections.

Layout of a workspace directory::

    workspace.json     genome, annotation source, model fingerprint, how it was built
    store/             a TrackStore (observed tracks, and the model's imputations as "imputed")
    model/             an Avocado model (``Avocado.save``)
    ensemble/          more members of an ensemble with model/ (member-1/, member-2/, ...)
    projections/       cached 2-D projections (``ProjectionCache``)

:func:`build_workspace` makes the demo workspace from the public Roadmap pilot data (or from a
synthetic compendium): it builds the store, trains a small CPU model, imputes every
(biosample, assay) of the tensor and computes the projections. Each step is skipped when its
result is already there, so a second call returns at once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .errors import AvocadoKeyError, AvocadoValueError

__all__ = ["Workspace", "build_workspace", "DEFAULT_PROJECTIONS", "PILOT_TRAINING"]

WORKSPACE_FILE = "workspace.json"
#: Projections computed by :func:`build_workspace`: (axis, method, resolution).
DEFAULT_PROJECTIONS: tuple[tuple[str, str, str], ...] = (
    ("biosamples", "umap", "all"),
    ("biosamples", "pca", "all"),
    ("assays", "umap", "all"),
    ("assays", "pca", "all"),
    ("genome", "pca", "all"),
    ("genome", "umap", "all"),
)
#: Training of the demo models on the pilot tracks: an ensemble of 3 ``Avocado.small`` models
#: (seeds 0, 100, 200), each epoch one pass over the positions, weights averaged over epochs
#: 11-20 (a few minutes on two CPU cores).
PILOT_TRAINING: dict[str, Any] = {"n_epochs": 20, "model": {}, "n_models": 3,
                                  "average_from": 10}
#: The demo's held-out experiments: the Latin square (see :func:`holdout.latin_square`) of
#: this shift over the sorted pilot biosamples and assays is never trained on, and the app
#: shows their real signal beside the imputation with held-out scores.
PILOT_HELD_OUT_SHIFT = 0
#: The demo's calibration experiments (another Latin square, disjoint from the held-out one):
#: not trained on, used to calibrate the uncertainty band, then removed from the demo store
#: so that the app shows them as never-performed experiments (imputation only).
PILOT_CALIBRATION_SHIFT = 1
ENSEMBLE_DIR = "ensemble"


def _atomic_write_json(path: Path, data: Mapping) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Workspace:
    """An opened workspace directory (see the module docstring for its layout).

    Parameters
    ----------
    path: str or os.PathLike
        The directory; it must hold ``workspace.json`` (made by :meth:`create` or
        :func:`build_workspace`).

    Attributes
    ----------
    path, store_path, model_path, projections_path: Path
    info: dict
        The content of ``workspace.json``.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta = self.path / WORKSPACE_FILE
        if not meta.is_file():
            raise AvocadoValueError(
                f"{str(self.path)!r} is not a workspace: {WORKSPACE_FILE} is missing; expected a "
                "folder with workspace.json, store/ and model/ (make one with `avocado demo` or "
                "avocado_core.workspace.build_workspace)"
            )
        self.info: dict = json.loads(meta.read_text())
        self.store_path = self.path / "store"
        self.model_path = self.path / "model"
        self.projections_path = self.path / "projections"
        self._lock = threading.RLock()
        self._catalog: tuple[tuple, dict] | None = None

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, path: str | os.PathLike, *, genome: str = "hg19",
               annotations: str | Mapping[str, str] | None = "hg19",
               title: str | None = None, exist_ok: bool = False) -> "Workspace":
        """Make an empty workspace directory (the store and model are added afterwards).

        Parameters
        ----------
        path: str or os.PathLike
            The directory to create.
        genome: str
            Genome assembly name, shown in the app. Default is "hg19".
        annotations: str, mapping or None
            ``"hg19"`` for ``datasets.hg19_annotations()``; a mapping of BED paths with keys
            genes, exons, tss, cpg_islands (``Annotations.from_bed``); a mapping with key
            ``gtf``; or None for no gene annotations. Default is "hg19".
        title: str or None
            A title for the app's header. Default is the directory name.
        exist_ok: bool
            If True an existing workspace is opened and returned as is. Default is False.

        Returns
        -------
        Workspace
        """
        path = Path(path)
        if (path / WORKSPACE_FILE).is_file():
            if not exist_ok:
                raise AvocadoValueError(
                    f"a workspace already exists at {str(path)!r}; pass exist_ok=True to open it"
                )
            return cls(path)
        if isinstance(annotations, Mapping):
            unknown = set(annotations) - {"genes", "exons", "tss", "cpg_islands", "gtf"}
            if unknown:
                raise AvocadoValueError(
                    f"unknown annotation keys {sorted(unknown)}; expected genes, exons, tss, "
                    "cpg_islands (BED) or gtf"
                )
            annotations = {k: str(Path(v).resolve()) for k, v in annotations.items()}
        elif annotations not in (None, "hg19"):
            raise AvocadoValueError(
                f"annotations must be 'hg19', a mapping of file paths or None, got {annotations!r}"
            )
        path.mkdir(parents=True, exist_ok=True)
        info = {
            "format": 1,
            "genome": genome,
            "annotations": annotations,
            "title": title or path.resolve().name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _atomic_write_json(path / WORKSPACE_FILE, info)
        return cls(path)

    def update_info(self, **fields: Any) -> None:
        """Add or replace fields of ``workspace.json`` (atomic)."""
        with self._lock:
            self.info.update(fields)
            _atomic_write_json(self.path / WORKSPACE_FILE, self.info)

    # ------------------------------------------------------------------ parts
    @property
    def title(self) -> str:
        return str(self.info.get("title") or self.path.name)

    @property
    def genome(self) -> str:
        return str(self.info.get("genome", ""))

    @property
    def has_store(self) -> bool:
        return (self.store_path / "catalog.tsv").is_file()

    @property
    def has_model(self) -> bool:
        return self.model_path.is_dir() and any(self.model_path.iterdir())

    @property
    def member_paths(self) -> list[Path]:
        """model/ and the further ensemble members under ensemble/ (member-1, member-2, ...)."""
        extra = sorted((self.path / ENSEMBLE_DIR).glob("member-*"),
                       key=lambda p: int(p.name.split("-", 1)[1]))
        return ([self.model_path] if self.has_model else []) + [p for p in extra if p.is_dir()]

    @cached_property
    def store(self):
        """The :class:`~avocado_core.store.TrackStore` under ``store/``."""
        from .store import TrackStore

        if not self.has_store:
            raise AvocadoValueError(f"workspace {str(self.path)!r} has no track store in store/")
        return TrackStore(self.store_path)

    @cached_property
    def model(self):
        """The trained :class:`~avocado_core.model.Avocado` under ``model/`` (loaded once)."""
        from .model import Avocado

        if not self.has_model:
            raise AvocadoValueError(
                f"workspace {str(self.path)!r} has no trained model in model/; build one with "
                "build_workspace or `avocado train`"
            )
        with self._lock:
            return Avocado.load(self.model_path, device="cpu")

    @cached_property
    def annotations(self):
        """Gene annotations (:class:`~avocado_core.annotations.Annotations`) or None."""
        spec = self.info.get("annotations")
        if spec is None:
            return None
        if spec == "hg19":
            from .datasets import hg19_annotations

            return hg19_annotations(progress=False)
        from .annotations import Annotations

        if "gtf" in spec:
            return Annotations.from_gtf(spec["gtf"])
        return Annotations.from_bed(**{k: spec.get(k) for k in ("genes", "exons", "tss",
                                                               "cpg_islands")})

    @cached_property
    def bin_classes(self) -> np.ndarray | None:
        """Annotation class of every bin of the store ("promoter", "gene body", ...), or None."""
        if self.annotations is None:
            return None
        return np.asarray(self.annotations.classify_bins(self.store.regions)).astype(str)

    @cached_property
    def projections(self):
        """The :class:`~avocado_core.projection.ProjectionCache` under ``projections/``."""
        from .projection import ProjectionCache

        return ProjectionCache(self.projections_path)

    @property
    def fingerprint(self) -> str:
        """The model's fingerprint, stored in workspace.json once computed."""
        fp = self.info.get("model_fingerprint")
        if not fp:
            fp = self.projections.fingerprint(self.model)
            self.update_info(model_fingerprint=fp)
        return fp

    def warm_up(self) -> "Workspace":
        """Load what every page needs (store, model, annotations, bin classes) now rather than
        on the first request (annotations of a whole genome take seconds to parse)."""
        self.store
        self.status()
        if self.has_model:
            self.model
            self.fingerprint
        self.annotations
        self.bin_classes
        return self

    # ------------------------------------------------------------------ the tensor
    @property
    def biosamples(self) -> list[str]:
        """Biosamples of the tensor: the model's, else the store's."""
        if self.has_model:
            return list(self.model.biosamples)
        return sorted({b for b, _ in self.store.experiments("observed")})

    @property
    def assays(self) -> list[str]:
        """Assays of the tensor: the model's, else the store's."""
        if self.has_model:
            return list(self.model.assays)
        return sorted({a for _, a in self.store.experiments("observed")})

    def biosample_metadata(self) -> pd.DataFrame:
        """Metadata of the tensor's biosamples (index: name), plus ``n_observed`` assays
        (held-out ones included)."""
        return self._metadata("biosamples")

    def assay_metadata(self) -> pd.DataFrame:
        """Metadata of the tensor's assays (index: name), plus ``n_observed`` biosamples."""
        return self._metadata("assays")

    def _metadata(self, axis: str) -> pd.DataFrame:
        names = self.biosamples if axis == "biosamples" else self.assays
        table = self.store.biosamples if axis == "biosamples" else self.store.assays
        table = table if table is not None else pd.DataFrame()
        meta = table.reindex(pd.Index(names, name="name"))
        status = self.status()
        observed = status.isin(["observed", "held out"])
        meta["n_observed"] = (observed.sum(axis=1 if axis == "biosamples" else 0)
                              .reindex(names).fillna(0).astype(int).to_numpy())
        return meta

    def _tracks_index(self) -> dict:
        """Experiment sets per kind and opened memory maps, reused until the catalog changes.

        The app asks for the same tracks on every request; looking each one up in the catalog
        table dominated the locus callback's time.
        """
        keys = []
        for name in ("catalog.tsv", "imputation.json"):
            try:
                st = os.stat(self.store_path / name)
                keys.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except FileNotFoundError:
                keys.append(None)
        key = tuple(keys)
        with self._lock:
            if self._catalog is None or self._catalog[0] != key:
                index = {kind: set(self.store.experiments(kind)) for kind in ("observed",
                                                                             "imputed",
                                                                             "spread")}
                index["maps"] = {}
                index.update(_provenance(self.store))
                self._catalog = (key, index)
            return self._catalog[1]

    def has_track(self, biosample: str, assay: str, kind: str = "observed") -> bool:
        """Whether the store has this experiment's track of this kind (cached lookup)."""
        return (biosample, assay) in self._tracks_index()[kind]

    def track(self, biosample: str, assay: str, kind: str = "observed") -> np.ndarray:
        """The memory-mapped track (opened once per catalog version)."""
        index = self._tracks_index()
        maps = index["maps"]
        key = (biosample, assay, kind)
        if key not in maps:
            maps[key] = self.store.track(biosample, assay, kind)
        return maps[key]

    def status(self) -> pd.DataFrame:
        """The tensor as a biosample x assay table of "observed" (and trained on, or not
        known), "held out" (observed, but the imputation's models never trained on it),
        "imputed" (no observed track) or "missing" (neither)."""
        index = self._tracks_index()
        observed, imputed = index["observed"], index["imputed"]
        bios, assays = self.biosamples, self.assays
        b = np.repeat(bios, len(assays))
        a = np.tile(assays, len(bios))
        pairs = list(zip(b, a))
        is_obs = np.fromiter((p in observed for p in pairs), bool, len(pairs))
        is_imp = np.fromiter((p in imputed for p in pairs), bool, len(pairs))
        held = np.fromiter((self.trained_on(*p) is False for p in pairs), bool, len(pairs))
        values = np.where(is_obs, np.where(held, "held out", "observed"),
                          np.where(is_imp, "imputed", "missing"))
        return pd.DataFrame(values.reshape(len(bios), len(assays)), index=pd.Index(bios, name="biosample"),
                            columns=pd.Index(assays, name="assay"))

    def window(self, biosample: str, assay: str, start_bin: int, end_bin: int
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Observed and imputed values of one experiment over the bins [start_bin, end_bin).

        The imputation comes from the store's "imputed" track, or from the model when the store
        has none (the model can impute any biosample x assay it knows).

        Returns
        -------
        observed, imputed: np.ndarray[float32] or None
        """
        start_bin, end_bin = int(start_bin), int(end_bin)
        if not 0 <= start_bin < end_bin <= self.store.n_bins:
            raise AvocadoValueError(f"bin range ({start_bin}, {end_bin}) is outside the store's "
                                    f"[0, {self.store.n_bins}) or empty")
        window = (start_bin, end_bin)
        observed = (np.array(self.track(biosample, assay, "observed")[start_bin:end_bin],
                             dtype=np.float32)
                    if self.has_track(biosample, assay, "observed") else None)
        if self.has_track(biosample, assay, "imputed"):
            imputed = np.array(self.track(biosample, assay, "imputed")[start_bin:end_bin],
                               dtype=np.float32)
        elif self.has_model and biosample in self.model.biosamples and assay in self.model.assays:
            imputed = np.asarray(self.model.predict(biosample, assay, *window))
        else:
            imputed = None
        if observed is None and imputed is None:
            raise AvocadoKeyError(
                f"no observed track and no way to impute experiment ({biosample!r}, {assay!r}); "
                f"biosamples: {self.biosamples[:10]}..., assays: {self.assays}"
            )
        return observed, imputed

    # ------------------------------------------------------------------ held out and band
    def trained_on(self, biosample: str, assay: str) -> bool | None:
        """Whether the imputation of an experiment comes from models that trained on its
        observed track (True: what the app shows is training fit), did not (False: a real
        held-out imputation) or is not recorded (None; old stores and models).

        The store's ``imputation.json`` says what the models behind its imputed tracks trained
        on; for experiments imputed on the fly, the workspace model's ``trained_on``.
        """
        index = self._tracks_index()
        key = (biosample, assay)
        source = index["sources"].get(key)
        if source is not None:
            trained = index["trained_on"].get(source)
        else:
            if "model_trained_on" not in index:
                index["model_trained_on"] = set(self.model.trained_on) if self.has_model else None
            trained = index["model_trained_on"]
        if not trained:
            return None
        return key in trained

    def band(self, biosample: str, assay: str, start_bin: int, end_bin: int
             ) -> tuple[np.ndarray, np.ndarray, bool] | None:
        """The uncertainty band of an experiment's imputation over bins [start_bin, end_bin).

        Returns
        -------
        (low, high, calibrated) or None
            None where the store has no spread track (one model). ``calibrated``: the band is
            the store's calibrated 90 % band (:mod:`~avocado_core.uncertainty`); else the
            members' own 5-95 % range, which is too narrow.
        """
        from .uncertainty import band, member_band

        index = self._tracks_index()
        key = (biosample, assay)
        if key not in index["spread"] or key not in index["imputed"]:
            return None
        mean = np.asarray(self.track(biosample, assay, "imputed")[start_bin:end_bin])
        spread = np.asarray(self.track(biosample, assay, "spread")[start_bin:end_bin])
        calibration = index["bands"].get(index["sources"].get(key))
        if calibration is None:
            return (*member_band(mean, spread), False)
        return (*band(mean, spread, calibration), True)

    def band_widths(self) -> pd.DataFrame:
        """Mean half-width of each experiment's band over the store (biosample x assay; NaN
        where there is no band): how uncertain each imputation is, for colouring the picker."""
        from .uncertainty import MEMBER_Z

        index = self._tracks_index()
        with self._lock:
            if "band_widths" not in index:
                widths = pd.DataFrame(np.nan, index=pd.Index(self.biosamples, name="biosample"),
                                      columns=pd.Index(self.assays, name="assay"))
                for b, a in index["spread"] & index["imputed"]:
                    if b in widths.index and a in widths.columns:
                        mean_sd = float(np.mean(self.track(b, a, "spread"), dtype=np.float64))
                        cal = index["bands"].get(index["sources"].get((b, a)))
                        widths.loc[b, a] = (MEMBER_Z * mean_sd if cal is None
                                            else cal.scale * (mean_sd + cal.floor))
                index["band_widths"] = widths
            return index["band_widths"]

    def signal_at(self, biosample: str, assay: str, bins: np.ndarray, kind: str = "auto"
                  ) -> np.ndarray:
        """Values of one experiment at the given bins (observed if there, else imputed).

        Parameters
        ----------
        kind: {"auto", "observed", "imputed"}
        """
        bins = np.asarray(bins, dtype=np.int64)
        if kind == "auto":
            kind = "observed" if self.has_track(biosample, assay, "observed") else "imputed"
        if kind not in ("observed", "imputed"):
            raise AvocadoValueError(f"kind must be 'auto', 'observed' or 'imputed', got {kind!r}")
        if self.has_track(biosample, assay, kind):
            return np.asarray(self.track(biosample, assay, kind)[bins], dtype=np.float32)
        if kind == "imputed" and self.has_model:
            lo, hi = int(bins.min(initial=0)), int(bins.max(initial=0)) + 1
            return self.model.predict(biosample, assay, lo, hi)[bins - lo]
        raise AvocadoKeyError(f"no {kind} track of ({biosample!r}, {assay!r}) in the store")

    # ------------------------------------------------------------------ projections
    def projection(self, axis: str = "biosamples", method: str = "umap", resolution: str = "all",
                   n_points: int | None = None, *, compute: bool = True,
                   seed: int = 0) -> pd.DataFrame | None:
        """A cached 2-D projection of the model's factors, joined with metadata.

        Parameters
        ----------
        axis: {"biosamples", "assays", "genome"}
        method: {"umap", "pca"}
        resolution: {"all", "25bp", "250bp", "5kbp"}
            For the genome axis.
        n_points: int or None
            Genome sample size; default is the workspace's (``genome_points`` in
            workspace.json, else 100,000).
        compute: bool
            If False, return None instead of computing a projection that is not cached.
        seed: int

        Returns
        -------
        pd.DataFrame or None
            Biosamples / assays: name, x, y and the metadata columns. Genome: bin, n_bins, x,
            y, stratum, chrom, start, end, and ``class`` (annotation class) when annotations
            exist.
        """
        n_points = int(n_points or self.info.get("genome_points", 100_000))
        strata = self.bin_classes if axis == "genome" else None
        kw = dict(axis=axis, method=method, resolution=resolution, n_points=n_points, seed=seed,
                  strata=strata)
        if not compute:
            df = self.projections.get(self.fingerprint, **kw)
            if df is None:
                return None
        else:
            with self._lock:
                df = self.projections.get_or_compute(self.model, fingerprint=self.fingerprint,
                                                     **kw)
        attrs = dict(df.attrs)
        if axis in ("biosamples", "assays"):
            meta = self._metadata(axis).reset_index()
            df = df.merge(meta, on="name", how="left", suffixes=("", "_meta"))
        else:
            chrom, start = self.store.regions.bin_coordinates(df["bin"].to_numpy())
            df = df.assign(chrom=chrom, start=start,
                           end=start + df["n_bins"].to_numpy() * self.store.regions.bin_size)
            if strata is not None:
                df["class"] = df["stratum"]
        df.attrs.update(attrs)
        return df

    def has_projection(self, axis: str, method: str = "umap", resolution: str = "all") -> bool:
        """Whether a projection is cached (so it can be shown without waiting)."""
        return self.projection(axis, method, resolution, compute=False) is not None

    # ------------------------------------------------------------------ building
    def train(self, *, n_epochs: int = 6, epoch_size: int | None = None,
              model_kwargs: Mapping[str, Any] | None = None, seed: int = 0,
              held_out: Iterable[tuple[str, str]] = (), n_models: int = 1,
              average_from: int | None = None, progress: bool = True):
        """Train ``Avocado.small`` on the store's observed tracks and save it under model/.

        Parameters
        ----------
        held_out: iterable of (biosample, assay)
            Observed experiments not to train on (the model records what it trained on, and
            the app shows these as held out). Default: none.
        n_models: int
            Members of an ensemble (seeds ``seed``, ``seed + 100``, ...): model/ holds the
            first, ensemble/member-k/ the others. Default is 1.
        average_from: int or None
            Stochastic weight averaging (``Avocado.fit``). Default is None.

        Nothing happens when the workspace already has a model.
        """
        from .ensemble import AvocadoEnsemble, check_n_models
        from .model import Avocado

        if self.has_model:
            return self.model
        n_models = check_n_models(n_models)
        store = self.store
        experiments = store.experiments("observed")
        if not experiments:
            raise AvocadoValueError(f"the store at {str(self.store_path)!r} has no observed tracks")
        held_out = sorted({(str(b), str(a)) for b, a in held_out})
        unknown = [e for e in held_out if e not in set(experiments)]
        if unknown:
            raise AvocadoValueError(f"held-out experiments {unknown} are not observed in the "
                                    "store; hold out observed experiments only")
        training = {e: store.track(*e) for e in experiments if e not in set(held_out)}
        if not training:
            raise AvocadoValueError("every observed experiment is held out; nothing to train on")
        biosamples = sorted({b for b, _ in experiments})
        assays = sorted({a for _, a in experiments})
        t0 = time.perf_counter()
        fit_kw: dict[str, Any] = dict(n_epochs=n_epochs, progress=progress,
                                      average_from=average_from)
        if epoch_size is not None:
            fit_kw["epoch_size"] = epoch_size
        ensemble = AvocadoEnsemble.fit(
            lambda s: Avocado.small(biosamples, assays, store.n_bins, seed=s,
                                    **dict(model_kwargs or {})),
            training, n_models, seed=seed, **fit_kw)
        seconds = time.perf_counter() - t0
        for k, member in reversed(list(enumerate(ensemble.models))):  # model/ last: commit
            self._save_model(member, self.model_path if k == 0
                             else self.path / ENSEMBLE_DIR / f"member-{k}")
        model = ensemble.models[0]
        self.__dict__["model"] = model
        loss = model.history.get("loss", [])
        self.update_info(
            model_fingerprint=None,
            training={"n_epochs": n_epochs, "epoch_size": epoch_size, "seed": seed,
                      "model_kwargs": dict(model_kwargs or {}), "seconds": round(seconds, 1),
                      "n_models": n_models, "average_from": average_from,
                      "held_out": [list(e) for e in held_out],
                      "final_loss": float(loss[-1]) if len(loss) else None},
        )
        return model

    def _save_model(self, model, path: Path) -> None:
        """Save a model into ``path`` by swapping in a fully written folder."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".model-"))
        model.save(tmp)
        if path.exists():
            _swap_dir(tmp, path)
        else:
            os.replace(tmp, path)

    def impute(self, experiments: Iterable[tuple[str, str]] | None = None, *,
               overwrite: bool = False, progress: bool = True) -> int:
        """Write the model's imputation of experiments into the store as kind "imputed".

        With ensemble members (model/ and ensemble/member-*), the imputation is their mean and
        their spread is stored too (kind "spread", for the uncertainty band).

        Parameters
        ----------
        experiments: iterable of (biosample, assay) or None
            Default: every (biosample, assay) of the model's tensor.
        overwrite: bool
            Re-impute experiments that already have an imputed track. Default is False.
        progress: bool

        Returns
        -------
        int
            The number of tracks written.
        """
        from .ensemble import AvocadoEnsemble
        from .imputation import impute_experiments

        paths = self.member_paths
        model = self.model if len(paths) < 2 else AvocadoEnsemble.load(paths, device="cpu")
        done = impute_experiments(model, self.store, experiments, overwrite=overwrite,
                                  source=f"avocado model {self.path.name}/model"
                                  + (f" + {len(paths) - 1} ensemble members"
                                     if len(paths) > 1 else ""),
                                  spread=len(paths) > 1, progress=progress)
        return len(done)

    def compute_projections(self, which: Sequence[tuple[str, str, str]] = DEFAULT_PROJECTIONS,
                            *, progress: bool = True) -> None:
        """Compute (or find cached) the given projections (axis, method, resolution)."""
        for axis, method, resolution in tqdm(list(which), desc="projections", unit="proj",
                                             disable=not progress):
            self.projection(axis, method, resolution)


def _provenance(store) -> dict:
    """From the store's catalog and imputation.json: the source of each imputed track
    ("sources"), what each source trained on ("trained_on") and its band ("bands")."""
    from .uncertainty import store_band_calibration

    cat = store.catalog
    imputed = cat[cat["kind"] == "imputed"]
    sources = dict(zip(zip(imputed["biosample"], imputed["assay"]), imputed["source"]))
    info = store.imputation_info.get("sources", {})
    trained = {src: {tuple(e) for e in entry.get("trained_on", [])} for src, entry in info.items()}
    bands = {src: store_band_calibration(store, src) for src in info}
    return {"sources": sources, "trained_on": trained,
            "bands": {k: v for k, v in bands.items() if v is not None}}


def _swap_dir(new: Path, target: Path) -> None:
    """Replace directory ``target`` by ``new`` (rename the old one away first)."""
    old = target.with_name(target.name + ".old")
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def build_workspace(path: str | os.PathLike, source: str = "roadmap-pilot", *,
                    n_epochs: int | None = None, epoch_size: int | None = None,
                    model_kwargs: Mapping[str, Any] | None = None,
                    synthetic: Mapping[str, Any] | None = None,
                    impute: bool | None = None,
                    projections: Sequence[tuple[str, str, str]] | None = None,
                    genome_points: int = 100_000, seed: int = 0,
                    n_models: int | None = None, average_from: int | None = None,
                    hold_out: bool | None = None,
                    progress: bool = True) -> Workspace:
    """Build (or finish building) a workspace the app can serve.

    Steps, each skipped when already done: the store (the 25 real Roadmap pilot tracks, or a
    synthetic compendium), the models (``Avocado.small``, CPU; an ensemble for the pilot), the
    imputation of every (biosample, assay) of the tensor into the store as "imputed" (with the
    members' spread), the band's calibration, and the projections.

    With ``hold_out`` (the pilot's default), two disjoint Latin squares of experiments are kept
    out of training (:data:`PILOT_HELD_OUT_SHIFT`, :data:`PILOT_CALIBRATION_SHIFT`): the
    held-out one stays in the store, so that the app shows real held-out imputations and
    scores; the calibration one calibrates the uncertainty band and is then removed from the
    store, so that the app shows it as never-performed experiments (imputation only).

    Parameters
    ----------
    path: str or os.PathLike
        The workspace directory.
    source: {"roadmap-pilot", "synthetic"}
        Where the tracks come from. Default is "roadmap-pilot".
    n_epochs, epoch_size: int or None
        Training length; default :data:`PILOT_TRAINING`.
    model_kwargs: mapping or None
        Passed to ``Avocado.small`` (e.g. smaller factors for a quick test model).
    synthetic: mapping or None
        Keyword arguments of ``synthetic.synthetic_compendium`` when source="synthetic".
    impute: bool or None
        Store the imputation of every experiment in the store. Default (None): yes for the
        pilot (25 tracks); no for a synthetic compendium (thousands of tracks; the app then
        imputes each window on the fly from the model).
    projections: sequence of (axis, method, resolution) or None
        Projections to compute. Default (None): those the workspace was first built with
        (recorded in ``workspace.json``), else :data:`DEFAULT_PROJECTIONS`.
    genome_points: int
        Size of the stratified sample of genome positions. Default is 100,000.
    seed: int
    n_models, average_from: int or None
        Ensemble size and weight averaging (see :meth:`Workspace.train`); default
        :data:`PILOT_TRAINING` for the pilot (averaging only when training is longer), one
        model without averaging otherwise.
    hold_out: bool or None
        Keep the Latin squares described above out of training. Default (None): for the
        pilot. It needs a stored imputation (``impute``) and, for the band, ``n_models >= 2``.
    progress: bool
        Show progress bars. Default is True.

    Returns
    -------
    Workspace
    """
    if source not in ("roadmap-pilot", "synthetic"):
        raise AvocadoValueError(f"unknown source {source!r}; expected 'roadmap-pilot' or 'synthetic'")
    path = Path(path)
    pilot = source == "roadmap-pilot"
    ws = Workspace.create(path, annotations="hg19" if pilot else None,
                          genome="hg19" if pilot else "synthetic",
                          exist_ok=True, title="Roadmap pilot" if pilot else "Synthetic compendium")
    if "genome_points" not in ws.info:
        ws.update_info(genome_points=int(genome_points), source=source)
    if projections is None:
        projections = [tuple(p) for p in ws.info.get("projections", DEFAULT_PROJECTIONS)]
    if "projections" not in ws.info:
        ws.update_info(projections=[list(p) for p in projections])
    if not ws.has_store:
        if source == "roadmap-pilot":
            from .datasets import roadmap_pilot

            roadmap_pilot(path=ws.store_path)
        else:
            from .synthetic import synthetic_compendium

            synthetic_compendium(**dict(synthetic or {})).write_store(ws.store_path,
                                                                  progress=progress)
        ws.__dict__.pop("store", None)
    hold_out = pilot if hold_out is None else bool(hold_out)
    held_out, calibration = _holdout_design(ws) if hold_out else ([], [])
    if not ws.has_model:
        epochs = int(n_epochs or PILOT_TRAINING["n_epochs"])
        if average_from is None and pilot and epochs > PILOT_TRAINING["average_from"]:
            average_from = PILOT_TRAINING["average_from"]
        ws.train(n_epochs=epochs, epoch_size=epoch_size,
                 model_kwargs={**PILOT_TRAINING["model"], **dict(model_kwargs or {})},
                 seed=seed, held_out=held_out + calibration,
                 n_models=n_models or (PILOT_TRAINING["n_models"] if pilot else 1),
                 average_from=average_from, progress=progress)
    if impute if impute is not None else pilot:
        ws.impute(progress=progress)
    if calibration:
        _calibrate_and_withhold(ws, calibration)
    ws.compute_projections(projections, progress=progress)
    return ws


def _holdout_design(ws: Workspace) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The held-out and calibration Latin squares over the workspace's sorted grid (recorded
    in workspace.json the first time, so that a rebuild finds the same ones)."""
    from .holdout import latin_square

    if "hold_out" not in ws.info:
        observed = ws.store.experiments("observed")
        bios = sorted({b for b, _ in observed})
        assays = sorted({a for _, a in observed})
        ws.update_info(hold_out={
            "held_out": [list(e) for e in latin_square(bios, assays, PILOT_HELD_OUT_SHIFT)],
            "calibration": [list(e) for e in latin_square(bios, assays,
                                                          PILOT_CALIBRATION_SHIFT)]})
    design = ws.info["hold_out"]
    return ([tuple(e) for e in design["held_out"]], [tuple(e) for e in design["calibration"]])


def _calibrate_and_withhold(ws: Workspace, calibration: list[tuple[str, str]]) -> None:
    """Calibrate the band on the calibration experiments (when the store has an ensemble's
    spread), then remove their observed tracks from the store (once)."""
    from .uncertainty import calibrate_store_band

    store = ws.store
    present = [e for e in calibration if store.has_track(*e, kind="observed")]
    if not present:
        return
    if "band" not in ws.info and all(store.has_track(*e, kind="spread") for e in present):
        cal = calibrate_store_band(store, present)
        ws.update_info(band={"level": cal.level, "scale": cal.scale, "floor": cal.floor,
                             "calibration": [list(e) for e in present]})
    for b, a in present:
        store.remove_track(b, a, kind="observed")
