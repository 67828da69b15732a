"""The compiled kernels against the same computation by torch autograd."""

import numpy as np
import pytest
import torch

from avocado_core import kernels


@pytest.mark.parametrize("n, width, n_factors", [(50, 16, 3), (137, 37, 10)])
def test_one_layer_step_gives_autograd_gradients(n, width, n_factors):
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.normal(size=(n + 7, n_factors)).astype(f32)
    x_row = rng.permutation(n + 7)[:n]  # rows picked in any order
    experiment = rng.integers(0, 4, n)
    q_row = np.sort(rng.integers(0, 9, n))
    y = rng.normal(size=n).astype(f32)
    exp_term = rng.normal(size=(4, width)).astype(f32)
    q = rng.normal(size=(9, width)).astype(f32)
    w_x = rng.normal(size=(n_factors, width)).astype(f32)
    w_out = rng.normal(size=width).astype(f32)
    b_out = 0.3

    sse, g_b, g_w_x, g_exp, g_q, g_w_out, g_x = kernels.one_layer_step(
        x, x_row, experiment, q_row, y, exp_term, q, w_x, w_out, b_out)

    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for k, v in dict(x=x, exp_term=exp_term, q=q, w_x=w_x, w_out=w_out,
                          b_out=np.array(b_out)).items()}
    rows = t["x"][torch.from_numpy(x_row)]
    rows.retain_grad()
    pre = t["exp_term"][torch.from_numpy(experiment)] + t["q"][torch.from_numpy(q_row)]
    pred = torch.relu(pre + rows @ t["w_x"]) @ t["w_out"] + t["b_out"]
    err = pred - torch.from_numpy(y).double()
    loss = torch.mean(err**2)
    loss.backward()

    assert sse == pytest.approx(float(torch.sum(err.detach()**2)), rel=1e-5)
    assert g_b == pytest.approx(float(t["b_out"].grad), rel=1e-4, abs=1e-7)
    for name, got, want in [("w_x", g_w_x, t["w_x"].grad), ("exp_term", g_exp, t["exp_term"].grad),
                            ("q", g_q, t["q"].grad), ("w_out", g_w_out, t["w_out"].grad),
                            ("x", g_x, rows.grad)]:
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_network_kernel_is_kept_in_the_cache_folder(tmp_path, monkeypatch):
    # One file per layer size, named by the hash of its text; where the folder cannot be
    # written (here: it is a file), the kernel compiles in memory and gives the same result.
    rng = np.random.default_rng(1)
    f32 = np.float32
    args = (rng.normal(size=(20, 3)).astype(f32), np.arange(20), np.zeros(20, np.int64),
            np.arange(20) // 10, rng.normal(size=20).astype(f32),
            rng.normal(size=(1, 5)).astype(f32), rng.normal(size=(2, 5)).astype(f32),
            rng.normal(size=(3, 5)).astype(f32), rng.normal(size=5).astype(f32), 0.0)
    results = []
    for cache in (tmp_path / "cache", tmp_path / "not-a-folder"):
        if cache.name == "not-a-folder":
            cache.write_text("")
        monkeypatch.setenv("AVOCADO_CACHE", str(cache))
        kernels._one_layer_kernel.cache_clear()
        results.append(kernels.one_layer_step(*args))
    assert len(list((tmp_path / "cache" / "kernels").glob("avocado_one_layer_5_3_*.py"))) == 1
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    for got, want in zip(results[1][2:], results[0][2:]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
