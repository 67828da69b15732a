"""A workspace: what the app serves — a track store, a trained model, annotations and projections.

Layout of a workspace directory::

    workspace.json     genome, annotation source, model fingerprint, how it was built (and
                       how long each step took)
    store/             a TrackStore (observed tracks, and the model's imputations as "imputed")
    model/             an Avocado model, or an ensemble's (``AvocadoEnsemble.save``: its
                       further members in model/members/1, ...)
    projections/       cached 2-D projections (``ProjectionCache``)

:class:`Workspace` is a read model: it opens the parts once and answers the app's questions
through their own APIs (``TrackStore.fetch_many``, ``Avocado.predict_many``,
``ProjectionCache``). It writes nothing but the projection cache.

:func:`~avocado_core.workspace_build.build_workspace` makes one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _io
from .errors import AvocadoKeyError, AvocadoValueError, short_list

__all__ = ["Workspace", "WORKSPACE_FILE"]

WORKSPACE_FILE = "workspace.json"
#: Where workspaces built before members lived in the model folder keep them (member-k/).
ENSEMBLE_DIR = "ensemble"


def _write_json(path: Path, data: Mapping) -> None:
    _io.write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


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
                "avocado_core.workspace_build.build_workspace)"
            )
        try:
            self.info: dict = json.loads(meta.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise AvocadoValueError(f"{meta} is corrupted (not valid JSON: {exc})") from None
        self.store_path = self.path / "store"
        self.model_path = self.path / "model"
        self.projections_path = self.path / "projections"
        self._lock = threading.RLock()
        self._provenance: tuple[tuple, dict] | None = None

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
        _write_json(path / WORKSPACE_FILE, info)
        return cls(path)

    def update_info(self, **fields: Any) -> None:
        """Add or replace fields of ``workspace.json`` (atomic)."""
        with self._lock:
            self.info.update(fields)
            _write_json(self.path / WORKSPACE_FILE, self.info)

    # ------------------------------------------------------------------ parts
    @property
    def title(self) -> str:
        return str(self.info.get("title") or self.path.name)

    @property
    def genome(self) -> str:
        return str(self.info.get("genome", ""))

    @property
    def synthetic(self) -> str | None:
        """What the signal is when the store's tracks are generated, not measured (the store
        records it: ``TrackStore.info["synthetic"]``); None for measured data."""
        if not self.has_store:
            return None
        record = self.store.info.get("synthetic")
        return str(record.get("description") or "synthetic signal") if record else None

    @property
    def has_store(self) -> bool:
        return (self.store_path / "catalog.tsv").is_file()

    @property
    def has_model(self) -> bool:
        return self.model_path.is_dir() and any(self.model_path.iterdir())

    @property
    def model_choice(self) -> dict[str, Any] | None:
        """What the model's training chose on validation tracks (``Avocado.choice``), read from
        its config.json without loading the weights (the app's job launcher must not run
        torch); None when nothing was chosen or there is no model."""
        config = self.model_path / "config.json"
        if not config.is_file():
            return None
        return json.loads(config.read_text()).get("choice")

    @property
    def member_paths(self) -> list[Path]:
        """model/ and the further members of its ensemble (model/members/1, ...; in a
        workspace built before members lived in the model folder, ensemble/member-k)."""
        if not self.has_model:
            return []
        from .ensemble import member_paths

        older = sorted((self.path / ENSEMBLE_DIR).glob("member-*"),
                       key=lambda p: int(p.name.split("-", 1)[1]))
        return member_paths(self.model_path) + [p for p in older if p.is_dir()]

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
            model = Avocado.load(self.model_path, device="cpu")
        self._check_positions(model.n_positions)
        return model

    def _check_positions(self, n_positions: Any) -> None:
        if not isinstance(n_positions, int) or n_positions != self.store.n_bins:
            shown = f"{n_positions:,}" if isinstance(n_positions, int) else repr(n_positions)
            raise AvocadoValueError(
                f"the model in {self.model_path} covers {shown} positions but the "
                f"store {self.store_path} has {self.store.n_bins:,} bins: it was trained on "
                "another region set; train it again on this store (`avocado train`)"
            )

    def check(self) -> "Workspace":
        """Check, without loading the model's weights, that the workspace can be served.

        The store must open and the model (if any) must cover the store's bins: a model
        trained on another region set would show imputations at the wrong positions.

        Raises
        ------
        AvocadoValueError
            Naming what is wrong.
        """
        self.store.experiments()  # reads the catalog (and checks its file paths)
        if self.has_model:
            config = self.model_path / "config.json"
            try:
                n_positions = json.loads(config.read_text())["config"]["n_positions"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise AvocadoValueError(f"{config}: corrupted model ({exc})") from None
            self._check_positions(n_positions)
        return self

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

    @cached_property
    def fingerprint(self) -> str:
        """The model's fingerprint (recorded in workspace.json by :func:`build_workspace`)."""
        return self.info.get("model_fingerprint") or self.projections.fingerprint(self.model)

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

    def has_track(self, biosample: str, assay: str, kind: str = "observed") -> bool:
        """Whether the store has this experiment's track of this kind."""
        return self.store.has_track(biosample, assay, kind)

    def status(self) -> pd.DataFrame:
        """The tensor as a biosample x assay table of "observed" (and trained on, or not
        known), "held out" (observed, but the imputation's models never trained on it),
        "imputed" (no observed track) or "missing" (neither).

        Worked out once per state of the store's catalog and imputation record (every page
        asks for it; at ENCODE's size it takes tens of milliseconds)."""
        index = self._provenance_index()
        with self._lock:
            if "status" not in index:
                index["status"] = self._status()
            return index["status"].copy()

    def _status(self) -> pd.DataFrame:
        bios, assays = self.biosamples, self.assays
        values = np.full((len(bios), len(assays)), "missing", dtype=object)
        row = {b: i for i, b in enumerate(bios)}
        col = {a: j for j, a in enumerate(assays)}
        for kind in ("imputed", "observed"):  # observed wins over imputed
            pairs = [(row[b], col[a]) for b, a in self.store.experiments(kind)
                     if b in row and a in col]
            if pairs:
                values[tuple(np.array(pairs).T)] = kind
        held = [(row[b], col[a]) for b, a in self.store.experiments("observed")
                if b in row and a in col and self.trained_on(b, a) is False]
        if held:
            values[tuple(np.array(held).T)] = "held out"
        return pd.DataFrame(values.astype(str), index=pd.Index(bios, name="biosample"),
                            columns=pd.Index(assays, name="assay"))

    def _model_knows(self, biosample: str, assay: str) -> bool:
        return (self.has_model and biosample in self.model.biosamples
                and assay in self.model.assays)

    def windows(self, experiments: Sequence[tuple[str, str]], start_bin: int, end_bin: int
                ) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        """Observed and imputed values of experiments over the bins [start_bin, end_bin).

        One read of the store per kind (``TrackStore.fetch_many``) and one call of the model
        (``Avocado.predict_many``) for the experiments whose imputation the store lacks (the
        model can impute any biosample x assay it knows).

        Returns
        -------
        list of (observed, imputed): np.ndarray[float32] or None each, in the order given
        """
        experiments = [(str(b), str(a)) for b, a in experiments]
        window = (int(start_bin), int(end_bin))
        store = self.store
        values: dict[str, dict[tuple[str, str], np.ndarray]] = {}
        for kind in ("observed", "imputed"):
            have = [e for e in dict.fromkeys(experiments) if store.has_track(*e, kind)]
            values[kind] = dict(zip(have, store.fetch_many(have, window, kind)))
        imputed = values["imputed"]
        predict = [e for e in dict.fromkeys(experiments)
                   if e not in imputed and self._model_knows(*e)]
        if predict:
            imputed.update(zip(predict, self.model.predict_many(predict, *window)))
        unknown = [e for e in experiments if e not in values["observed"] and e not in imputed]
        if unknown:
            b, a = unknown[0]
            raise AvocadoKeyError(
                f"no observed track and no way to impute experiment ({b!r}, {a!r}); "
                f"biosamples: {short_list(self.biosamples, 10)}, assays: {short_list(self.assays)}"
            )
        return [(values["observed"].get(e), imputed.get(e)) for e in experiments]

    def window(self, biosample: str, assay: str, start_bin: int, end_bin: int
               ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Observed and imputed values of one experiment over the bins [start_bin, end_bin).

        The imputation comes from the store's "imputed" track, or from the model when the store
        has none (see :meth:`windows`).

        Returns
        -------
        observed, imputed: np.ndarray[float32] or None
        """
        return self.windows([(biosample, assay)], start_bin, end_bin)[0]

    # ------------------------------------------------------------------ held out and band
    def _provenance_index(self) -> dict:
        """What the store records about its imputations (:func:`_provenance`), re-read when
        the catalog or imputation.json changes."""
        keys = []
        for name in ("catalog.tsv", "imputation.json"):
            try:
                st = os.stat(self.store_path / name)
                keys.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except FileNotFoundError:
                keys.append(None)
        with self._lock:
            if self._provenance is None or self._provenance[0] != tuple(keys):
                self._provenance = (tuple(keys), _provenance(self.store))
            return self._provenance[1]

    def trained_on(self, biosample: str, assay: str) -> bool | None:
        """Whether the imputation of an experiment comes from models that trained on its
        observed track (True: what the app shows is training fit), did not (False: a real
        held-out imputation) or is not recorded (None; old stores and models).

        The store's ``imputation.json`` says what the models behind its imputed tracks trained
        on; for experiments imputed on the fly, the workspace model's ``trained_on``.
        """
        index = self._provenance_index()
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

        store = self.store
        if not (store.has_track(biosample, assay, "spread")
                and store.has_track(biosample, assay, "imputed")):
            return None
        window = (int(start_bin), int(end_bin))
        mean, spread = (store.fetch(biosample, assay, window, kind) for kind in ("imputed",
                                                                                 "spread"))
        index = self._provenance_index()
        calibration = index["bands"].get(index["sources"].get((biosample, assay)))
        if calibration is None:
            return (*member_band(mean, spread), False)
        return (*band(mean, spread, calibration), True)

    def band_widths(self) -> pd.DataFrame:
        """Mean half-width of each experiment's band over the store (biosample x assay; NaN
        where there is no band): how uncertain each imputation is, for colouring the picker."""
        from .uncertainty import MEMBER_Z

        index = self._provenance_index()
        with self._lock:
            if "band_widths" not in index:
                widths = pd.DataFrame(np.nan, index=pd.Index(self.biosamples, name="biosample"),
                                      columns=pd.Index(self.assays, name="assay"))
                store = self.store
                both = set(store.experiments("spread")) & set(store.experiments("imputed"))
                for b, a in both:
                    if b in widths.index and a in widths.columns:
                        mean_sd = float(np.mean(store.track(b, a, "spread"), dtype=np.float64))
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
            return np.asarray(self.store.track(biosample, assay, kind)[bins], dtype=np.float32)
        if kind == "imputed" and self._model_knows(biosample, assay):
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
            y, stratum, chrom, start, end, and when annotations exist ``class`` (annotation
            class), ``nearest_gene`` and ``gene_distance`` (bp, 0 inside the gene; see
            :meth:`~avocado_core.annotations.Annotations.nearest_genes`).
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
            if self.annotations is not None:
                near = self.annotations.nearest_genes(chrom, start, df["end"].to_numpy())
                df["nearest_gene"] = near["gene"].to_numpy()
                df["gene_distance"] = near["distance"].to_numpy()
        df.attrs.update(attrs)
        return df

    def has_projection(self, axis: str, method: str = "umap", resolution: str = "all") -> bool:
        """Whether a projection is cached (so it can be shown without waiting)."""
        return self.projection(axis, method, resolution, compute=False) is not None


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
