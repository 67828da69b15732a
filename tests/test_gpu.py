"""The CUDA path, on purpose: ``pytest -m gpu`` on a machine with an NVIDIA GPU.

Skipped without CUDA (the CPU suite's machine); ``benchmarks/gpu_check.sh`` runs this module and
``benchmarks/bench_gpu.py`` in a few minutes whenever a GPU is lent. It covers training, a
continued training, prediction, saving on the GPU and loading on the CPU and back, the
precisions ``auto`` picks (bf16 / TF32), a steady-state step that never synchronizes, the memory
of loading, of a continued fit and of a genome embedding, the genome-wide phase with its jobs
spread over the GPUs, and data-parallel training over two GPUs with NCCL.

Tolerances against the CPU: the same arithmetic in other orders (cuBLAS's and MKL's blockings,
``index_add_``'s atomic additions on CUDA) differs by float32 round-off, about 1e-7 of a value
per operation; Adam turns the round-off of tiny gradients into whole steps of the learning rate
(1e-3 here), so after a few dozen steps parameters may differ by a few 1e-3 (the CPU's own
test of two orders, ``test_fast_path_matches_the_plain_port``, measures 4e-6 after 40 steps of
lr 0.01 on smaller tensors). The bounds below are what that allows, not one machine's run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avocado_core import Avocado, RegionSet, TrackStore
from avocado_core.genome_wide import fit_chromosomes
from avocado_core.network import AvocadoNetwork
from avocado_core.synthetic import synthetic_compendium
from avocado_core.training import TrackSource, Trainer

CUDA = torch.cuda.is_available()
N_GPUS = torch.cuda.device_count() if CUDA else 0
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")]

REPO = Path(__file__).resolve().parents[1]
N = 6_000
FIT = dict(n_epochs=3, epoch_size=6, seed=1, progress=False, choose_settings=False)
ARCH = dict(n_nodes=64, batch_size=1_000, learning_rate=0.001, average_activity=None)


@pytest.fixture(scope="module")
def data() -> dict:
    comp = synthetic_compendium(n_biosamples=6, n_assays=4, n_positions=N, n_groups=2,
                                observed_fraction=0.6, seed=4)
    return {k: np.asarray(v, np.float32) for k, v in comp.observed_tracks.items()}


def _model(data: dict, device: str, **kw) -> Avocado:
    return Avocado.from_preset({"preset": "small", **ARCH, **kw}, data, N, seed=0,
                               device=device)


def _same(a: Avocado, b: Avocado) -> bool:
    return all(torch.equal(x.cpu(), y.cpu()) for x, y in
               zip(a.network.state_dict().values(), b.network.state_dict().values()))


# ------------------------------------------------------------------------------ training
def test_training_on_the_gpu_follows_the_cpu(data):
    cpu, gpu = _model(data, "cpu", precision="fp32"), _model(data, "cuda", precision="fp32")
    assert _same(cpu, gpu)  # the same initialization
    cpu.fit(data, **FIT)
    gpu.fit(data, **FIT)
    assert gpu.train_precision == "fp32" and gpu.network.output.weight.is_cuda
    np.testing.assert_allclose(gpu.history["loss"], cpu.history["loss"], rtol=1e-3)
    b, a = next(iter(data))
    np.testing.assert_allclose(gpu.predict(b, a), cpu.predict(b, a), atol=5e-3)


def test_a_continued_fit_on_the_gpu_continues_the_optimizer(data):
    # Three one-epoch calls follow one three-epoch call (bit for bit on the CPU; on CUDA the
    # additions of index_add_ come in any order: round-off), and the optimizer state between
    # calls lives in host memory, so a continued fit holds one state on the device.
    one = _model(data, "cuda", precision="fp32")
    one.fit(data, **FIT)
    loop = _model(data, "cuda", precision="fp32")
    peaks = []
    for _ in range(3):
        torch.cuda.reset_peak_memory_stats()
        loop.fit(data, **dict(FIT, n_epochs=1))
        peaks.append(torch.cuda.max_memory_allocated())
        assert all(t.device.type == "cpu" for t in loop._train_state["tensors"].values())
    assert max(peaks[1:]) <= 1.05 * peaks[0]  # a continued fit: not the old state on top
    assert loop.optimizer_steps == one.optimizer_steps == 18
    np.testing.assert_allclose(loop.history["loss"], one.history["loss"], rtol=1e-4)


def test_save_on_the_gpu_load_on_the_cpu_and_back(data, tmp_path):
    gpu = _model(data, "cuda", precision="fp32")
    gpu.fit(data, **dict(FIT, n_epochs=1))
    gpu.save(tmp_path / "m", optimizer=True)
    cpu = Avocado.load(tmp_path / "m", device="cpu")
    assert cpu.device.type == "cpu" and _same(cpu, gpu)
    cpu.fit(data, **dict(FIT, n_epochs=1))  # continues the GPU's optimizer on the CPU
    assert cpu.optimizer_steps == 12
    cpu.save(tmp_path / "m2", optimizer=True)
    back = Avocado.load(tmp_path / "m2", device="cuda")
    assert back.network.output.weight.is_cuda and _same(back, cpu)
    b, a = next(iter(data))
    np.testing.assert_allclose(back.predict(b, a), cpu.predict(b, a), atol=1e-5)


def test_load_holds_one_copy_of_the_model_on_the_device(data, tmp_path):
    big = Avocado(["b0", "b1"], ["a0"], 2_000_000, n_layers=2, n_nodes=1024, device="cpu",
                  seed=0)
    big.save(tmp_path / "big")
    n_bytes = sum(t.numel() * t.element_size() for t in big.network.state_dict().values())
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    loaded = Avocado.load(tmp_path / "big", device="cuda")
    assert torch.cuda.max_memory_allocated() - base <= 1.05 * n_bytes  # (was about twice)
    assert loaded.network.genome_25bp.weight.is_cuda
    # a genome embedding goes to the host chunk by chunk (2M x 110 floats: 880 MB at once)
    torch.cuda.reset_peak_memory_stats()
    emb = loaded.genome_embedding()
    assert emb.shape == (2_000_000, 110)
    assert torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated() < 300 * 2**20


# ------------------------------------------------------------------------------ precision
def test_auto_picks_bf16_or_tf32_and_says_so(data, capsys):
    tensor_cores = torch.cuda.get_device_capability() >= (8, 0)
    small = _model(data, "cuda")
    wide = _model(data, "cuda", n_layers=2, n_nodes=1024)
    assert small.train_precision == ("tf32" if tensor_cores else "fp32")
    assert wide.train_precision == ("bf16" if tensor_cores else "fp32")
    assert wide.predict_precision == wide.train_precision
    wide.fit(data, **dict(FIT, progress=True))
    assert f"training ({wide.train_precision})" in capsys.readouterr().err
    assert wide.history["loss"][-1] < 0.7 * wide.history["loss"][0]
    # the choice saved is the user's: auto, resolved again where the model is loaded
    assert wide.config["precision"] == "auto"


def test_bf16_learns_like_fp32(data):
    runs = {p: _model(data, "cuda", precision=p, n_layers=2, n_nodes=256)
            for p in ("fp32", "bf16")}
    for model in runs.values():
        model.fit(data, **dict(FIT, n_epochs=6))
    fp32, bf16 = (np.array(runs[p].history["loss"]) for p in ("fp32", "bf16"))
    assert bf16[-1] < 0.7 * bf16[0]
    # bf16's round-off (2**-9 relative) moves the curve by a few percent, as on the CPU
    # (tests/test_training.py::test_bf16_fast_path_follows_the_fp32_loss_curve)
    assert np.abs(bf16 / fp32 - 1).mean() < 0.06
    b, a = next(iter(data))
    np.testing.assert_allclose(runs["bf16"].predict(b, a), runs["fp32"].predict(b, a),
                               atol=0.1)


# ------------------------------------------------------------------------------ no syncs
@pytest.mark.parametrize("sampling", ["sequential", "permuted"])
def test_steady_state_steps_never_synchronize(sampling):
    rng = np.random.default_rng(0)
    tracks = [rng.random(50_000, dtype=np.float32) for _ in range(6)]
    net = AvocadoNetwork(3, 2, 50_000, n_layers=2, n_nodes=256).to("cuda")
    trainer = Trainer(net, [0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1], TrackSource(tracks), 4_000,
                      seed=0, sampling=sampling, precision="bf16")
    for _ in range(30):  # (first steps: torch's own lazy set-up)
        trainer.advance()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [trainer.advance() for _ in range(25)]  # (a sequential pass wraps)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert all(loss.is_cuda for loss in losses) and torch.isfinite(torch.stack(losses)).all()


# ------------------------------------------------------------------------------ genome-wide
def test_genome_wide_jobs_spread_over_the_gpus(data, tmp_path):
    sizes = {f"chr{i}": 900 * 25 for i in range(1, 4)}
    regions = RegionSet.from_chrom_sizes(sizes)
    comp = synthetic_compendium(n_biosamples=4, n_assays=2, n_positions=regions.n_bins,
                                n_groups=2, observed_fraction=1.0, seed=2)
    store = comp.write_store(tmp_path / "genome", regions=regions, progress=False)
    model = Avocado.from_preset({"preset": "small", **ARCH}, store.experiments(), 900,
                                seed=0, device="cuda")
    model.fit({k: v[:900] for k, v in store.tracks().items()}, **FIT)
    model.save(tmp_path / "model")
    parts = fit_chromosomes(tmp_path / "model", store.path, tmp_path / "parts",
                            n_jobs=max(2, N_GPUS), device="cuda", n_epochs=1, epoch_size=2)
    assert [p.name for p in parts] == list(sizes)
    for part in parts:
        fitted = Avocado.load(part, device="cpu")
        assert np.isfinite(fitted.predict(*store.experiments()[0])).all()


@pytest.mark.skipif(N_GPUS < 2, reason="needs two GPUs")
def test_two_ranks_with_nccl_match_one_process(data, tmp_path):
    comp = synthetic_compendium(n_biosamples=6, n_assays=4, n_positions=4000, n_groups=3,
                                observed_fraction=0.5, seed=1)
    store = comp.write_store(tmp_path / "store", progress=False)
    init = Avocado.from_preset({"preset": "small", **ARCH, "batch_size": 400},
                               store.experiments(), store.n_bins, seed=3, device="cpu",
                               precision="fp32")
    init.save(tmp_path / "init")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "avocado_core", "train", str(store.path),
               str(tmp_path / "ddp"), "--distributed", "--device", "cuda", "--init",
               str(tmp_path / "init"), "--epochs", "2", "--epoch-size", "5", "--seed", "3",
               "--no-choose", "-q"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    single = Avocado.load(tmp_path / "init", device="cuda")
    single.fit(TrackStore(store.path), n_epochs=2, epoch_size=5, seed=3, progress=False,
               choose_settings=False)
    ddp = Avocado.load(tmp_path / "ddp", device="cuda")
    np.testing.assert_allclose(ddp.history["loss"], single.history["loss"], rtol=1e-4)
    for name, value in single.network.state_dict().items():
        torch.testing.assert_close(ddp.network.state_dict()[name], value, rtol=0, atol=2e-3,
                                   msg=name)
