"""CPU prediction by the compiled kernel (kernels.predict_positions) against the network's own
torch forward pass: every layer count and width it serves, any position range, several
experiments at once, the average-activity modes."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from avocado_core import Avocado, kernels
from avocado_core.residual import AverageActivity

N = 4_321  # positions: not a multiple of 10 or 200
BIOSAMPLES, ASSAYS = ["B1", "B2", "B3"], ["A1", "A2"]
EXPERIMENTS = [("B1", "A2"), ("B3", "A1"), ("B2", "A2"), ("B1", "A1")]


def _model(n_layers: int, n_nodes: int, **kw) -> Avocado:
    """A model whose parameters are all N(0, 0.3): biases, embeddings and weights big enough
    that ReLUs switch both ways."""
    model = Avocado(BIOSAMPLES, ASSAYS, N, n_layers=n_layers, n_nodes=n_nodes,
                    n_biosample_factors=4, n_assay_factors=3, n_25bp_factors=5,
                    n_250bp_factors=6, n_5kbp_factors=7, seed=0, device="cpu", **kw)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.network.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model


def _forward(model: Avocado, start: int, end: int, activity: np.ndarray | None = None
             ) -> np.ndarray:
    """``AvocadoNetwork.forward`` of every experiment over ``[start, end)`` (float64 weights:
    the exact answer to float32 rounding)."""
    net = copy.deepcopy(model.network).double()
    pos = torch.arange(start, end)
    out = []
    with torch.no_grad():
        for i, (b, a) in enumerate(EXPERIMENTS):
            ones = torch.ones(len(pos), dtype=torch.long)
            act = None if activity is None else torch.from_numpy(activity[i]).double()
            out.append(net(ones * BIOSAMPLES.index(b), ones * ASSAYS.index(a), pos, act).numpy())
    return np.array(out)


@pytest.fixture
def kernel_calls(monkeypatch):
    """The number of calls of the kernel (to see that prediction went through it)."""
    calls = []
    real = kernels.predict_positions

    def spy(*args, **kwargs):
        calls.append(args[4:6])
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels, "predict_positions", spy)
    return calls


@pytest.mark.parametrize("n_layers, n_nodes", [(1, 16), (1, 300), (2, 3), (2, 33), (2, 64),
                                               (3, 8)])
@pytest.mark.parametrize("start, end", [(0, N), (37, 4_213), (199, 201)])
def test_kernel_predicts_the_forward_pass(n_layers, n_nodes, start, end, kernel_calls):
    model = _model(n_layers, n_nodes)
    got = model.predict_many(EXPERIMENTS, start, end)
    assert kernel_calls == [(start, end)]
    want = _forward(model, start, end)
    assert got.dtype == np.float32 and got.shape == want.shape
    # float32 rounding of sums of ~n_nodes terms of size ~1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("n_layers, n_nodes", [(0, 1), (2, 129)])
def test_networks_the_kernel_does_not_serve_predict_with_torch(n_layers, n_nodes, kernel_calls):
    # no hidden layer, or several wider than the kernel's limit: torch's forward pass
    model = _model(n_layers, n_nodes)
    got = model.predict_many(EXPERIMENTS, 37, 4_213)
    assert kernel_calls == []
    np.testing.assert_allclose(got, _forward(model, 37, 4_213), rtol=1e-5,
                               atol=1e-5 * np.abs(got).max())


def test_parts_and_threads_do_not_change_a_value(monkeypatch):
    model = _model(2, 24)
    net = model.network
    args = ([t.weight.detach().numpy() for t in net.genome_tables.values()],
            [net.biosample_embedding.weight.detach().numpy(),
             net.assay_embedding.weight.detach().numpy()],
            (np.array([0, 2, 1]), np.array([1, 0, 1])),
            [(la.weight.detach().numpy(), la.bias.detach().numpy())
             for la in [*net.hidden, net.output]], 13, 4_300)
    whole = kernels.predict_positions(*args, threads=1)
    # parts of 64 to 1,000 positions (split within 250 bp and 5 kbp rows), in turn or on threads
    monkeypatch.setattr(kernels, "_MIN_PART", 64)
    monkeypatch.setattr(kernels, "_MAX_PART", 1_000)
    assert np.array_equal(kernels.predict_positions(*args, threads=1), whole)
    assert np.array_equal(kernels.predict_positions(*args, threads=3), whole)


@pytest.mark.parametrize("mode", ["input", "residual"])
def test_kernel_keeps_average_activity_and_blend(mode, kernel_calls):
    model = _model(2, 20, average_activity=mode)
    rng = np.random.default_rng(2)
    mean = rng.random((len(ASSAYS), N)).astype(np.float32)
    model.activity = AverageActivity(mean, np.ones(len(ASSAYS), np.int64))
    a_idx = [ASSAYS.index(a) for _, a in EXPERIMENTS]
    start, end = 37, 4_213
    rows = mean[a_idx, start:end]
    want = _forward(model, start, end, rows if mode == "input" else None)
    if mode == "residual":
        want = want + rows
    np.testing.assert_allclose(model.predict_many(EXPERIMENTS, start, end), want, rtol=1e-5,
                               atol=1e-5 * np.abs(want).max())
    model.activity_blend = 0.25
    np.testing.assert_allclose(model.predict_many(EXPERIMENTS, start, end),
                               0.75 * want + 0.25 * rows, rtol=1e-5,
                               atol=1e-5 * np.abs(want).max())
    assert len(kernel_calls) == 2
