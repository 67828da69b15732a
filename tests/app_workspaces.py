"""Workspaces for the app tests, built once per session with tiny, fast model configurations.

``build_workspace`` is idempotent, so test modules that import these fixtures share the files
(a second build only reopens them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avocado_core.workspace_build import build_workspace

#: The pilot (5 real biosamples x 5 marks): two passes over the positions with an ensemble of
#: two narrow small models, holding out the demo's Latin squares (one held out, one
#: calibrating the band and then removed from the store), and the prediction settings chosen
#: on validation tracks as by default (5 more narrow models; about 30 s of training in all).
PILOT_TEST_BUILD = dict(
    n_epochs=2,
    n_models=2,
    model_kwargs=dict(n_nodes=32, n_25bp_factors=4, n_250bp_factors=6, n_5kbp_factors=8,
                      batch_size=20_000),
    projections=(("biosamples", "pca", "all"), ("biosamples", "umap", "all"),
                 ("assays", "pca", "all"), ("genome", "pca", "all")),
    genome_points=100_000,
)
#: The pilot with a model that has learned to tell its five biosamples apart (the demo's
#: ``Avocado.small``, 12 epochs, one model: about 10 s of training), for placing a new
#: biosample; the narrow two-epoch models above place a full track of E017 nearest E017 by
#: chance. No imputation, held-out squares or projections: only the model is needed.
PLACEMENT_TEST_BUILD = dict(n_epochs=12, average_from=6, n_models=1, impute=False,
                            choose_settings=False, hold_out=False, projections=())
#: A synthetic compendium of hundreds of biosamples (planted anatomy groups).
SYNTHETIC_TEST_BUILD = dict(
    n_epochs=4,
    epoch_size=40,
    model_kwargs=dict(batch_size=4_000),
    synthetic=dict(n_biosamples=240, n_assays=8, n_positions=4_000, seed=0),
    impute=False,
    choose_settings=False,
    projections=(("biosamples", "umap", "all"), ("biosamples", "pca", "all"),
                 ("assays", "pca", "all"), ("genome", "pca", "all")),
    genome_points=4_000,
)

#: Synthetic signal over the ENCODE 2018 core layout, reduced: 40 of its 400 biosamples (the
#: assays they have), 2,000 bins, a tiny model; the same code paths as the full build.
ENCODE_LAYOUT_TEST_BUILD = dict(
    n_epochs=2,
    epoch_size=5,
    model_kwargs=dict(n_nodes=16, n_biosample_factors=4, n_assay_factors=4, n_25bp_factors=4,
                      n_250bp_factors=4, n_5kbp_factors=4, batch_size=2_000),
    synthetic=dict(n_positions=2_000, n_biosamples=40),
    projections=(("biosamples", "pca", "all"), ("assays", "pca", "all"),
                 ("genome", "pca", "all")),
    genome_points=1_000,
)


def _base(tmp_path_factory) -> Path:
    """Where the test workspaces go: a session temp dir, or AVOCADO_APP_TEST_CACHE to keep
    them between runs (the builds are idempotent, so a kept workspace is reused)."""
    kept = os.environ.get("AVOCADO_APP_TEST_CACHE")
    return Path(kept) if kept else Path(tmp_path_factory.getbasetemp()) / "app-workspaces"


def _workspace_fixture(folder: str, dataset: str, build: dict):
    """A session fixture: the workspace of ``dataset`` built with ``build`` (one of the tables
    above, which say what each holds) in ``folder``."""

    def workspace(tmp_path_factory):
        return build_workspace(_base(tmp_path_factory) / folder, dataset, progress=False,
                               **build)

    workspace.__doc__ = f"The {dataset} test workspace in {folder}/ (see the build tables)."
    return pytest.fixture(scope="session")(workspace)


pilot_workspace = _workspace_fixture("pilot", "roadmap-pilot", PILOT_TEST_BUILD)
synthetic_workspace = _workspace_fixture("synthetic", "synthetic", SYNTHETIC_TEST_BUILD)
encode_layout_workspace = _workspace_fixture("encode-layout", "encode-layout",
                                             ENCODE_LAYOUT_TEST_BUILD)
placement_workspace = _workspace_fixture("placement", "roadmap-pilot", PLACEMENT_TEST_BUILD)


def one_chromosome_bigwig(ws, biosample: str, assay: str, chrom: str, path: Path) -> Path:
    """A stored track written as a bigWig of its own scale (the transform undone) with data on
    one chromosome only: what a lab's file cut to one chromosome looks like."""
    import numpy as np

    from avocado_core.bigwig import resolve_chrom_sizes, write_bigwig

    regions = ws.store.regions
    chroms, _ = regions.bin_coordinates(np.arange(regions.n_bins))
    signal = np.sinh(np.asarray(ws.store.track(biosample, assay, "observed"), np.float32))
    write_bigwig(np.where(chroms == chrom, signal, np.nan), regions, path,
                 resolve_chrom_sizes(ws.store))
    return path
