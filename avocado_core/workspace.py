"""A workspace: what the app serves — a track store, a trained model, annotations and projections.

Layout of a workspace directory::

    workspace.json     genome, annotation source, model fingerprint, how it was built
    store/             a TrackStore (observed tracks, and the model's imputations as "imputed")
    model/             an Avocado model (``Avocado.save``)
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
#: Training of the demo model on the pilot tracks: ``Avocado.small``, each epoch one pass over
#: the positions (a few minutes on two CPU cores).
PILOT_TRAINING: dict[str, Any] = {"n_epochs": 20, "model": {}}


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
        try:
            self.info: dict = json.loads(meta.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise AvocadoValueError(f"{meta} is corrupted (not valid JSON: {exc})") from None
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
        """Metadata of the tensor's biosamples (index: name), plus ``n_observed`` assays."""
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
        meta["n_observed"] = ((status == "observed").sum(axis=1 if axis == "biosamples" else 0)
                              .reindex(names).fillna(0).astype(int).to_numpy())
        return meta

    def _tracks_index(self) -> dict:
        """Experiment sets per kind and opened memory maps, reused until the catalog changes.

        The app asks for the same tracks on every request; looking each one up in the catalog
        table dominated the locus callback's time.
        """
        st = os.stat(self.store_path / "catalog.tsv")
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if self._catalog is None or self._catalog[0] != key:
                index = {kind: set(self.store.experiments(kind)) for kind in ("observed",
                                                                             "imputed")}
                index["maps"] = {}
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
        """The tensor as a biosample x assay table of "observed", "imputed" or "missing"."""
        index = self._tracks_index()
        observed, imputed = index["observed"], index["imputed"]
        bios, assays = self.biosamples, self.assays
        b = np.repeat(bios, len(assays))
        a = np.tile(assays, len(bios))
        pairs = list(zip(b, a))
        is_obs = np.fromiter((p in observed for p in pairs), bool, len(pairs))
        is_imp = np.fromiter((p in imputed for p in pairs), bool, len(pairs))
        values = np.where(is_obs, "observed", np.where(is_imp, "imputed", "missing"))
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
              progress: bool = True):
        """Train ``Avocado.small`` on the store's observed tracks and save it under model/.

        Nothing happens when the workspace already has a model.
        """
        from .model import Avocado

        if self.has_model:
            return self.model
        store = self.store
        experiments = store.experiments("observed")
        if not experiments:
            raise AvocadoValueError(f"the store at {str(self.store_path)!r} has no observed tracks")
        biosamples = sorted({b for b, _ in experiments})
        assays = sorted({a for _, a in experiments})
        model = Avocado.small(biosamples, assays, store.n_bins, seed=seed,
                              **dict(model_kwargs or {}))
        t0 = time.perf_counter()
        fit_kw: dict[str, Any] = dict(n_epochs=n_epochs, seed=seed, progress=progress)
        if epoch_size is not None:
            fit_kw["epoch_size"] = epoch_size
        history = model.fit(store, **fit_kw)
        seconds = time.perf_counter() - t0
        tmp = Path(tempfile.mkdtemp(dir=self.path, prefix=".model-"))
        model.save(tmp)
        if self.model_path.exists():
            _swap_dir(tmp, self.model_path)
        else:
            os.replace(tmp, self.model_path)
        self.__dict__["model"] = model
        loss = history.get("loss", []) if isinstance(history, Mapping) else []
        self.update_info(
            model_fingerprint=None,
            training={"n_epochs": n_epochs, "epoch_size": epoch_size, "seed": seed,
                      "model_kwargs": dict(model_kwargs or {}), "seconds": round(seconds, 1),
                      "final_loss": float(loss[-1]) if len(loss) else None},
        )
        return model

    def impute(self, experiments: Iterable[tuple[str, str]] | None = None, *,
               overwrite: bool = False, progress: bool = True) -> int:
        """Write the model's imputation of experiments into the store as kind "imputed".

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
        from .imputation import impute_experiments

        done = impute_experiments(self.model, self.store, experiments, overwrite=overwrite,
                                  source=f"avocado model {self.path.name}/model",
                                  progress=progress)
        return len(done)

    def compute_projections(self, which: Sequence[tuple[str, str, str]] = DEFAULT_PROJECTIONS,
                            *, progress: bool = True) -> None:
        """Compute (or find cached) the given projections (axis, method, resolution)."""
        for axis, method, resolution in tqdm(list(which), desc="projections", unit="proj",
                                             disable=not progress):
            self.projection(axis, method, resolution)


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
                    progress: bool = True) -> Workspace:
    """Build (or finish building) a workspace the app can serve.

    Steps, each skipped when already done: the store (the 25 real Roadmap pilot tracks, or a
    synthetic compendium), a model (``Avocado.small``, CPU), the imputation of every
    (biosample, assay) of the tensor into the store as "imputed", and the projections.

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
    if not ws.has_model:
        ws.train(n_epochs=int(n_epochs or PILOT_TRAINING["n_epochs"]), epoch_size=epoch_size,
                 model_kwargs={**PILOT_TRAINING["model"], **dict(model_kwargs or {})},
                 seed=seed, progress=progress)
    if impute if impute is not None else pilot:
        ws.impute(progress=progress)
    ws.compute_projections(projections, progress=progress)
    return ws
