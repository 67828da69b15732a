"""Building a workspace: the store, the model, the imputations and the projections the app serves.

:func:`build_workspace` makes a :class:`~avocado_core.workspace.Workspace` with the library's
verbs: it builds the store (the public Roadmap pilot data, a synthetic compendium, or synthetic
signal over the real layout of the ENCODE 2018 core compendium: :data:`ENCODE_LAYOUT_BUILD`),
trains the default model (``Avocado.from_preset`` and ``fit``), imputes every (biosample,
assay) of the tensor (``impute_experiments``) and computes the projections. Each step is
skipped when its result is already there, so a second call returns at once. The pilot
workspace keeps two Latin squares of experiments out of training
(:data:`PILOT_HELD_OUT_SHIFT`, :data:`PILOT_CALIBRATION_SHIFT`) and is an ensemble whose spread
gives a calibrated uncertainty band (:mod:`~avocado_core.uncertainty`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from . import _io
from .errors import AvocadoValueError
from .workspace import Workspace

__all__ = ["build_workspace", "DEFAULT_PROJECTIONS", "PILOT_TRAINING", "ENCODE_LAYOUT_BUILD",
           "SOURCES"]

#: Projections computed by :func:`build_workspace`: (axis, method, resolution). The UMAP of
#: the genome positions is not among them: it was most of the demo's build (about 3 of its 8
#: minutes on 2 busy cores, for 100,000 positions), and the app computes it in the background,
#: with progress, when someone first asks for it.
DEFAULT_PROJECTIONS: tuple[tuple[str, str, str], ...] = (
    ("biosamples", "umap", "all"),
    ("biosamples", "pca", "all"),
    ("assays", "umap", "all"),
    ("assays", "pca", "all"),
    ("genome", "pca", "all"),
)
#: Training of the demo models on the pilot tracks: what ``avocado train`` does by default, an
#: ensemble of 3 models of the ``"small"`` preset (seeds 0, 100, 200) with ``fit``'s defaults
#: (30 epochs, the averaging window and each biosample's prediction settings chosen once on
#: validation tracks split off the training tracks).
PILOT_TRAINING: dict[str, Any] = {"model": {}, "n_models": 3}
#: The demo's held-out experiments: the Latin square (see :func:`holdout.latin_square`) of
#: this shift over the sorted pilot biosamples and assays is never trained on, and the app
#: shows their real signal beside the imputation with held-out scores.
PILOT_HELD_OUT_SHIFT = 0
#: The demo's calibration experiments (another Latin square, disjoint from the held-out one):
#: not trained on, used to calibrate the uncertainty band, then removed from the demo store
#: so that the app shows them as never-performed experiments (imputation only).
PILOT_CALIBRATION_SHIFT = 1
#: Where :func:`build_workspace` gets the tracks.
SOURCES = ("roadmap-pilot", "synthetic", "encode-layout")
#: The ENCODE-layout workspace (``source="encode-layout"``): synthetic signal with the real
#: layout of the ENCODE 2018 core compendium (:mod:`~avocado_core.encode_layout`; 400
#: biosamples x 84 assays, 3,814 observed tracks) over 100,000 bins (1.4 GiB of tracks), one
#: ``Avocado.small`` trained for 100 passes over the positions with its data streamed from the
#: store above a 1 GiB budget, imputation on the fly, 50,000 genome points in the projections
#: (why these numbers: docs/encode-layout.md), and the prediction settings as given: choosing
#: them would train 10 more models, doubling the build, for synthetic signal. Batches of 10,000:
#: 100 passes over 100,000 positions are 300 steps of the preset's 40,000, too few for 400
#: biosample rows to learn their planted groups (adjusted Rand index of their k-means 0.07),
#: and 1,000 steps of 10,000 for the same samples.
ENCODE_LAYOUT_BUILD: dict[str, Any] = {"n_positions": 100_000, "n_epochs": 100,
                                       "max_memory": "1G", "genome_points": 50_000,
                                       "choose_settings": False,
                                       "model": {"batch_size": 10_000}}
_TITLES = {"roadmap-pilot": "Roadmap pilot", "synthetic": "Synthetic compendium",
           "encode-layout": "ENCODE 2018 layout (synthetic signal)"}


def _train(ws: Workspace, *, fit: Mapping[str, Any], model_kwargs: Mapping[str, Any],
           seed: int, progress: bool, held_out: Iterable[tuple[str, str]] = (),
           n_models: int = 1, max_memory: int | str | None = None,
           device: str = "cpu") -> None:
    """Train ``Avocado.small`` (an ensemble of ``n_models``, seeds ``seed``, ``seed + 100``,
    ...) on the store's observed tracks but ``held_out``, streaming them from the store when
    they take more than ``max_memory``, and save it to ``ws.model_path`` (its members under
    members/)."""
    from .ensemble import AvocadoEnsemble, check_n_models
    from .model import Avocado
    from .projection import model_fingerprint
    from .streaming import memory_budget

    store = ws.store
    n_models = check_n_models(n_models)
    experiments = store.experiments("observed")
    held_out = sorted({(str(b), str(a)) for b, a in held_out})
    unknown = [e for e in held_out if e not in set(experiments)]
    if unknown:
        raise AvocadoValueError(f"held-out experiments {unknown} are not observed in the store; "
                                "hold out observed experiments only")
    training = {e: store.track(*e) for e in experiments if e not in set(held_out)}
    if not training:
        raise AvocadoValueError("every observed experiment is held out; nothing to train on")
    t0 = time.perf_counter()
    with memory_budget(max_memory) if max_memory is not None else contextlib.nullcontext():
        ensemble = AvocadoEnsemble.fit(
            lambda s: Avocado.from_preset({"preset": "small", **model_kwargs}, experiments,
                                          store.n_bins, seed=s, device=device),
            training, n_models, seed=seed, progress=progress, **fit)
    seconds = time.perf_counter() - t0
    ensemble.save(ws.model_path)
    model = ensemble.models[0]
    loss = model.history.get("loss", [])
    ws.update_info(
        model_fingerprint=model_fingerprint(model),
        training={**fit, "seed": seed, "model_kwargs": dict(model_kwargs),
                  "seconds": round(seconds, 1), "n_models": n_models, "max_memory": max_memory,
                  "held_out": [list(e) for e in held_out],
                  "final_loss": float(loss[-1]) if len(loss) else None},
    )


def _impute(ws: Workspace, progress: bool) -> None:
    """Impute every experiment of the tensor into the store: the model's imputation, or the
    ensemble's mean and the members' spread when the model has more members."""
    from .ensemble import AvocadoEnsemble
    from .imputation import impute_experiments

    paths = ws.member_paths
    model = ws.model if len(paths) < 2 else AvocadoEnsemble.load(paths, device="cpu")
    source = f"avocado model {ws.path.name}/model"
    if len(paths) > 1:
        source += f" + {len(paths) - 1} ensemble members"
    impute_experiments(model, ws.store, source=source, spread=len(paths) > 1,
                       progress=progress)


@contextlib.contextmanager
def _step(ws: Workspace, name: str) -> Iterator[None]:
    """Record in workspace.json how many seconds a build step took (``build_seconds``)."""
    t0 = time.perf_counter()
    yield
    ws.update_info(build_seconds={**ws.info.get("build_seconds", {}),
                                  name: round(time.perf_counter() - t0, 1)})


def _write_store(ws: Workspace, source: str, synthetic: Mapping[str, Any],
                 progress: bool) -> None:
    """The store of a source: the pilot tracks, or a generated compendium (labelled
    synthetic in the store's record)."""
    if source == "roadmap-pilot":
        from .datasets import roadmap_pilot

        roadmap_pilot(path=ws.store_path)
        return
    if source == "synthetic":
        from .synthetic import synthetic_compendium

        compendium = synthetic_compendium(**synthetic)
    else:
        from .encode_layout import encode2018_layout
        from .synthetic import layout_compendium

        layout = encode2018_layout(progress=progress)
        if "n_biosamples" in synthetic:
            layout = layout.subset(synthetic.pop("n_biosamples"))
        compendium = layout_compendium(
            layout.planted(), **{"n_positions": ENCODE_LAYOUT_BUILD["n_positions"], **synthetic})
    compendium.write_store(ws.store_path, progress=progress)


def build_workspace(path: str | os.PathLike, source: str = "roadmap-pilot", *,
                    n_epochs: int | None = None, epoch_size: int | None = None,
                    model_kwargs: Mapping[str, Any] | None = None,
                    synthetic: Mapping[str, Any] | None = None,
                    impute: bool | None = None,
                    projections: Sequence[tuple[str, str, str]] | None = None,
                    genome_points: int | None = None, seed: int = 0,
                    n_models: int | None = None, average_from: int | None = None,
                    choose_settings: bool | None = None, hold_out: bool | None = None,
                    max_memory: int | str | None = None, device: str = "cpu",
                    progress: bool = True) -> Workspace:
    """Build (or finish building) a workspace the app can serve.

    Steps, each skipped when already done: the store (the 25 real Roadmap pilot tracks, a
    synthetic compendium, or synthetic signal over the ENCODE 2018 core layout), the models
    (``Avocado.small``, CPU; an ensemble for the pilot), the imputation of every (biosample,
    assay) of the tensor into the store as "imputed" (with the members' spread), the band's
    calibration, and the projections. ``workspace.json`` records how long each step took
    (``build_seconds``). A store of generated signal says so (``Workspace.synthetic``).

    With ``hold_out`` (the pilot's default), two disjoint Latin squares of experiments are kept
    out of training (:data:`PILOT_HELD_OUT_SHIFT`, :data:`PILOT_CALIBRATION_SHIFT`): the
    held-out one stays in the store, so that the app shows real held-out imputations and
    scores; the calibration one calibrates the uncertainty band and is then removed from the
    store, so that the app shows it as never-performed experiments (imputation only).

    Parameters
    ----------
    path: str or os.PathLike
        The workspace directory.
    source: {"roadmap-pilot", "synthetic", "encode-layout"}
        Where the tracks come from. Default is "roadmap-pilot".
    n_epochs, epoch_size: int or None
        Training length; default: ``Avocado.fit``'s (:data:`ENCODE_LAYOUT_BUILD`'s for
        "encode-layout").
    model_kwargs: mapping or None
        Passed to ``Avocado.small`` (e.g. smaller factors for a quick test model).
    synthetic: mapping or None
        Keyword arguments of the generator: ``synthetic.synthetic_compendium`` when
        source="synthetic", ``synthetic.layout_compendium`` (``n_positions``, ``seed``,
        ``group_spread``) when source="encode-layout", where ``n_biosamples`` also takes that
        many of the layout's biosamples (``EncodeLayout.subset``) for a smaller workspace.
    impute: bool or None
        Store the imputation of every experiment in the store. Default (None): yes for the
        pilot (25 tracks); no for a synthetic compendium (thousands of tracks; the app then
        imputes each window on the fly from the model).
    projections: sequence of (axis, method, resolution) or None
        Projections to compute. Default (None): those the workspace was first built with
        (recorded in ``workspace.json``), else :data:`DEFAULT_PROJECTIONS`.
    genome_points: int or None
        Size of the stratified sample of genome positions. Default (None): 100,000
        (:data:`ENCODE_LAYOUT_BUILD`'s for "encode-layout").
    seed: int
    n_models, average_from: int or None
        Ensemble size (default: :data:`PILOT_TRAINING`'s for the pilot, else one model) and
        weight averaging (``Avocado.fit``'s ``average_from``; default: chosen).
    choose_settings: bool or None
        ``Avocado.fit``'s: choose the averaging window and each biosample's prediction
        settings on validation tracks split off the training tracks (the held-out and
        calibration experiments are not among them). Default (None): yes, but for
        "encode-layout" (:data:`ENCODE_LAYOUT_BUILD`).
    hold_out: bool or None
        Keep the Latin squares described above out of training. Default (None): for the
        pilot. It needs a stored imputation (``impute``) and, for the band, ``n_models >= 2``.
    max_memory: int, str or None
        Stream the training data from the store when it takes more than this many bytes
        (e.g. ``"1G"``; :func:`~avocado_core.streaming.memory_budget`). Default (None): the
        trainer's own default (2 GiB), :data:`ENCODE_LAYOUT_BUILD`'s for "encode-layout".
    device: str
        Where the models train (e.g. ``"cuda"``); the app serves them on the CPU either way.
        Default is ``"cpu"``.
    progress: bool
        Show progress bars. Default is True.

    Returns
    -------
    Workspace
    """
    if source not in SOURCES:
        raise AvocadoValueError(f"unknown source {source!r}; expected one of {list(SOURCES)}")
    path = Path(path)
    pilot = source == "roadmap-pilot"
    defaults = ENCODE_LAYOUT_BUILD if source == "encode-layout" else {}
    ws = Workspace.create(path, annotations="hg19" if pilot else None,
                          genome="hg19" if pilot else "synthetic",
                          exist_ok=True, title=_TITLES[source])
    _io.remove_stale(path)  # what killed builds left behind
    if "genome_points" not in ws.info:
        ws.update_info(genome_points=int(genome_points or defaults.get("genome_points", 100_000)),
                       source=source)
    if projections is None:
        projections = [tuple(p) for p in ws.info.get("projections", DEFAULT_PROJECTIONS)]
    if "projections" not in ws.info:
        ws.update_info(projections=[list(p) for p in projections])
    if not ws.has_store:
        with _step(ws, "store"):
            _write_store(ws, source, dict(synthetic or {}), progress)
    hold_out = pilot if hold_out is None else bool(hold_out)
    held_out, calibration = _holdout_design(ws) if hold_out else ([], [])
    if not ws.has_model:
        fit = {k: v for k, v in (("n_epochs", n_epochs or defaults.get("n_epochs")),
                                 ("epoch_size", epoch_size), ("average_from", average_from))
               if v is not None}
        if choose_settings is None:
            choose_settings = defaults.get("choose_settings", True)
        with _step(ws, "training"):
            _train(ws, fit={**fit, "choose_settings": choose_settings},
                   model_kwargs={**PILOT_TRAINING["model"], **defaults.get("model", {}),
                                 **dict(model_kwargs or {})},
                   seed=seed, progress=progress, held_out=held_out + calibration,
                   n_models=n_models or (PILOT_TRAINING["n_models"] if pilot else 1),
                   max_memory=max_memory or defaults.get("max_memory"), device=device)
            # ws.model then loads what was saved
    n_cells = len(ws.biosamples) * len(ws.assays)
    if (impute if impute is not None else pilot) and len(ws.store.experiments("imputed")) < n_cells:
        with _step(ws, "imputation"):
            _impute(ws, progress)
    if calibration:
        _calibrate_and_withhold(ws, calibration)
    missing = [p for p in projections if not ws.has_projection(*p)]
    if missing:
        with _step(ws, "projections"):
            for axis, method, resolution in tqdm(missing, desc="projections", unit="proj",
                                                 disable=not progress):
                ws.projection(axis, method, resolution)
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
