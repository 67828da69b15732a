"""Data-parallel training: 2 CPU processes (gloo) give the parameters of 1 process.

The two ranks are forked by ``torch.multiprocessing`` with the environment ``torchrun`` would
set (forking skips re-importing torch, which keeps the module fast); they run the command line
torchrun launches (``avocado train --distributed``) and the library's ``data_parallel``. They ask
for gloo on the CPU: left to choose, a machine with CUDA would pick NCCL and a GPU per rank
(``tests/test_gpu.py`` runs that, in ranks started by torchrun).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from avocado_core import Avocado, TrackStore
from avocado_core.cli import main
from avocado_core.distributed import (
    DistributedTrainer,
    data_parallel,
    init_distributed,
    shard_bounds,
)
from avocado_core.errors import AvocadoValueError
from avocado_core.synthetic import synthetic_compendium
from cpu_cli import on_cpu

EPOCHS, EPOCH_SIZE, SEED = 2, 5, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    root_p = Path(root)
    ctx = init_distributed("gloo", "cpu")
    store = TrackStore(root_p / "store")
    # 1) the library: random sampling (non-contiguous rows) and the frozen-network phase
    model = Avocado.load(root_p / "init", device=ctx.device)
    with data_parallel():
        model.fit(store, n_epochs=EPOCHS, epoch_size=EPOCH_SIZE, sampling="random", seed=SEED,
                  progress=False, choose_settings=False)
        part = model.fit_positions({k: v[:1000] for k, v in store.tracks().items()}, 1000,
                                   n_epochs=1, epoch_size=4, seed=SEED, progress=False)
    if ctx.is_main:
        model.save(root_p / "ddp-random")
        part.save(root_p / "ddp-positions")
    # 3) one-epoch calls continue the data-parallel optimizer as one call does
    looped = Avocado.load(root_p / "init", device=ctx.device)
    with data_parallel():
        for _ in range(EPOCHS):
            looped.fit(store, n_epochs=1, epoch_size=EPOCH_SIZE, sampling="random", seed=SEED,
                       progress=False, choose_settings=False)
    if ctx.is_main:
        looped.save(root_p / "ddp-loop")
    # 4) average activity as an input of the network, data-parallel
    aware = Avocado.load(root_p / "init-aa", device=ctx.device)
    with data_parallel():
        aware.fit(store, n_epochs=EPOCHS, epoch_size=EPOCH_SIZE, sampling="random", seed=SEED,
                  progress=False, choose_settings=False)
    if ctx.is_main:
        aware.save(root_p / "ddp-aa")
    # 2) the command line torchrun runs (it destroys the process group at the end)
    try:
        main(on_cpu(["train", str(root_p / "store"), str(root_p / "ddp-cli"), "--distributed",
                     "--init", str(root_p / "init"), "--epochs", str(EPOCHS), "--epoch-size",
                     str(EPOCH_SIZE), "--seed", str(SEED), "-q"]), prog_name="avocado")
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    comp = synthetic_compendium(n_biosamples=6, n_assays=4, n_positions=4000, n_groups=3,
                                observed_fraction=0.5, seed=1)
    store = comp.write_store(root / "store", progress=False)
    exps = store.experiments()
    model = Avocado.small(list(dict.fromkeys(b for b, _ in exps)),
                          list(dict.fromkeys(a for _, a in exps)), store.n_bins,
                          n_nodes=16, batch_size=401, seed=SEED, device="cpu")
    model.save(root / "init")
    Avocado.small(list(dict.fromkeys(b for b, _ in exps)), list(dict.fromkeys(a for _, a in exps)),
                  store.n_bins, n_nodes=16, batch_size=401, seed=SEED, device="cpu",
                  average_activity="input").save(root / "init-aa")
    # Fork before this process runs any sizeable torch work (OpenMP pools do not survive fork).
    mp.start_processes(_worker, args=(2, _free_port(), str(root)), nprocs=2, join=True,
                       start_method="fork")
    return root


def _assert_same(single: Avocado, ddp: Avocado, init: Avocado) -> None:
    assert single.history["loss"] == pytest.approx(ddp.history["loss"], rel=1e-5)
    a, b, start = single.network.state_dict(), ddp.network.state_dict(), init.network.state_dict()
    for name in a:
        if start[name].shape == a[name].shape:
            moved = (a[name] - start[name]).abs().max().item()
        else:  # new genome tables (fit_positions): 4 Adam steps of lr 1e-3
            moved = 4e-3
        diff = (a[name] - b[name]).abs().max().item()
        # equal within float tolerance, and far closer than what training moved them
        assert diff <= 1e-6 + 1e-4 * moved, (name, diff, moved)


def test_cli_two_processes_match_one(runs: Path) -> None:
    store = TrackStore(runs / "store")
    single = Avocado.load(runs / "init", device="cpu")
    single.fit(store, n_epochs=EPOCHS, epoch_size=EPOCH_SIZE, seed=SEED, progress=False,
               choose_settings=False)
    ddp = Avocado.load(runs / "ddp-cli", device="cpu")
    assert len(ddp.history["loss"]) == EPOCHS
    _assert_same(single, ddp, Avocado.load(runs / "init", device="cpu"))


def test_random_sampling_and_fit_positions_match_one(runs: Path) -> None:
    store = TrackStore(runs / "store")
    single = Avocado.load(runs / "init", device="cpu")
    single.fit(store, n_epochs=EPOCHS, epoch_size=EPOCH_SIZE, sampling="random", seed=SEED,
               progress=False, choose_settings=False)
    init = Avocado.load(runs / "init", device="cpu")
    ddp = Avocado.load(runs / "ddp-random", device="cpu")
    _assert_same(single, ddp, init)
    part = single.fit_positions({k: v[:1000] for k, v in store.tracks().items()}, 1000,
                                n_epochs=1, epoch_size=4, seed=SEED, progress=False)
    ddp_part = Avocado.load(runs / "ddp-positions", device="cpu")
    _assert_same(part, ddp_part, single)
    # the frozen parts stayed frozen in the data-parallel run
    for name in ("hidden.0.weight", "biosample_embedding.weight"):
        assert torch.equal(ddp_part.network.state_dict()[name], ddp.network.state_dict()[name])


def test_one_epoch_calls_match_one_call(runs: Path) -> None:
    init = Avocado.load(runs / "init", device="cpu")
    one = Avocado.load(runs / "ddp-random", device="cpu")
    looped = Avocado.load(runs / "ddp-loop", device="cpu")
    assert len(looped.history["loss"]) == EPOCHS
    _assert_same(one, looped, init)


def test_shard_bounds_cover_the_batch() -> None:
    for n, world in ((10, 3), (401, 2), (7, 7)):
        bounds = [shard_bounds(n, r, world) for r in range(world)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        sizes = [hi - lo for lo, hi in bounds]
        assert max(sizes) - min(sizes) <= 1


def test_clear_errors_outside_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(AvocadoValueError, match="torchrun"):
        init_distributed()
    with pytest.raises(AvocadoValueError, match="process group"):
        with data_parallel():
            pass
    with pytest.raises(AvocadoValueError, match="process group"):
        DistributedTrainer(None, [], [], None, 1)


def test_distributed_is_an_option_of_avocado_train(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    comp = synthetic_compendium(n_biosamples=4, n_assays=2, n_positions=500, n_groups=2, seed=0)
    comp.write_store(tmp_path / "store", progress=False)
    result = CliRunner().invoke(main, on_cpu(["train", str(tmp_path / "store"),
                                              str(tmp_path / "m"), "--distributed", "-q"]))
    assert result.exit_code == 1 and "torchrun" in result.output
    assert "-m avocado_core train STORE MODEL --distributed" in result.output
    result = CliRunner().invoke(main, on_cpu(["train", str(tmp_path / "store"),
                                              str(tmp_path / "m"), "--backend", "gloo"]))
    assert result.exit_code == 2 and "--backend is for --distributed" in result.output
    # a device index would put every rank on that one device: a one-line error, inside
    # torchrun or not
    result = CliRunner().invoke(main, ["train", str(tmp_path / "store"), str(tmp_path / "m"),
                                       "--distributed", "--device", "cuda:0", "-q"])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: device 'cuda:0' with distributed training"), lines
    monkeypatch.setenv("LOCAL_RANK", "1")
    for var, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "1")):
        monkeypatch.setenv(var, value)
    with pytest.raises(AvocadoValueError, match="pass 'cuda' and each rank takes its own"):
        init_distributed(device="cuda:1")


def test_average_activity_input_matches_one(runs: Path) -> None:
    single = Avocado.load(runs / "init-aa", device="cpu")
    single.fit(TrackStore(runs / "store"), n_epochs=EPOCHS, epoch_size=EPOCH_SIZE,
               sampling="random", seed=SEED, progress=False, choose_settings=False)
    ddp = Avocado.load(runs / "ddp-aa", device="cpu")
    _assert_same(single, ddp, Avocado.load(runs / "init-aa", device="cpu"))
    np.testing.assert_array_equal(ddp.activity.mean, single.activity.mean)
