"""precision="auto": the CPU probe and the choice between fp32 and bf16."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from avocado_core import Avocado, precision
from avocado_core.errors import AvocadoValueError
from avocado_core.training import Trainer

# /proc/cpuinfo "flags" lines, shortened, of the CPUs the choice was measured on
SAPPHIRE_RAPIDS = "fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8"
ZEN4 = "fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 avx512_vpopcntdq"
SKYLAKE = "fpu sse2 avx2 avx512f avx512cd avx512bw avx512vl"


@pytest.mark.parametrize("flags, native", [(SAPPHIRE_RAPIDS, True), (ZEN4, True),
                                           (SKYLAKE, False)])
def test_cpu_probe_reads_the_bf16_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\n"
                       f"processor\t: 1\nflags\t\t: {flags}\n")
    assert precision.cpu_has_native_bf16(str(cpuinfo)) is native


def test_cpu_probe_without_cpuinfo_says_no(tmp_path):
    assert precision.cpu_has_native_bf16(str(tmp_path / "missing")) is False


@pytest.mark.parametrize("native, n_layers, n_nodes, device, expected", [
    (True, 2, 2048, "cpu", "bf16"),   # the paper configuration on AMX / AVX512-BF16
    (True, 3, 1024, "cpu", "bf16"),
    (True, 1, 2048, "cpu", "fp32"),   # no hidden-to-hidden product
    (True, 2, 512, "cpu", "fp32"),    # too narrow
    (True, 1, 128, "cpu", "fp32"),    # the small configuration
    (False, 2, 2048, "cpu", "fp32"),  # no native bf16
    (True, 2, 2048, "mps", "fp32"),   # other devices keep fp32
    (True, 2, 2048, "cuda", "bf16"),  # a GPU with bf16 tensor cores (A100, H100, ...)
    (True, 1, 128, "cuda", "tf32"),   # ... TF32 for narrow networks
    (False, 2, 2048, "cuda:1", "fp32"),  # an older GPU
])
def test_auto_picks_bf16_only_for_wide_networks_on_native_bf16(
    monkeypatch, native, n_layers, n_nodes, device, expected
):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(precision, "cuda_has_bf16", lambda device: native)
    assert precision.resolve_precision("auto", n_layers, n_nodes, device) == expected
    for explicit in ("fp32", "bf16"):  # an explicit choice is kept
        assert precision.resolve_precision(explicit, n_layers, n_nodes, device) == explicit
    tf32 = "tf32" if device.startswith("cuda") else "fp32"  # (a format of CUDA tensor cores)
    assert precision.resolve_precision("tf32", n_layers, n_nodes, device) == tf32


@pytest.mark.parametrize("resolved, tf32, reduced", [
    ("fp32", "ieee", True), ("tf32", "tf32", True), ("bf16", "ieee", False)])
def test_matmul_flags_follow_the_precision_and_are_restored(resolved, tf32, reduced):
    # (the flags are only flags without a GPU: they can be read and set on any machine)
    import torch

    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision, matmul.allow_bf16_reduced_precision_reduction
    with precision.matmul_precision(resolved, "cuda"):
        assert matmul.fp32_precision == tf32
        # bf16 accumulates in fp32 on CUDA too (cuBLAS's default reduces in bf16)
        assert matmul.allow_bf16_reduced_precision_reduction is (
            reduced and before[1])
    assert (matmul.fp32_precision, matmul.allow_bf16_reduced_precision_reduction) == before
    with precision.matmul_precision(resolved, "cpu"):  # nothing to do off CUDA
        assert (matmul.fp32_precision,
                matmul.allow_bf16_reduced_precision_reduction) == before


def test_unknown_precision_is_refused():
    with pytest.raises(AvocadoValueError, match="'fp16'.*auto, fp32, tf32, bf16"):
        precision.resolve_precision("fp16", 2, 2048, "cpu")


@pytest.mark.parametrize("native", [True, False])
def test_model_trains_in_the_resolved_precision_and_says_so(monkeypatch, capsys, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["precision"])
        return Trainer(*args, **kwargs)

    model = Avocado(["b0", "b1"], ["a0", "a1"], 400, n_layers=2, n_nodes=1024, batch_size=100,
                    n_assay_factors=8, device="cpu", seed=0)
    assert model.precision == "auto" and model.config["precision"] == "auto"
    expected = "bf16" if native else "fp32"
    assert model.train_precision == expected
    rng = np.random.default_rng(0)
    data = {(b, "a0"): rng.random(400, dtype=np.float32) for b in ("b0", "b1")}
    model.fit(data, n_epochs=1, epoch_size=2, progress=True, trainer=spy)
    assert seen == [expected]
    assert f"training ({expected})" in capsys.readouterr().err  # the progress line


def test_the_saved_precision_is_the_users_choice(tmp_path):
    # A precision chosen for one machine (bf16 for a GPU) is saved as chosen, and every
    # command that trains can change it: `auto` given again is stored as `auto` (so the next
    # machine resolves it for itself), and fit-biosamples / fit-genome take --precision too.
    from avocado_core.cli import main
    from avocado_core.synthetic import synthetic_compendium
    from cpu_cli import on_cpu

    comp = synthetic_compendium(n_biosamples=3, n_assays=2, n_positions=600, n_groups=1,
                                observed_fraction=1.0, seed=0)
    full = comp.write_store(tmp_path / "full", progress=False)
    base = comp.write_store(tmp_path / "base", progress=False)
    new = full.experiments()[-1][0]
    for b, a in base.experiments():
        if b == new:
            base.remove_track(b, a, kind="observed")
    tiny = ["--epochs", "1", "-q"]
    arch = ["--n-nodes", "8", "--batch-size", "200"]

    def saved(*args: object, model: Path) -> str:
        result = CliRunner().invoke(main, on_cpu([str(a) for a in args]))
        assert result.exit_code == 0, result.output
        return json.loads((model / "config.json").read_text())["config"]["precision"]

    m = tmp_path / "m"
    assert saved("train", base.path, m, *arch, *tiny, "--precision", "bf16", model=m) == "bf16"
    kept = tmp_path / "kept"
    assert saved("train", base.path, kept, *tiny, "--init", m, model=kept) == "bf16"
    auto = tmp_path / "auto"
    assert saved("train", base.path, auto, *tiny, "--init", m, "--precision", "auto",
                 model=auto) == "auto"
    grown = tmp_path / "grown"
    assert saved("fit-biosamples", full.path, m, *tiny, "--precision", "fp32", "-o", grown,
                 model=grown) == "fp32"
    part = tmp_path / "parts" / base.regions.chroms[0]
    assert saved("fit-genome", m, base.path, tmp_path / "parts", *tiny, "--precision", "fp32",
                 model=part) == "fp32"
    # the model the part was fitted from keeps its own
    assert json.loads((m / "config.json").read_text())["config"]["precision"] == "bf16"


def test_predictions_use_the_training_precision_on_cuda_only(monkeypatch, capsys, tmp_path):
    # On CUDA a model predicts in what its training resolves to (bf16 / TF32 products on
    # tensor cores); the CPU predicts in fp32 whatever the training's (its compiled kernel).
    # The imputation's progress bar names it.
    from avocado_core.imputation import impute_experiments
    from avocado_core.synthetic import synthetic_compendium

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(precision, "cuda_has_bf16", lambda device: True)
    wide = Avocado(["b0"], ["a0"], 50, n_layers=2, n_nodes=1024, n_assay_factors=4,
                   device="cpu")
    narrow = Avocado(["b0"], ["a0"], 50, n_layers=1, n_nodes=16, device="cpu")
    assert (wide.train_precision, wide.predict_precision) == ("bf16", "fp32")
    for model, expected in ((wide, "bf16"), (narrow, "tf32")):
        monkeypatch.setattr(model, "device", torch.device("cuda"))  # (what it would say there)
        assert model.predict_precision == expected
    comp = synthetic_compendium(n_biosamples=2, n_assays=2, n_positions=300, n_groups=1,
                                observed_fraction=1.0, seed=0)
    store = comp.write_store(tmp_path / "store", progress=False)
    model = Avocado.from_preset({"preset": "small", "n_nodes": 8, "average_activity": None},
                                store.experiments(), 300, device="cpu", seed=0)
    impute_experiments(model, store, store.experiments(), into_store=False,
                       bigwig_dir=tmp_path / "bw", progress=True)
    assert "imputing (fp32)" in capsys.readouterr().err
