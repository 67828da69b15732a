"""The genome-wide workflow: train on a region set, fit each chromosome, assemble, export.

1. Train a model on a region set (``Avocado.fit`` / ``avocado train``), e.g. the ENCODE pilot
   regions.
2. For each chromosome of a genome-wide store (``RegionSet.from_chrom_sizes``), learn its genome
   factors with the network and the biosample / assay factors frozen
   (:func:`fit_chromosome`, ``Avocado.fit_positions``). Chromosomes are independent jobs: run
   them one after another, in parallel processes (:func:`fit_chromosomes` with ``n_jobs``), or
   on separate machines (``avocado fit-genome MODEL STORE PARTS --chrom chrN``); each job
   writes its own part, ``PARTS/<chrom>/`` (an ordinary model directory), atomically.
3. :func:`assemble` checks that every part was fitted from the same frozen network and
   embeddings and gathers them into one genome model directory (:class:`GenomeModel`): the
   shared network once, the genome factors of each chromosome in its own file.
4. :meth:`GenomeModel.export_bigwigs` imputes tracks genome-wide into bigWigs, chromosome by
   chromosome and chunk by chunk, reading each window of a chromosome's genome factors from its
   file, so memory holds one window of factors and two chunks of predictions at a time (the
   next chunk is imputed while the last one is written).

Layout of a genome model directory::

    genome.json                 format, version, model config, chromosomes and their bin ranges
    regions.tsv                 the genome-wide region set (bins of the store)
    shared.safetensors          network + biosample / assay embeddings
    chroms/<chrom>.safetensors  25 bp / 250 bp / 5 kbp genome factors of one chromosome

The position layout of the genome store is kept: chromosome ``c`` covers the store's bins
``[start, end)``, and its factors are those of positions ``0 .. end - start`` of its own model
(the 250 bp and 5 kbp rows restart at each chromosome, as in the original package).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, _io
from ._paths import file_stem
from .devices import job_devices
from .errors import AvocadoKeyError, AvocadoValueError, short_list
from .model import Avocado
from .model_format import check_tensors, read_safetensors, write_safetensors
from .network import GENOME_RESOLUTIONS, genome_rows
from .precision import check_precision
from .regions import RegionSet
from .residual import AverageActivity
from .store import TrackStore

__all__ = [
    "GenomeModel",
    "assemble",
    "fit_chromosome",
    "fit_chromosomes",
    "frozen_fingerprint",
    "write_genome_model",
]

_FORMAT = "avocado-genome-model"
_INDEX = "genome.json"
#: Positions of a chromosome whose genome factors are read at once when predicting.
_WINDOW_BINS = 1_000_000
#: Bytes of predictions (float32) imputed per export chunk; the writer holds one more chunk.
_EXPORT_BUDGET = 8 * 2**20


def _as_store(store: TrackStore | str | os.PathLike) -> TrackStore:
    return store if isinstance(store, TrackStore) else TrackStore(store)


def _as_model(model: Avocado | str | os.PathLike, device: Any = None) -> Avocado:
    return model if isinstance(model, Avocado) else Avocado.load(model, device=device)


def _shared_state(model: Avocado) -> dict[str, torch.Tensor]:
    """The parameters every chromosome shares (all but the genome tables)."""
    genome = {f"genome_{r}.weight" for r in GENOME_RESOLUTIONS}
    return {k: v for k, v in model.network.state_dict().items() if k not in genome}


def frozen_fingerprint(model: Avocado) -> str:
    """SHA-256 of the network and biosample / assay factors (what the genome-wide phase freezes).

    Parameters
    ----------
    model: Avocado

    Returns
    -------
    str
        Hex digest; equal for a model and every ``fit_positions`` model derived from it.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(_shared_state(model).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps([model.biosamples, model.assays]).encode())
    return digest.hexdigest()


def _chrom_ranges(store: TrackStore, chroms: Sequence[str] | None) -> list[tuple[str, int, int]]:
    regions = store.regions
    if chroms is None:
        chroms = regions.chroms
    unknown = [c for c in chroms if c not in regions.chroms]
    if unknown:
        raise AvocadoKeyError(
            f"chromosome(s) {unknown} are not in store {store.path}; its chromosomes: "
            f"{short_list(regions.chroms)}"
        )
    return [(c, *regions.chrom_bins(c)) for c in chroms]


# ---------------------------------------------------------------------------------- fitting
def fit_chromosome(
    model: Avocado | str | os.PathLike,
    store: TrackStore | str | os.PathLike,
    chrom: str,
    parts_dir: str | os.PathLike,
    *,
    n_epochs: int = 10,
    epoch_size: int | None = None,
    sampling: str = "sequential",
    seed: int | None = 0,
    max_memory: int | str | None = None,
    checkpoint_every: int | None = None,
    overwrite: bool = False,
    device: str | torch.device | None = None,
    precision: str | None = None,
    progress: bool = True,
    average_from: int | None = None,
) -> Path:
    """Learn one chromosome's genome factors with the network frozen; write ``parts_dir/chrom``.

    The part is an ordinary model directory (``Avocado.load`` reads it), assembled under a
    temporary name and renamed into place, so a killed job leaves no half-written part. A
    finished part of the same model is kept (a rerun of a job array skips it) unless
    ``overwrite``.

    Parameters
    ----------
    model: Avocado or path-like
        The model trained on a region set (or its directory).
    store: TrackStore or path-like
        Genome-wide store; its observed tracks of biosamples and assays the model knows train.
    chrom: str
        The chromosome.
    parts_dir: path-like
        Where the part goes.
    n_epochs, epoch_size, sampling, seed, checkpoint_every, average_from:
        As in ``Avocado.fit_positions`` (checkpoints go to ``parts_dir/.checkpoints/chrom``).
    max_memory: int or str or None, optional
        Budget of training data in RAM; above it, tracks stream from the store
        (:func:`avocado_core.streaming.memory_budget`). Default is None: the trainer's default.
    overwrite: bool, optional
        Refit even when the part exists. Default is False.
    device: str or torch.device or None, optional
        Device when ``model`` is a path.
    precision: str or None, optional
        Training precision (``"auto"``, ``"fp32"`` or ``"bf16"``, see
        :func:`avocado_core.precision.resolve_precision`), saved with the part. Default is
        None: the model's.
    progress: bool, optional
        Progress bar. Default is True.

    Returns
    -------
    pathlib.Path
        The part directory.
    """
    model = _as_model(model, device)
    if precision is not None:
        check_precision(precision)
    store = _as_store(store)
    [(chrom, start, end)] = _chrom_ranges(store, [chrom])
    parts = Path(parts_dir)
    target = parts / chrom
    if target.exists() and not overwrite:
        with contextlib.suppress(AvocadoValueError):
            done = Avocado.load(target, device="cpu")
            if done.n_positions == end - start and frozen_fingerprint(done) == frozen_fingerprint(
                model
            ):
                return target
    tracks = store.tracks()
    known_b, known_a = set(model.biosamples), set(model.assays)
    keys = [k for k in tracks if k[0] in known_b and k[1] in known_a]
    if not keys:
        raise AvocadoValueError(
            f"store {store.path} has no observed track of a biosample and assay the model knows "
            f"(biosamples: {short_list(model.biosamples)}; assays: {short_list(model.assays)})"
        )
    data = {k: tracks[k][start:end] for k in keys}  # memmap windows: nothing is read yet
    scope: Any = contextlib.nullcontext()
    if max_memory is not None:
        from .streaming import memory_budget

        scope = memory_budget(max_memory)
    checkpoints = parts / ".checkpoints" / chrom if checkpoint_every else None
    saved_precision = model.precision
    with scope:
        if precision is not None:  # the part is saved with it; the model is left as it was
            model.precision = precision
        try:
            part = model.fit_positions(
                data, end - start, n_epochs=n_epochs, epoch_size=epoch_size,
                sampling=sampling, seed=seed, checkpoint_dir=checkpoints,
                checkpoint_every=checkpoint_every, progress=progress, average_from=average_from,
            )
        finally:
            model.precision = saved_precision
    parts.mkdir(parents=True, exist_ok=True)
    _io.remove_stale(parts)
    with _io.atomic_dir(target) as tmp:
        part.save(tmp)
    if checkpoints is not None:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return target


def _fit_job(kwargs: dict[str, Any]) -> str:
    torch.set_num_threads(kwargs.pop("threads"))
    return str(fit_chromosome(**kwargs))


def fit_chromosomes(
    model_path: str | os.PathLike,
    store_path: str | os.PathLike,
    parts_dir: str | os.PathLike,
    chroms: Sequence[str] | None = None,
    *,
    n_jobs: int = 1,
    threads_per_job: int = 1,
    **fit_kwargs: Any,
) -> list[Path]:
    """Fit several chromosomes, each in its own process (``n_jobs`` at a time).

    Each job is :func:`fit_chromosome` in a fresh process (spawned), so chromosomes share
    nothing but the files. For separate machines, run one ``avocado fit-genome --chrom`` per
    machine instead and copy the parts into one directory. On CUDA without a device index
    (``device="cuda"``, or no ``device`` on a machine with GPUs) the jobs are spread over the
    GPUs, the ``i``-th on ``cuda:{i % n_gpus}`` (:func:`avocado_core.devices.job_devices`).

    Parameters
    ----------
    model_path, store_path: path-like
        The region-set model directory and the genome-wide store.
    parts_dir: path-like
        Where the parts go.
    chroms: sequence of str or None, optional
        Default is None: every chromosome of the store.
    n_jobs: int, optional
        Processes at a time. Default is 1.
    threads_per_job: int, optional
        Torch threads per process. Default is 1.
    **fit_kwargs:
        Passed to :func:`fit_chromosome` (``n_epochs``, ``seed``, ``max_memory``, ``device``,
        ...).

    Returns
    -------
    list of pathlib.Path
        The part directories, in chromosome order.
    """
    store = TrackStore(store_path)
    ranges = _chrom_ranges(store, chroms)
    # Largest first: the longest job starts earliest.
    order = sorted(ranges, key=lambda r: r[1] - r[2])
    fit_kwargs = {"progress": False, **fit_kwargs}
    # Chosen here, not in each job: one choice for all, jobs side by side on different GPUs.
    devices = job_devices(fit_kwargs.pop("device", None), max(n_jobs, 1))
    jobs = [dict(model=str(model_path), store=str(store_path), chrom=c, parts_dir=str(parts_dir),
                 device=str(devices[i % len(devices)]), **fit_kwargs)
            for i, (c, _, _) in enumerate(order)]
    if n_jobs <= 1:
        done = {j["chrom"]: fit_chromosome(**j) for j in jobs}
    else:
        jobs = [dict(j, threads=threads_per_job) for j in jobs]
        import multiprocessing

        with ProcessPoolExecutor(n_jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = {j["chrom"]: Path(p) for j, p in zip(jobs, pool.map(_fit_job, jobs))}
    return [done[c] for c, _, _ in ranges]


# ---------------------------------------------------------------------------------- assembling
def assemble(
    model: Avocado | str | os.PathLike,
    store: TrackStore | str | os.PathLike,
    parts_dirs: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    chroms: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Gather the chromosome parts into one genome model directory (atomically).

    Every part must have been fitted from ``model`` (identical network and biosample / assay
    factors) over exactly its chromosome's bins of ``store``.

    Parameters
    ----------
    model: Avocado or path-like
        The region-set model the parts were fitted from.
    store: TrackStore or path-like
        The genome-wide store (its region set gives each chromosome's bins).
    parts_dirs: path-like or sequence of path-like
        Directories holding ``<chrom>/`` parts (several, e.g. one per machine).
    output: path-like
        The genome model directory (replaced if it exists).
    chroms: sequence of str or None, optional
        Chromosomes to include. Default is None: every chromosome of the store.
    progress: bool, optional
        Progress bar. Default is True.

    Returns
    -------
    pathlib.Path
        ``output``, the genome model directory (:meth:`GenomeModel.load` reads it).

    Raises
    ------
    AvocadoValueError
        A part is missing, covers a different number of bins, or was fitted from another model.
    """
    model = _as_model(model, "cpu")
    store = _as_store(store)
    ranges = _chrom_ranges(store, chroms)
    dirs = [Path(parts_dirs)] if isinstance(parts_dirs, (str, os.PathLike)) else [
        Path(p) for p in parts_dirs]
    found = {}
    for c, _, _ in ranges:
        hits = [d / c for d in dirs if (d / c / "config.json").is_file()]
        if hits:
            found[c] = hits[0]
    missing = [c for c, _, _ in ranges if c not in found]
    if missing:
        raise AvocadoValueError(
            f"no part for chromosome(s) {short_list(missing)} in {', '.join(map(str, dirs))}; "
            "fit them first (avocado fit-genome MODEL STORE PARTS --chrom CHROM)"
        )
    want = frozen_fingerprint(model)

    def parts() -> Iterator[tuple[str, Avocado]]:
        for c, _, _ in ranges:
            part = Avocado.load(found[c], device="cpu")
            if frozen_fingerprint(part) != want:
                raise AvocadoValueError(
                    f"part {found[c]} was not fitted from this model: its network or biosample / "
                    "assay factors differ"
                )
            yield c, part

    return write_genome_model(model, store.regions, parts(), output, fingerprint=want,
                              chroms=[c for c, _, _ in ranges], progress=progress)


def write_genome_model(
    model: Avocado,
    regions: RegionSet,
    parts: Iterable[tuple[str, Avocado]],
    output: str | os.PathLike,
    *,
    fingerprint: str,
    chroms: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Write a genome model directory (atomically) from the models of its chromosomes.

    Parameters
    ----------
    model: Avocado
        Gives the shared network, the biosample / assay factors, the config and the history.
    regions: RegionSet
        The genome-wide region set; chromosome ``c`` covers its bins ``chrom_bins(c)``.
    parts: iterable of (str, Avocado)
        Each chromosome's model, in order (consumed one at a time, so memory holds one).
    output: path-like
        The genome model directory (replaced if it exists).
    fingerprint: str
        :func:`frozen_fingerprint` of the shared parameters, recorded in the index.
    chroms: sequence of str or None, optional
        The chromosomes, for the progress bar's total. Default is None.
    progress: bool, optional
        Progress bar. Default is True.

    Returns
    -------
    pathlib.Path
        ``output``, the genome model directory.

    Raises
    ------
    AvocadoValueError
        A chromosome's model does not cover exactly its bins of the region set.
    """
    from tqdm.auto import tqdm

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    _io.remove_stale(output.parent, output.name)
    with _io.atomic_dir(output) as tmp:
        _io.make_dir(tmp / "chroms")
        entries = []
        bar = tqdm(parts, total=len(chroms) if chroms is not None else None,
                   disable=not progress, desc="writing genome model", unit="chrom")
        for c, part in bar:
            start, end = regions.chrom_bins(c)
            if part.n_positions != end - start:
                raise AvocadoValueError(
                    f"the model of chromosome {c} covers {part.n_positions} bins; the region set "
                    f"has {end - start} bins on {c}"
                )
            tables = {r: part.network.genome_tables[r].weight.detach().cpu().contiguous()
                      for r in GENOME_RESOLUTIONS}
            if part.activity is not None:  # the chromosome's average activity
                tables.update(part.activity.tensors())
            write_safetensors(tmp / "chroms" / f"{c}.safetensors", tables)
            entries.append({"chrom": c, "start": start, "end": end,
                            "file": f"chroms/{c}.safetensors",
                            "loss": part.history.get("loss", [])[-1:]})
            del part, tables
        write_safetensors(tmp / "shared.safetensors", _shared_state(model))
        regions.write(tmp / "regions.tsv")
        config = model.config
        config.pop("n_positions")
        index = {"format": _FORMAT, "version": __version__, "config": config,
                 "fingerprint": fingerprint, "chroms": entries, "history": model.history}
        _io.write_text(tmp / _INDEX, json.dumps(index, indent=1))
    return output


# ---------------------------------------------------------------------------------- the model
class GenomeModel:
    """A genome-wide model: one frozen network, genome factors per chromosome.

    Open with :meth:`load`; :meth:`predict` / :meth:`predict_many` impute a chromosome or a
    locus reading the genome factors window by window; :meth:`chromosome` gives an ordinary
    :class:`Avocado` over one whole chromosome (loaded on demand, one at a time).

    Attributes
    ----------
    path: pathlib.Path
    regions: RegionSet
        The genome-wide region set (the store's bins).
    chroms: list of str
    biosamples, assays: list of str
    config: dict
        The model configuration (without ``n_positions``).
    """

    def __init__(self, path: Path, index: dict[str, Any], device: torch.device | None) -> None:
        self.path = path
        self._index = index
        self._entries = {e["chrom"]: e for e in index["chroms"]}
        self.chroms = [e["chrom"] for e in index["chroms"]]
        self.config = dict(index["config"])
        self.biosamples = list(self.config["biosamples"])
        self.assays = list(self.config["assays"])
        self.regions = RegionSet.read(path / "regions.tsv")
        self.device = device
        self._cache: tuple[str, Avocado] | None = None
        self._window: Avocado | None = None

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> GenomeModel:
        """Open a genome model directory written by :func:`assemble`.

        Raises
        ------
        AvocadoValueError
            The directory is not a genome model or lacks files.
        """
        path = Path(path)
        index_file = path / _INDEX
        if not index_file.is_file():
            raise AvocadoValueError(
                f"{path} has no {_INDEX}: not a genome model directory (see genome_wide.assemble)"
            )
        try:
            index = json.loads(index_file.read_text())
        except json.JSONDecodeError as exc:
            raise AvocadoValueError(f"{index_file} is corrupted ({exc})") from None
        if index.get("format") != _FORMAT:
            raise AvocadoValueError(f"{index_file} is not a genome model index")
        lacking = [f for f in ["shared.safetensors", "regions.tsv",
                               *(e["file"] for e in index["chroms"])] if not (path / f).is_file()]
        if lacking:
            raise AvocadoValueError(f"genome model {path} lacks {short_list(lacking)}")
        return cls(path, index, torch.device(device) if device is not None else None)

    def __repr__(self) -> str:
        return (f"GenomeModel({len(self.biosamples)} biosamples, {len(self.assays)} assays, "
                f"{len(self.chroms)} chromosomes, {self.regions.n_bins:,} bins)")

    def chrom_bins(self, chrom: str) -> tuple[int, int]:
        """Bin range ``[start, end)`` of a chromosome in the genome-wide layout."""
        if chrom not in self._entries:
            raise AvocadoKeyError(
                f"chromosome {chrom!r} is not in the genome model; it has {short_list(self.chroms)}"
            )
        e = self._entries[chrom]
        return int(e["start"]), int(e["end"])

    def _over(self, chrom: str, lo: int, hi: int, model: Avocado | None = None) -> Avocado:
        """A model of positions ``[lo, hi)`` of a chromosome (``lo`` a multiple of 200, so the
        coarse rows line up), reading only those rows of its genome factors from the file.

        ``model`` (one made here before) is reused: only its genome tables are replaced.
        """
        from safetensors import safe_open

        if lo % GENOME_RESOLUTIONS["5kbp"]:
            raise AvocadoValueError(f"a window of positions must start at a multiple of 200, "
                                    f"got {lo}")
        if model is None:
            shared = read_safetensors(self.path / "shared.safetensors")
            # Built over one position, then given the tables as they were read: the factors are
            # in memory once (no random initialization of a second set to overwrite).
            model = Avocado(**dict(self.config, n_positions=1), device=self.device)
            result = model.network.load_state_dict(
                {k: v.to(model.device) for k, v in shared.items()}, strict=False)
            lacking = [k for k in result.missing_keys if not k.startswith("genome_")]
            if lacking or result.unexpected_keys:
                unexpected = short_list(result.unexpected_keys)
                raise AvocadoValueError(
                    f"{self.path / 'shared.safetensors'} does not match the model config "
                    f"(missing {short_list(lacking)}; unexpected {unexpected})"
                )
            model.history = {k: list(v) for k, v in self._index.get("history", {}).items()}
        n = hi - lo
        file = self.path / self._entries[chrom]["file"]
        with safe_open(str(file), framework="pt") as f:
            tables = {r: f.get_slice(r)[lo // step: lo // step + genome_rows(n, r)]
                      for r, step in GENOME_RESOLUTIONS.items()}
            activity = {}
            if "average_activity.mean" in f.keys():  # the window's average activity
                activity = {"average_activity.mean": f.get_slice("average_activity.mean")[:, lo:hi],
                            "average_activity.count": f.get_tensor("average_activity.count")}
        check_tensors({**tables, **activity}, file)  # the rows read, as they are read
        if activity:
            model.activity = AverageActivity(activity["average_activity.mean"].numpy(),
                                             activity["average_activity.count"].numpy())
        model.network.set_genome_tables({r: t.to(model.device) for r, t in tables.items()})
        model.n_positions = n
        for p in model.network.parameters():
            p.requires_grad_(False)
        return model

    def chromosome(self, chrom: str) -> Avocado:
        """The model of one chromosome (positions ``0 .. n_bins`` of that chromosome).

        The last one asked for is kept; asking for another releases it. Its genome factors are
        all in memory: :meth:`predict_many` and :meth:`export_bigwigs` read them window by
        window instead.

        Returns
        -------
        Avocado
        """
        if self._cache is not None and self._cache[0] == chrom:
            return self._cache[1]
        self._cache = None
        start, end = self.chrom_bins(chrom)
        self._cache = (chrom, self._over(chrom, 0, end - start))
        return self._cache[1]

    def predict_many(self, experiments: Sequence[tuple[str, str]], chrom: str, start: int = 0,
                     end: int | None = None) -> np.ndarray:
        """Impute experiments over positions ``[start, end)`` of one chromosome, window by window.

        Memory holds the result, one window's genome factors (``_WINDOW_BINS`` positions, read
        from the chromosome's file) and one prediction chunk, whatever the chromosome's size.

        Parameters
        ----------
        experiments: sequence of (str, str)
        chrom: str
        start, end: int, optional
            Positions (25 bp bins) of the chromosome. Default: all of it.

        Returns
        -------
        numpy.ndarray, shape=(len(experiments), end - start), dtype=float32
        """
        c0, c1 = self.chrom_bins(chrom)
        end = c1 - c0 if end is None else end
        if not 0 <= start < end <= c1 - c0:
            raise AvocadoValueError(f"position range [{start}, {end}) is not within chromosome "
                                    f"{chrom}'s [0, {c1 - c0})")
        out = np.empty((len(experiments), end - start), dtype=np.float32)
        step = GENOME_RESOLUTIONS["5kbp"]
        first = start - start % step
        # a smoothing model reads half its window past each end (whole 5 kbp rows)
        pad = step * -(-(int(self.config.get("smoothing", 1)) // 2) // step)
        for lo in range(first, end, _WINDOW_BINS):
            hi = min(end, lo + _WINDOW_BINS)
            w0, w1 = max(0, lo - pad), min(c1 - c0, hi + pad)
            self._window = self._over(chrom, w0, w1, self._window)
            a = max(start, lo)
            out[:, a - start: hi - start] = self._window.predict_many(experiments, a - w0,
                                                                       hi - w0)
        return out

    def predict(self, biosample: str, assay: str, region: str | tuple) -> np.ndarray:
        """Impute one experiment over a chromosome or a locus.

        Parameters
        ----------
        biosample, assay: str
        region: str or tuple
            A chromosome name (``"chr21"``), a locus (``"chr21:30M-31M"``, ``(chrom, start,
            end)``) within one chromosome.

        Returns
        -------
        numpy.ndarray, dtype=float32
            One value per 25 bp bin.
        """
        if isinstance(region, str) and region in self._entries:
            chrom, lo, hi = region, 0, None
        else:
            start, end = self.regions.locus_bins(region)
            chrom = str(self.regions.region_of_bin(start)["chrom"])
            c0, _ = self.chrom_bins(chrom)
            lo, hi = start - c0, end - c0
        return self.predict_many([(biosample, assay)], chrom, lo, hi)[0]

    def export_bigwigs(
        self,
        experiments: Sequence[tuple[str, str]],
        out_dir: str | os.PathLike,
        chrom_sizes: str | os.PathLike | Mapping[str, int] | None = None,
        invert_transform: str | None = None,
        chunk_bins: int | None = None,
        progress: bool = True,
    ) -> list[Path]:
        """Impute experiments genome-wide into bigWigs ``out_dir/<biosample>.<assay>.bigWig``.

        Chromosome by chromosome and chunk by chunk (the predictions of ``chunk_bins`` bins of
        every experiment, from one window of genome factors read from the chromosome's file; the
        next chunk is imputed while the last is written); each file is written under a temporary
        name and renamed when complete.

        Parameters
        ----------
        experiments: sequence of (str, str)
            ``(biosample, assay)`` pairs.
        out_dir: path-like
        chrom_sizes: path-like or mapping or None, optional
            The genome's chromosome sizes. Default is None: the chromosome ends of the region
            set (which covers whole chromosomes).
        invert_transform: str or None, optional
            ``"arcsinh"`` (or ``"log1p"``) writes the signal on the original scale. Default is
            None: the model's (transformed) scale.
        chunk_bins: int or None, optional
            Bins per chunk. Default is None: about 8 MiB of predictions.
        progress: bool, optional
            Progress bar over the bins. Default is True.

        Returns
        -------
        list of pathlib.Path
        """
        from .bigwig import TRANSFORMS, read_chrom_sizes, write_bigwigs
        from .imputation import check_predictions

        experiments = [tuple(e) for e in experiments]
        if not experiments:
            raise AvocadoValueError("export_bigwigs needs at least one (biosample, assay) pair")
        for b, a in experiments:
            if b not in self.biosamples:
                raise AvocadoKeyError(
                    f"unknown biosample {b!r}; known: {short_list(self.biosamples)}"
                )
            if a not in self.assays:
                raise AvocadoKeyError(f"unknown assay {a!r}; known: {short_list(self.assays)}")
        inverse = None
        if invert_transform is not None:
            if invert_transform not in TRANSFORMS:
                raise AvocadoValueError(
                    f"unknown transform {invert_transform!r}; "
                    f"expected one of {short_list(TRANSFORMS)}"
                )
            inverse = TRANSFORMS[invert_transform][1]
        iv = self.regions.intervals
        if chrom_sizes is None:
            if not (iv["chrom"].is_unique and (iv["start"] == 0).all()):
                raise AvocadoValueError(
                    "the region set does not cover whole chromosomes; pass chrom_sizes"
                )
            sizes = dict(zip(iv["chrom"], iv["end"].astype(int)))
        else:
            sizes = read_chrom_sizes(chrom_sizes)
        lacking = [c for c in self.chroms if c not in sizes]
        if lacking:
            raise AvocadoKeyError(f"chromosome(s) {lacking} are not in the chrom sizes")
        chunk = int(chunk_bins or max(1, _EXPORT_BUDGET // (4 * len(experiments))))
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        regions = self.regions
        if set(regions.chroms) != set(self.chroms):  # a genome model of some chromosomes
            regions = RegionSet(iv[iv["chrom"].isin(self.chroms)], bin_size=regions.bin_size)

        def predict(lo: int, hi: int) -> np.ndarray:
            chrom = str(regions.region_of_bin(lo)["chrom"])
            c0 = regions.chrom_bins(chrom)[0]
            values = self.predict_many(experiments, chrom, lo - c0, hi - c0)
            if inverse is not None:
                values = inverse(values)
            check_predictions(values, experiments, lo)
            return values

        targets = write_bigwigs([out / f"{file_stem(b, a)}.bigWig" for b, a in experiments],
                                regions,
                                {c: int(sizes[c]) for c in self.chroms}, predict,
                                chunk_bins=chunk, progress=progress,
                                transform=None if inverse is None else "none")
        self._window = None
        return targets
