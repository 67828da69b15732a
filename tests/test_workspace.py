"""Workspace: creation, opening, the tensor's status, windows, projections, idempotent builds."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from app_workspaces import SYNTHETIC_TEST_BUILD, pilot_workspace, synthetic_workspace  # noqa: F401
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.imputation import impute_experiments
from avocado_core.model import Avocado
from avocado_core.workspace import Workspace
from avocado_core.workspace_build import build_workspace


def test_create_then_open(tmp_path):
    Workspace.create(tmp_path / "ws", genome="hg38", annotations=None, title="My lab")
    info = json.loads((tmp_path / "ws" / "workspace.json").read_text())
    assert info["genome"] == "hg38" and info["title"] == "My lab" and info["annotations"] is None
    again = Workspace(tmp_path / "ws")
    assert again.title == "My lab" and not again.has_store and not again.has_model
    assert again.annotations is None
    with pytest.raises(AvocadoValueError, match="already exists"):
        Workspace.create(tmp_path / "ws")
    assert Workspace.create(tmp_path / "ws", exist_ok=True).title == "My lab"


def test_open_errors_name_the_problem(tmp_path):
    with pytest.raises(AvocadoValueError, match="workspace.json is missing"):
        Workspace(tmp_path)
    ws = Workspace.create(tmp_path / "empty", annotations=None)
    with pytest.raises(AvocadoValueError, match="no track store"):
        ws.store
    with pytest.raises(AvocadoValueError, match="no trained model"):
        ws.model
    with pytest.raises(AvocadoValueError, match="unknown annotation keys"):
        Workspace.create(tmp_path / "bad", annotations={"genez": "x.bed"})
    with pytest.raises(AvocadoValueError, match="unknown source"):
        build_workspace(tmp_path / "x", "encode")


def test_synthetic_workspace_tensor_and_metadata(synthetic_workspace):  # noqa: F811
    ws = synthetic_workspace
    n_b = SYNTHETIC_TEST_BUILD["synthetic"]["n_biosamples"]
    n_a = SYNTHETIC_TEST_BUILD["synthetic"]["n_assays"]
    assert len(ws.biosamples) == n_b and len(ws.assays) == n_a
    status = ws.status()
    assert status.shape == (n_b, n_a)
    assert (status == "observed").to_numpy().sum() == len(ws.store.experiments("observed"))
    assert (status == "missing").to_numpy().sum() > 0
    meta = ws.biosample_metadata()
    assert {"anatomy", "n_observed"} <= set(meta.columns)
    assert meta["n_observed"].sum() == (status == "observed").to_numpy().sum()
    assert ws.info["training"]["n_epochs"] == SYNTHETIC_TEST_BUILD["n_epochs"]
    assert ws.genome == "synthetic"
    # generated signal says so (the store records it; the app and `avocado info` show it)
    assert ws.synthetic.startswith("synthetic signal (avocado_core.synthetic, seed 0; layout: "
                                   "random layout)")
    assert set(ws.info["build_seconds"]) == {"store", "training", "projections"}


def test_window_observed_and_model_imputation(synthetic_workspace):  # noqa: F811
    ws = synthetic_workspace
    status = ws.status()
    b, a = next((b, a) for b in status.index for a in status.columns
                if status.loc[b, a] == "observed")
    obs, imp = ws.window(b, a, 100, 300)
    np.testing.assert_array_equal(obs, ws.store.fetch(b, a, (100, 300)))
    np.testing.assert_allclose(imp, ws.model.predict(b, a, 100, 300), rtol=1e-6)
    mb, ma = next((b, a) for b in status.index for a in status.columns
                  if status.loc[b, a] == "missing")
    obs, imp = ws.window(mb, ma, 0, 50)
    assert obs is None and imp.shape == (50,)
    with pytest.raises(AvocadoKeyError, match="no observed track"):
        ws.window("nobody", ma, 0, 50)
    bins = np.array([5, 17, 3999])
    np.testing.assert_array_equal(ws.signal_at(b, a, bins), ws.store.track(b, a)[bins])


def test_projections_are_cached_and_joined_with_metadata(synthetic_workspace):  # noqa: F811
    ws = synthetic_workspace
    df = ws.projection("biosamples", "umap")
    assert len(df) == len(ws.biosamples) and {"x", "y", "anatomy"} <= set(df.columns)
    genome = ws.projection("genome", "pca")
    assert {"bin", "chrom", "start", "end"} <= set(genome.columns)
    assert len(genome) == SYNTHETIC_TEST_BUILD["genome_points"]
    assert ws.has_projection("biosamples", "umap")
    assert not ws.has_projection("genome", "umap", "5kbp")
    assert ws.projection("genome", "umap", "5kbp", compute=False) is None


def test_library_imputations_show_in_the_workspace(synthetic_workspace,  # noqa: F811
                                                   tmp_path):
    shutil.copytree(synthetic_workspace.path, tmp_path / "copy")
    ws = Workspace(tmp_path / "copy")
    status = ws.status()
    pair = next((b, a) for b in status.index for a in status.columns
                if status.loc[b, a] == "missing")
    assert impute_experiments(ws.model, ws.store, [pair], progress=False) == [pair]
    assert ws.status().loc[pair] == "imputed"
    np.testing.assert_allclose(ws.store.fetch(*pair, kind="imputed"),
                               ws.model.predict(*pair), rtol=1e-6)
    assert impute_experiments(ws.model, ws.store, [pair], progress=False) == []  # already there
    # the window now reads the stored imputation, not the model
    stored = ws.store.fetch(*pair, region=(10, 20), kind="imputed")
    np.testing.assert_array_equal(ws.window(*pair, 10, 20)[1], stored)


def test_workspace_is_a_read_model():
    assert not {"train", "impute", "compute_projections"} & set(dir(Workspace))


def test_windows_read_the_store_and_predict_once(synthetic_workspace, monkeypatch):  # noqa: F811
    ws = Workspace(synthetic_workspace.path)
    status = ws.status()
    observed = [(b, a) for b in status.index for a in status.columns
                if status.loc[b, a] == "observed"][:3]
    missing = [(b, a) for b in status.index for a in status.columns
               if status.loc[b, a] == "missing"][:4]
    calls = []
    predict_many = ws.model.predict_many
    monkeypatch.setattr(ws.model, "predict",
                        lambda *a, **k: pytest.fail("predict called once per track"))
    monkeypatch.setattr(ws.model, "predict_many",
                        lambda exps, *w: calls.append(list(exps)) or predict_many(exps, *w))
    got = ws.windows(missing + observed, 200, 260)
    assert len(calls) == 1 and set(calls[0]) == set(missing + observed)
    expected = predict_many(missing + observed, 200, 260)
    for (obs, imp), exp, key in zip(got, expected, missing + observed):
        np.testing.assert_allclose(imp, exp, rtol=1e-6)
        if key in observed:
            np.testing.assert_array_equal(obs, ws.store.fetch(*key, region=(200, 260)))
        else:
            assert obs is None


def test_second_build_reuses_everything(synthetic_workspace, tmp_path_factory):  # noqa: F811
    model_files = {p: p.stat().st_mtime_ns for p in synthetic_workspace.model_path.rglob("*")}
    t0 = time.perf_counter()
    ws = build_workspace(synthetic_workspace.path, "synthetic", progress=False,
                         **SYNTHETIC_TEST_BUILD)
    assert time.perf_counter() - t0 < 10
    assert {p: p.stat().st_mtime_ns for p in ws.model_path.rglob("*")} == model_files
    assert ws.fingerprint == synthetic_workspace.fingerprint


def test_pilot_workspace(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    assert sorted(ws.biosamples) == ["E003", "E017", "E065", "E116", "E117"]
    status = ws.status()
    # Two Latin squares kept out of training: one held out (its real signal stays), one that
    # calibrated the band and was then removed from the store (imputation only).
    held = [tuple(e) for e in ws.info["hold_out"]["held_out"]]
    calibration = [tuple(e) for e in ws.info["hold_out"]["calibration"]]
    assert len(held) == len(calibration) == 5 and not set(held) & set(calibration)
    for kind, cells in (("held out", held), ("imputed", calibration)):
        assert sorted(zip(*np.nonzero((status == kind).to_numpy()))) == sorted(
            (ws.biosamples.index(b), ws.assays.index(a)) for b, a in cells)
        assert {b for b, _ in cells} == set(ws.biosamples)
        assert {a for _, a in cells} == set(ws.assays)
    assert (status == "observed").to_numpy().sum() == 15
    assert all(ws.trained_on(*e) is False for e in held + calibration)
    assert ws.trained_on("E003", "H3K4me3") is (("E003", "H3K4me3") not in held + calibration)
    members = [Avocado.load(p, device="cpu") for p in ws.member_paths]
    assert len(members) == 2 and all(len(m.trained_on) == 15 for m in members)
    assert not set(members[0].trained_on) & set(held + calibration)
    assert len(ws.store.experiments("imputed")) == len(ws.store.experiments("spread")) == 25
    assert [list(e) for e in calibration] == ws.info["band"]["calibration"]
    band = ws.band(*held[0], 1000, 1400)
    assert band is not None and band[2] and band[0].shape == (400,)
    widths = ws.band_widths()
    assert widths.shape == (5, 5) and np.isfinite(widths.to_numpy()).all()
    assert ws.store.n_bins == 1_126_469
    assert ws.annotations is not None
    assert ws.synthetic is None  # real measured tracks
    classes = ws.bin_classes
    assert classes.shape == (1_126_469,) and {"promoter", "other"} <= set(classes)
    genome = ws.projection("genome", "pca")
    assert len(genome) == 100_000 and "class" in genome.columns
    # the stratified sample over-represents the rare promoter class
    assert (genome["class"] == "promoter").mean() > (classes == "promoter").mean()
    bios = ws.projection("biosamples", "pca")
    assert "anatomy" in bios.columns
