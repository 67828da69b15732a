"""precision="auto": the CPU probe and the choice between fp32 and bf16."""

from __future__ import annotations

import numpy as np
import pytest

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
    (True, 2, 2048, "cuda", "fp32"),  # other devices keep fp32
])
def test_auto_picks_bf16_only_for_wide_networks_on_native_bf16(
    monkeypatch, native, n_layers, n_nodes, device, expected
):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve_precision("auto", n_layers, n_nodes, device) == expected
    for explicit in ("fp32", "bf16"):  # an explicit choice is kept
        assert precision.resolve_precision(explicit, n_layers, n_nodes, device) == explicit


def test_unknown_precision_is_refused():
    with pytest.raises(AvocadoValueError, match="'fp16'.*auto, fp32, bf16"):
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
