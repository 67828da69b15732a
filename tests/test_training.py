"""Samplers, track sources, the trainer's freezing, atomic tensor directories, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avocado_core import model_format, training
from avocado_core.errors import AvocadoValueError
from avocado_core.network import AvocadoNetwork
from avocado_core.training import Checkpointer, Sampler, TrackSource, Trainer


def test_sequential_sampler_scans_and_wraps():
    s = Sampler(25, 3, 10, "sequential", seed=0)
    batches = [s.next_batch() for _ in range(3)]
    assert batches[0][1].tolist() == list(range(10))
    assert batches[1][1].tolist() == list(range(10, 20))
    assert batches[2][1].tolist() == [20, 21, 22, 23, 24, 0, 1, 2, 3, 4]
    exps = np.concatenate([b[0] for b in batches])
    assert set(exps.tolist()) <= {0, 1, 2} and len(set(exps.tolist())) == 3


def test_permuted_sampler_covers_each_pass_once():
    s = Sampler(100, 2, 25, "permuted", seed=0)
    first = np.concatenate([s.next_batch()[1] for _ in range(4)])
    second = np.concatenate([s.next_batch()[1] for _ in range(4)])
    assert sorted(first.tolist()) == list(range(100))
    assert sorted(second.tolist()) == list(range(100))
    assert first.tolist() != list(range(100)) and first.tolist() != second.tolist()


def test_random_sampler_draws_independent_positions():
    # Truly random positions: draws with replacement, so a pass repeats positions and misses
    # others (the original's "random" silently ran the permuted scan).
    s = Sampler(1000, 2, 1000, "random", seed=0)
    pos = s.next_batch()[1]
    n_unique = len(np.unique(pos))
    assert 550 < n_unique < 720  # expected 1000 * (1 - 1/e) = 632
    many = np.concatenate([s.next_batch()[1] for _ in range(50)])
    counts = np.bincount(many // 100, minlength=10)
    assert counts.min() > 4500 and counts.max() < 5500  # uniform over the range


@pytest.mark.parametrize("sampling", ["sequential", "permuted", "random"])
def test_sampler_state_round_trip(sampling):
    s = Sampler(57, 4, 10, sampling, seed=3)
    for _ in range(7):
        s.next_batch()
    state = s.state_dict()
    expected = [s.next_batch() for _ in range(9)]
    t = Sampler(57, 4, 10, sampling, seed=99)
    t.load_state_dict(state)
    for (e1, p1), (e2, p2) in zip(expected, [t.next_batch() for _ in range(9)]):
        assert np.array_equal(e1, e2) and np.array_equal(p1, p2)


@pytest.mark.parametrize("sampling", ["sequential", "permuted", "random"])
def test_a_sampler_over_a_subset_draws_only_its_positions(sampling):
    keep = np.zeros(1000, dtype=bool)
    keep[[3, 17, 18, 400, 401, 402, 999]] = True
    s = Sampler(1000, 2, 5, sampling, seed=0, positions=keep)
    assert s.n_positions == 7 and s.positions.tolist() == [3, 17, 18, 400, 401, 402, 999]
    drawn = np.concatenate([s.next_batch()[1] for _ in range(14)])  # 10 passes
    assert set(drawn.tolist()) == set(s.positions.tolist())
    if sampling != "random":  # a scan: each pass over the subset draws each position once
        assert np.array_equal(np.bincount(drawn, minlength=1000)[keep], [10] * 7)
    same = Sampler(1000, 2, 5, sampling, seed=0, positions=np.flatnonzero(keep)[::-1])
    assert np.array_equal(same.next_batch()[1], Sampler(1000, 2, 5, sampling, seed=0,
                                                        positions=keep).next_batch()[1])


@pytest.mark.parametrize("positions, message", [
    (np.ones(9, dtype=bool), r"one value per position \(10\), got shape \(9,\)"),
    ([2, 10], "position 10 is out of range"),
    ([-1, 2], "position -1 is out of range"),
    ([0.5, 2.0], "bin indices .* or a boolean mask, got an array of float64"),
    (np.zeros(10, dtype=bool), "the position subset is empty"),
])
def test_position_subsets_are_checked(positions, message):
    with pytest.raises(AvocadoValueError, match=message):
        Sampler(10, 1, 2, positions=positions)


def test_a_subset_of_positions_is_an_option_of_fit(tmp_path):
    options = training.FitOptions.of(positions=[5, 1, 5, 3])
    assert options.n_trained_positions(10) == 3
    assert training.FitOptions().n_trained_positions(10) == 10
    with pytest.raises(AvocadoValueError, match="positions and checkpoint_dir cannot be combined"):
        training.FitOptions.of(positions=[1], checkpoint_dir=tmp_path)


def test_sampler_rejects_unknown_sampling():
    with pytest.raises(AvocadoValueError, match="'shuffle'.*sequential, permuted, random"):
        Sampler(10, 1, 2, "shuffle")


def test_track_source_dense_and_lazy_agree():
    rng = np.random.default_rng(0)
    tracks = [rng.normal(size=500).astype(np.float32) for _ in range(4)]
    dense = TrackSource(tracks)
    lazy = TrackSource(tracks, max_dense_bytes=0)
    assert dense.dense is not None and lazy.dense is None
    for positions in [np.arange(100, 300), rng.integers(0, 500, 200)]:
        exps = rng.integers(0, 4, len(positions))
        want = np.array([tracks[e][p] for e, p in zip(exps, positions)])
        assert np.array_equal(dense.values(exps, positions), want)
        assert np.array_equal(lazy.values(exps, positions), want)
    with pytest.raises(AvocadoValueError, match="empty"):
        TrackSource([])


def _tiny_trainer(seed: int = 0, **kwargs) -> Trainer:
    rng = np.random.default_rng(seed)
    net = AvocadoNetwork(3, 2, 300, n_layers=1, n_nodes=8, n_biosample_factors=3,
                         n_assay_factors=3, n_25bp_factors=2, n_250bp_factors=2,
                         n_5kbp_factors=2, generator=torch.Generator().manual_seed(seed))
    tracks = [rng.normal(size=300).astype(np.float32) for _ in range(3)]
    return Trainer(net, [0, 1, 1], [0, 0, 1], TrackSource(tracks), 50, learning_rate=0.01,
                   seed=seed, **kwargs)


def test_trainer_freezes_groups_and_rows():
    tr = _tiny_trainer(train_groups=("biosample",), trainable_rows={"biosample": np.array([1])})
    before = {k: v.detach().clone() for k, v in tr.network.state_dict().items()}
    for _ in range(5):
        tr.step()
    after = tr.network.state_dict()
    for k in before:
        if k == "biosample_embedding.weight":
            assert torch.equal(before[k][[0, 2]], after[k][[0, 2]])
            assert not torch.equal(before[k][1], after[k][1])
        else:
            assert torch.equal(before[k], after[k]), k


def test_trainer_rejects_unknown_group():
    with pytest.raises(AvocadoValueError, match="genome"):
        _tiny_trainer(train_groups=("genome",))


def test_tensor_dir_is_atomic(tmp_path, monkeypatch):
    model_format.write_tensors_dir(tmp_path, {"a": 1}, {"w": torch.ones(3)}, "meta.json")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model_format, "_serialize", crash)
    with pytest.raises(OSError):
        model_format.write_tensors_dir(tmp_path, {"a": 2}, {"w": torch.zeros(3)}, "meta.json")
    meta, tensors = model_format.read_tensors_dir(tmp_path, "meta.json")
    assert meta["a"] == 1 and torch.equal(tensors["w"], torch.ones(3))
    assert len(list(tmp_path.iterdir())) == 2  # no temporary files left behind


def test_checkpointer_refuses_another_run(tmp_path):
    tr = _tiny_trainer()
    tr.step()
    Checkpointer(tmp_path, {"seed": 1, "sampling": "sequential"}).save(1, {"loss": [1.0]}, tr)
    with pytest.raises(AvocadoValueError, match="differs in: seed"):
        Checkpointer(tmp_path, {"seed": 2, "sampling": "sequential"}).load(_tiny_trainer())


def test_checkpoint_restores_the_exact_continuation(tmp_path):
    a = _tiny_trainer()
    for _ in range(3):
        a.step()
    Checkpointer(tmp_path, {}).save(1, {"loss": []}, a)
    expected = [a.step() for _ in range(4)]
    b = _tiny_trainer(seed=0)
    Checkpointer(tmp_path, {}).load(b)
    assert [b.step() for _ in range(4)] == expected


# ------------------------------------------------------------------------ fast path == dense Adam
@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("kind", ["indices", "slices"])
def test_catch_up_adam_equals_torch_adam_with_skipped_rows(kind, kernel):
    # Rows are touched irregularly (gaps of 1 to ~60 steps), gradients from 1e-3 down to the
    # size of epsilon, where epsilon matters. Slices (a sequential batch's rows) that hold a
    # few runs of equally stale rows take the scalar per-run path, the others the general one.
    for scale in (1e-3, 1e-8):
        g = torch.Generator().manual_seed(1)
        start = torch.randn(40, 3, generator=g) * 0.05
        ref = start.clone().requires_grad_(True)
        adam = torch.optim.Adam([ref], lr=1e-3, eps=1e-7)
        table = start.clone()
        fast = training.CatchUpAdam(table, 1e-3, (0.9, 0.999), 1e-7, kernel=kernel)
        assert fast.kernel == kernel
        for t in range(1, 200):
            if kind == "slices":
                lo = int(torch.randint(0, 36, (1,), generator=g))
                rows = slice(lo, lo + int(torch.randint(1, 5, (1,), generator=g)))
            else:
                rows = torch.unique(torch.randint(0, 40, (4,), generator=g)).numpy()
                if t % 7 == 0:
                    rows = np.arange(0, 40, 3)
            n_rows = len(range(40)[rows]) if kind == "slices" else len(rows)
            grad = torch.randn(n_rows, 3, generator=g) * scale
            full = torch.zeros(40, 3)
            full[rows] = grad
            ref.grad = full
            adam.step()
            fast.catch_up(rows, t - 1)
            fast.step(rows, grad, t)
        fast.finalize(199)
        moved = float((ref.detach() - start).abs().max())
        assert moved > 1e-3
        # float32 round-off level: measured 7e-8 .. 1.2e-7
        torch.testing.assert_close(table, ref.detach(), rtol=0, atol=5e-7)
        torch.testing.assert_close(fast.m, adam.state[ref]["exp_avg"], rtol=1e-5, atol=1e-12)
        torch.testing.assert_close(fast.v, adam.state[ref]["exp_avg_sq"], rtol=1e-5, atol=1e-18)


def _trainer_pair(tracks, n_layers, n_nodes, options, **common):
    """Two trainers of identically initialized networks, one per dict of ``options``."""
    nets = [
        AvocadoNetwork(3, 3, 1003, n_layers=n_layers, n_nodes=n_nodes, n_biosample_factors=4,
                       n_assay_factors=5, n_25bp_factors=3, n_250bp_factors=4,
                       n_5kbp_factors=5, generator=torch.Generator().manual_seed(0))
        for _ in options
    ]
    trainers = [
        Trainer(net, [0, 1, 2, 0, 1], [0, 0, 1, 2, 2], TrackSource(tracks), 137,
                learning_rate=0.01, seed=1, **common, **kw)
        for net, kw in zip(nets, options)
    ]
    return nets, trainers


@pytest.mark.parametrize("sampling", ["sequential", "permuted", "random"])
@pytest.mark.parametrize("n_layers", [0, 1, 2])
def test_fast_path_matches_the_plain_port(sampling, n_layers):
    # 1003 positions, batches of 137: sequential batches wrap, permuted ones span two passes,
    # random ones repeat positions; every row is skipped for several steps between touches.
    # The two paths sum the same terms in other orders. Adam moves a parameter whose gradient
    # is near zero by up to lr whichever way round-off tips it (lr / eps times the round-off:
    # 1e5 with eps 1e-7), so with the default eps the paths part as far as the CPU's vector
    # unit decides (2 layers, sequential: 1.4% apart in loss without ATen's vector kernels).
    # With eps = lr a step moves at most lr / eps = 1 per unit of gradient: round-off stays
    # round-off (measured: 1 ulp of the parameters, 4 of the loss, with or without vector
    # kernels). Each path's loss is a float32 sum of 137 squared errors, within 136 roundings
    # of the exact sum: the two differ by at most twice that; the parameters by far less than
    # the 40 * lr Adam moves them.
    rng = np.random.default_rng(0)
    tracks = [rng.normal(size=1003).astype(np.float32) for _ in range(5)]
    nets, trainers = _trainer_pair(tracks, n_layers, 16,
                                   [{"optimizer": "dense"}, {"optimizer": "catchup"}],
                                   sampling=sampling, eps=0.01)
    losses = [[tr.step() for _ in range(40)] for tr in trainers]
    trainers[1].finalize()
    np.testing.assert_allclose(losses[1], losses[0], rtol=2 * 136 * 2.0**-24)
    for (name, p), q in zip(nets[0].named_parameters(), nets[1].parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=2e-5, msg=name)


@pytest.mark.parametrize("sampling", ["sequential", "permuted", "random"])
@pytest.mark.parametrize("n_nodes", [16, 37])
def test_compiled_kernel_matches_torch_operations(sampling, n_nodes):
    # The one-hidden-layer kernel against the same step in torch operations: batches that
    # wrap, span two passes or repeat positions, a width that is not a multiple of the
    # vector length, 137 samples (a partial last tile).
    rng = np.random.default_rng(0)
    tracks = [rng.normal(size=1003).astype(np.float32) for _ in range(5)]
    nets, trainers = _trainer_pair(tracks, 1, n_nodes, [{"kernel": True}, {"kernel": False}],
                                   sampling=sampling)
    assert trainers[0]._fused and not trainers[1]._fused
    assert all(adam.kernel for adam in trainers[0].row_adams.values())
    assert not any(adam.kernel for adam in trainers[1].row_adams.values())
    losses = [[tr.step() for _ in range(40)] for tr in trainers]
    for tr in trainers:
        tr.finalize()
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6, atol=1e-7)
    for (name, p), q in zip(nets[1].named_parameters(), nets[0].parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=2e-5, msg=name)
    # the kernel only takes networks it computes exactly
    _, others = _trainer_pair(tracks, 2, 8, [{"kernel": True}, {"precision": "bf16"}])
    assert not any(tr._fused for tr in others)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_bf16_fast_path_follows_the_fp32_loss_curve(n_layers):
    # bf16 activations and gradients in the MLP: the loss curve stays close to the fp32 plain
    # port's. The parameters themselves drift apart, as Adam turns round-off of tiny
    # gradients into full steps, so after a few dozen steps the two curves differ by chance
    # (with 2 hidden layers, over 8 data seeds, the largest step-wise difference in 40 steps
    # was 5-40% before the in-place backward and 9-30% after, in both directions): the
    # first 20 steps must agree closely (measured at most 1.4%), the whole curve on average
    # (measured 0.2-4.8% with either backward).
    rng = np.random.default_rng(0)
    wave = np.sin(np.arange(1003) / 15.0)
    tracks = [(1 + 0.4 * j) * wave + 0.1 * rng.normal(size=1003) for j in range(5)]
    tracks = [t.astype(np.float32) for t in tracks]
    _, trainers = _trainer_pair(tracks, n_layers, 64,
                                [{"optimizer": "dense"}, {"precision": "bf16"}])
    losses = np.array([[tr.step() for _ in range(40)] for tr in trainers])
    assert (losses[:, -5:].mean(1) < 0.5 * losses[:, :5].mean(1)).all()  # both learn
    np.testing.assert_allclose(losses[1, :20], losses[0, :20], rtol=0.03)
    assert np.abs(losses[1] / losses[0] - 1).mean() < 0.06


@pytest.mark.parametrize("precision, tol", [("fp32", 1e-6), ("bf16", 0.12)])
def test_in_place_backward_gives_the_gradients(monkeypatch, precision, tol):
    # Three hidden layers, the backward through each hidden layer in chunks of 50 rows of the
    # batch of 137 (50 + 50 + 37) written over the activations: the same gradients as
    # autograd through the same network in fp32 (bf16: relative errors of 0.4-9.1%, the same
    # as the out-of-place backward it replaced: the bf16 rounding of the activations dominates).
    from avocado_core.training import passes

    monkeypatch.setattr(passes, "BACKWARD_ROWS", 50)
    rng = np.random.default_rng(0)
    tracks = [rng.normal(size=1003).astype(np.float32) for _ in range(5)]
    (net,), (tr,) = _trainer_pair(tracks, 3, 24, [{"precision": precision}])
    gen = torch.Generator().manual_seed(0)
    pre, y = torch.randn(137, 24, generator=gen), torch.randn(137, generator=gen)
    head = [p for layer in [*net.hidden[1:], net.output] for p in (layer.weight, layer.bias)]
    for p in head:
        p.requires_grad_(True)
    x = pre.clone().requires_grad_(True)
    h = x.relu()
    for layer in net.hidden[1:]:
        h = layer(h).relu()
    torch.sum((net.output(h)[:, 0] - y) ** 2).backward()
    with torch.no_grad():
        pred, acts = tr._mlp_forward(pre.clone())
        g_pre, grads, scale = tr._mlp_backward(2 * (pred - y), acts, True)
    g_pre = g_pre.float() * (1 if scale is None else scale)
    for name, got, want in [("pre", g_pre, x.grad), *zip(range(6), grads,
                                                          [p.grad for p in head])]:
        err = float((got - want).norm() / want.norm())
        assert err < tol, (name, err)


def test_grouped_buffer_adds_and_sums_whole_groups():
    # Positions 7 .. 30 lie 7 rows into a buffer of whole groups of 10 (rows 0 .. 3 of q):
    # q added to the groups reaches each position's row; the sums of the groups, padding
    # zeroed, are each row's sum; the views are kept (the same objects next time).
    rng = np.random.default_rng(0)
    tracks = [rng.normal(size=1003).astype(np.float32) for _ in range(5)]
    (_,), (tr,) = _trainer_pair(tracks, 1, 8, [{"kernel": False}])
    rows, groups, pads, rows_t = tr._grouped("test", 24, 2, torch.float32, 7, 10)
    assert groups.shape == (4, 10, 2) and [len(pad) for pad in pads] == [7, 9]
    assert rows_t.shape == (2, 24) and rows_t.data_ptr() == rows.data_ptr()
    values = torch.arange(24.0)[:, None].repeat(1, 2)
    rows.copy_(values)
    for pad in pads:
        pad.zero_()
    assert groups.sum(1)[:, 0].tolist() == [sum(range(0, 3)), sum(range(3, 13)),
                                           sum(range(13, 23)), 23]
    groups.add_(torch.tensor([[100.0, 0], [200, 0], [300, 0], [400, 0]])[:, None])
    assert (rows[:, 0] - values[:, 0]).tolist() == [100] * 3 + [200] * 10 + [300] * 10 + [400]
    again = tr._grouped("test", 24, 2, torch.float32, 7, 10)
    assert again[0] is rows and again[1] is groups
    assert tr._grouped("test", 24, 2, torch.float32, 0, 10)[0].data_ptr() == groups.data_ptr()


@pytest.mark.parametrize("sampling", ["permuted", "random"])
def test_kept_arrays_stop_growing_when_batches_touch_different_row_counts(sampling):
    """Batches of scattered positions touch a different number of genome rows each step; the
    arrays the torch pass keeps from step to step must not grow with every new count."""
    n = 60_000
    rng = np.random.default_rng(0)
    tracks = [rng.random(n, dtype=np.float32) for _ in range(8)]
    net = AvocadoNetwork(4, 2, n, n_layers=1, n_nodes=16, n_biosample_factors=4,
                         n_assay_factors=4, n_25bp_factors=3, n_250bp_factors=3,
                         n_5kbp_factors=3, generator=torch.Generator().manual_seed(0))
    exps = np.arange(8)
    trainer = Trainer(net, exps // 2, exps % 2, TrackSource(tracks), 2_000, seed=0,
                      kernel=False, sampling=sampling)

    def held_bytes() -> int:
        kept = [*trainer._buffers.values(),
                *(v for k, v in trainer._views.items() if k[0] == "zeros")]
        return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                    for t in kept}.values())

    for _ in range(10):
        trainer.advance()
    after_ten = held_bytes()
    for _ in range(40):
        trainer.advance()
    assert held_bytes() <= after_ten


def test_catch_up_memo_overflow_keeps_the_keys_it_needs():
    # Regression: once the memo held more than 4,096 entries it was cleared *after* the keys to
    # compute were chosen, so a key that had been memoized was looked up after the clear.
    table = torch.zeros(8, 3)
    adam = training.CatchUpAdam(table, 1e-3, (0.9, 0.999), 1e-7)
    s, k = np.array([5, 7]), np.array([3, 2])
    expected = training.CatchUpAdam(table, 1e-3, (0.9, 0.999), 1e-7)._group_coefficients(s, k)
    adam._group_coefficients(s[:1], k[:1])  # (5, 3) memoized, (7, 2) not
    for i in range(5000):
        adam.memo[(10_000 + i, 1)] = adam.memo[(5, 3)]
    ebar, mom = adam._group_coefficients(s, k)
    np.testing.assert_array_equal(ebar, expected[0])
    np.testing.assert_array_equal(mom, expected[1])
    assert len(adam.memo) == 2


@pytest.mark.parametrize("kernel", [True, False])
def test_weight_averaging_does_not_change_the_course_of_training(kernel):
    # Catching rows up in two parts rounds differently from catching up at once: averaging
    # peeks at the caught-up rows without writing them, so the run goes on bit for bit.
    rng = np.random.default_rng(0)
    tracks = [rng.normal(size=1003).astype(np.float32) for _ in range(5)]
    _, trainers = _trainer_pair(tracks, 1, 16, [{"kernel": kernel}] * 2)
    losses = [[], []]
    for i in range(60):
        for j, tr in enumerate(trainers):
            losses[j].append(tr.step())
        if i % 8 == 7:
            trainers[1].accumulate_average()
    assert losses[0] == losses[1]
    assert trainers[1].n_averaged == 7


@pytest.mark.parametrize("kernel", [True, False])
def test_biosample_decay_shrinks_only_the_trained_rows(kernel):
    # One step from the same state: the decayed trainer's trained row is the other's times
    # (1 - decay), exactly; the frozen rows and every other parameter are bit for bit equal.
    options = dict(train_groups=("biosample", "network"),
                   trainable_rows={"biosample": np.array([1])}, kernel=kernel)
    plain = _tiny_trainer(**options)
    decayed = _tiny_trainer(biosample_decay=0.25, **options)
    plain.step()
    decayed.step()
    got = decayed.network.state_dict()
    for key, want in plain.network.state_dict().items():
        if key == "biosample_embedding.weight":
            assert torch.equal(got[key][[0, 2]], want[[0, 2]])
            assert torch.equal(got[key][1], want[1] * 0.75)
        else:
            assert torch.equal(got[key], want), key


def test_fit_options_merge_and_scopes():
    from avocado_core.training import FitOptions, training_scope

    base = FitOptions.of(n_epochs=3, seed=1)
    assert FitOptions.of(base, seed=2) == FitOptions(n_epochs=3, seed=2)
    with pytest.raises(TypeError, match="'n_epoch'"):
        FitOptions.of(n_epoch=3)
    tracks = [np.zeros(50, np.float32)]
    made = []

    def source(arrays):
        made.append(len(arrays))
        return TrackSource(arrays)

    assert isinstance(FitOptions().make_source(tracks), TrackSource)
    with training_scope(source=source):
        with training_scope(trainer=Trainer):  # an inner scope keeps the outer's source
            FitOptions().make_source(tracks)
        assert made == [1]
    FitOptions().make_source(tracks)  # the scope ended with its block
    assert made == [1]


# ------------------------------------------------------------------------ no host synchronisation
@pytest.mark.parametrize("sampling", ["sequential", "permuted", "random"])
@pytest.mark.parametrize("n_layers, precision, activity", [
    (0, "fp32", False), (1, "fp32", False), (2, "fp32", True), (2, "bf16", False)])
@pytest.mark.parametrize("groups", [training.GROUPS, ("25bp", "250bp", "5kbp"), ("biosample",)])
def test_a_step_never_reads_the_device(sampling, n_layers, precision, activity, groups):
    # On the meta device a tensor has no values: reading one (.item(), bool(), .cpu(),
    # .tolist(), unique, ...) is an error. A step that runs there queues its work without
    # ever waiting for the device, as on a GPU (1003 positions, batches of 137: sequential
    # batches wrap, permuted ones span two passes, random ones repeat positions; 20 steps
    # make rows stale by various numbers of steps). The loss is still a device scalar.
    from avocado_core.residual import AverageActivity, ResidualSource

    rng = np.random.default_rng(0)
    tracks = [rng.normal(size=1003).astype(np.float32) for _ in range(5)]
    exps_b, exps_a = [0, 1, 2, 0, 1], [0, 0, 1, 2, 2]
    extra = {}
    if activity:
        mean = AverageActivity.from_tracks(exps_a, tracks, 3, 1003)
        extra["activity_input"] = ResidualSource(TrackSource(tracks), mean, exps_a, [True] * 5)
    if groups == ("biosample",):
        extra["trainable_rows"] = {"biosample": np.array([1])}
    net = AvocadoNetwork(3, 3, 1003, n_layers=n_layers, n_nodes=16, n_biosample_factors=4,
                         n_assay_factors=5, n_25bp_factors=3, n_250bp_factors=4,
                         n_5kbp_factors=5, n_activity_inputs=int(activity)).to("meta")
    tr = Trainer(net, exps_b, exps_a, TrackSource(tracks), 137, seed=1, sampling=sampling,
                 precision=precision, train_groups=groups, **extra)
    for _ in range(20):
        loss = tr.advance()
    assert loss.device.type == "meta" and loss.shape == ()
    tr.finalize()  # (catches every row up: also no device reads)


@pytest.mark.parametrize("pack", [True, False])
def test_to_device_sends_the_arrays_in_one_copy(pack):
    from avocado_core.training.transfer import to_device

    rng = np.random.default_rng(0)
    arrays = {"e": rng.integers(0, 9, 7), "y": rng.random(5, dtype=np.float32),
              "ebar": rng.random((3, 2), dtype=np.float32), "none": np.zeros(0, np.int64),
              "inv": rng.integers(0, 9, (2, 3))}
    out = to_device(arrays, "cpu", pack=pack)
    assert list(out) == list(arrays)
    for key, array in arrays.items():
        assert out[key].dtype == torch.from_numpy(array).dtype and out[key].shape == array.shape
        np.testing.assert_array_equal(out[key].numpy(), array)
    if pack:  # one buffer: every array a view of it
        bases = {t.untyped_storage().data_ptr() for t in out.values()}
        assert len(bases) == 1
        with pytest.raises(TypeError, match="int64 and float32"):
            to_device({"x": np.zeros(3)}, "cpu", pack=True)


def test_fused_adam_step_is_torch_adams_step():
    # The trainer steps its dense parameters by torch's fused Adam kernel directly: bit for
    # bit what torch.optim.Adam(fused=True).step() gives, state included.
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (4,), (1, 4)]
    start = [torch.randn(s, generator=gen) for s in shapes]
    ours = [p.clone() for p in start]
    theirs = [p.clone().requires_grad_(True) for p in start]
    opt_ours = torch.optim.Adam(ours, lr=0.01, eps=1e-7, fused=True)
    opt_theirs = torch.optim.Adam(theirs, lr=0.01, eps=1e-7, fused=True)
    for _ in range(5):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        training.optimizer.fused_adam_step(opt_ours, grads)
        for p, g in zip(theirs, grads):
            p.grad = g
        opt_theirs.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b.detach())
    for a, b in zip(ours, theirs):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(opt_ours.state[a][key], opt_theirs.state[b][key]), key


def test_the_epoch_loss_is_the_mean_of_the_step_losses():
    # The loop sums the losses on the device in float64 and reads them once an epoch: the
    # same number as the float64 mean of the losses the steps report one by one.
    stepped, looped = _tiny_trainer(), _tiny_trainer()
    losses = [stepped.step() for _ in range(12)]
    history = training.train(looped, 2, 6, progress=False)
    assert history["loss"] == [sum(losses[:6]) / 6, sum(losses[6:]) / 6]


def test_bf16_bias_gradients_are_summed_in_fp32():
    # With bf16 activations the output gradient is bf16; its sum over the batch, the output
    # bias's gradient, is kept in fp32. A known answer: 256 gradients of 1 and one of 2**-6
    # (all exact in bf16) sum to 256 + 2**-6, exact in fp32 (and in every partial sum), which
    # bf16's 8-bit mantissa would round to 256.
    rng = np.random.default_rng(0)
    tracks = [rng.normal(size=1003).astype(np.float32) for _ in range(5)]
    _, (tr,) = _trainer_pair(tracks, 2, 24, [{"precision": "bf16"}])
    pre = torch.randn(257, 24, generator=torch.Generator().manual_seed(0))
    g_out = torch.ones(257)
    g_out[100] = 2.0**-6
    with torch.no_grad():
        _, acts = tr._mlp_forward(pre)
        _, grads, _ = tr._mlp_backward(g_out, acts, True)
    assert grads[-1].dtype == torch.float32
    assert float(grads[-1][0]) == 256 + 2.0**-6
