"""The pure network: shapes, multi-scale row lookup, first-layer decomposition, init."""

from __future__ import annotations

import pytest
import torch

from avocado_core.network import AvocadoNetwork, genome_rows


def _net(n_layers: int = 2, seed: int = 0) -> AvocadoNetwork:
    return AvocadoNetwork(
        3, 4, 450, n_layers=n_layers, n_nodes=16, n_biosample_factors=5, n_assay_factors=6,
        n_25bp_factors=2, n_250bp_factors=3, n_5kbp_factors=4,
        generator=torch.Generator().manual_seed(seed),
    )


def test_table_sizes_follow_the_original():
    net = _net()
    assert genome_rows(450, "25bp") == 450
    assert genome_rows(450, "250bp") == 46  # 450 // 10 + 1
    assert genome_rows(450, "5kbp") == 3  # 450 // 200 + 1
    assert net.genome_250bp.weight.shape == (46, 3)
    assert net.genome_5kbp.weight.shape == (3, 4)
    assert net.n_genome_factors == 9
    assert net.hidden[0].in_features == 5 + 6 + 9
    # the paper's default width: 25 + 40 + 45
    assert AvocadoNetwork(1, 1, 10, n_layers=1, n_nodes=4).n_genome_factors == 110


def test_position_uses_rows_i_i10_i200():
    net = _net()
    with torch.no_grad():
        net.genome_25bp.weight.copy_(torch.arange(450.0)[:, None].repeat(1, 2))
        net.genome_250bp.weight.copy_(torch.arange(46.0)[:, None].repeat(1, 3))
        net.genome_5kbp.weight.copy_(torch.arange(3.0)[:, None].repeat(1, 4))
    pos = torch.tensor([0, 9, 10, 199, 200, 449])
    f = net.genome_factors(pos)
    assert f.shape == (6, 9)
    assert f[:, 0].tolist() == [0, 9, 10, 199, 200, 449]
    assert f[:, 2].tolist() == [0, 0, 1, 19, 20, 44]
    assert f[:, 5].tolist() == [0, 0, 0, 0, 1, 2]


@pytest.mark.parametrize("n_layers", [0, 1, 3])
def test_decomposed_first_layer_equals_forward(n_layers):
    net = _net(n_layers)
    b = torch.tensor([0, 2, 1, 2])
    a = torch.tensor([3, 0, 1, 1])
    pos = torch.tensor([5, 449, 200, 17])
    with torch.no_grad():
        direct = net(b, a, pos)
        split = net.head(net.genome_term(pos) + net.experiment_term(b, a))
    assert direct.shape == (4,)
    torch.testing.assert_close(split, direct, rtol=1e-5, atol=1e-6)


def test_keras_initialization_and_determinism():
    net, again, other = _net(seed=1), _net(seed=1), _net(seed=2)
    for table in net.embedding_parameters().values():
        assert float(table.abs().max()) <= 0.05
    assert float(net.hidden[0].bias.abs().max()) == 0.0
    limit = (6 / (net.hidden[0].in_features + 16)) ** 0.5
    assert float(net.hidden[0].weight.abs().max()) <= limit
    for p, q, r in zip(net.parameters(), again.parameters(), other.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(net.genome_25bp.weight, other.genome_25bp.weight)
