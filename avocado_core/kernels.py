"""Compiled CPU kernels (numba) for the hot loops of training a small network.

:func:`catch_up_rows` and :func:`adam_rows` are :class:`~avocado_core.training.CatchUpAdam`'s
row updates in one pass over the rows each (a torch version takes some 30 small operations).

A network with one hidden layer of ~100 units spends most of a torch step streaming
batch x width arrays through memory, one pass per operation (the first layer's products, the
ReLU, the output, the ReLU's backward, the weight gradients). :func:`one_layer_step` does the
whole forward and backward pass of such a network one tile of samples at a time, with the
tile's activations in the core's L1 cache: no batch x width array is ever written.

The kernels are specialized to the layer sizes (loops of known length vectorize and unroll),
compiled on first use (about a second) and kept for the process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

__all__ = ["adam_rows", "catch_up_rows", "one_layer_step"]

#: Samples per tile: their activations and gradients (2 x TILE x width floats) stay in L1.
TILE = 16


@lru_cache(maxsize=None)
def _one_layer_kernel(width: int, n_factors: int) -> Callable:
    """The compiled kernel for a hidden layer of ``width`` and ``n_factors`` 25 bp factors."""
    from numba import njit

    H, F, T = width, n_factors, TILE
    F4 = F - F % 4
    zero = np.float32(0.0)

    @njit(fastmath=True, boundscheck=False, nogil=True, error_model="numpy")
    def kernel(x, x_row, experiment, q_row, y, exp_term, q, w_x, w_out, b_out, scale,
               g_w_x, g_exp, g_q, g_w_out, g_x):  # pragma: no cover - compiled
        n = y.shape[0]
        h_tile = np.empty((T, H), np.float32)
        g_tile = np.empty((T, H), np.float32)
        x_tile = np.empty((T, F), np.float32)
        d_tile = np.empty(T, np.float32)
        sse = 0.0
        g_b = 0.0
        for t0 in range(0, n, T):
            m = min(T, n - t0)
            for s in range(m):
                i = t0 + s
                r, e, j = x_row[i], experiment[i], q_row[i]
                for f in range(F):
                    x_tile[s, f] = x[r, f]
                pred = zero
                for k in range(H):  # pre-activation, ReLU and output
                    a = exp_term[e, k] + q[j, k]
                    for f in range(F):
                        a += x_tile[s, f] * w_x[f, k]
                    a = max(a, zero)
                    h_tile[s, k] = a
                    pred += a * w_out[k]
                diff = pred + b_out - y[i]
                sse += diff * diff
                d = np.float32(diff * scale)
                d_tile[s] = d
                g_b += d
                for k in range(H):  # gradient of the pre-activation
                    g = d * w_out[k] if h_tile[s, k] > zero else zero
                    g_tile[s, k] = g
                    g_exp[e, k] += g
                    g_q[j, k] += g
                # gradient of the sample's 25 bp factors, four at a time (one read of g_tile)
                for f in range(0, F4, 4):
                    a0, a1, a2, a3 = zero, zero, zero, zero
                    for k in range(H):
                        g = g_tile[s, k]
                        a0 += g * w_x[f, k]
                        a1 += g * w_x[f + 1, k]
                        a2 += g * w_x[f + 2, k]
                        a3 += g * w_x[f + 3, k]
                    g_x[i, f], g_x[i, f + 1], g_x[i, f + 2], g_x[i, f + 3] = a0, a1, a2, a3
                for f in range(F4, F):
                    a = zero
                    for k in range(H):
                        a += g_tile[s, k] * w_x[f, k]
                    g_x[i, f] = a
            for s in range(m, T):  # pad a short last tile with zeros
                d_tile[s] = zero
                for k in range(H):
                    h_tile[s, k] = zero
                    g_tile[s, k] = zero
                for f in range(F):
                    x_tile[s, f] = zero
            for k in range(H):  # weight gradients: tile products
                a = zero
                for s in range(T):
                    a += d_tile[s] * h_tile[s, k]
                g_w_out[k] += a
            for f in range(F):
                for k in range(H):
                    a = zero
                    for s in range(T):
                        a += x_tile[s, f] * g_tile[s, k]
                    g_w_x[f, k] += a
        return sse, g_b

    return kernel


def one_layer_step(
    x: np.ndarray,
    x_row: np.ndarray,
    experiment: np.ndarray,
    q_row: np.ndarray,
    y: np.ndarray,
    exp_term: np.ndarray,
    q: np.ndarray,
    w_x: np.ndarray,
    w_out: np.ndarray,
    b_out: float,
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward and backward pass of ``y_hat = w_out . relu(pre) + b_out`` under MSE.

    Sample ``i`` has the pre-activation ``pre_i = exp_term[experiment[i]] + q[q_row[i]] +
    x[x_row[i]] @ w_x``: a per-experiment term (biosample + assay + bias), a per-row term (the
    250 bp and 5 kbp genome factors) and the sample's 25 bp factors through ``w_x``.

    Parameters
    ----------
    x: numpy.ndarray of float32, shape=(n_rows, n_factors)
        25 bp factors; ``x_row`` picks each sample's row.
    x_row, experiment, q_row: numpy.ndarray of int64, shape=(n,)
        Per-sample rows of ``x``, ``exp_term`` and ``q``.
    y: numpy.ndarray of float32, shape=(n,)
        Targets.
    exp_term: numpy.ndarray of float32, shape=(n_experiments, width)
    q: numpy.ndarray of float32, shape=(n_q, width)
    w_x: numpy.ndarray of float32, shape=(n_factors, width)
    w_out: numpy.ndarray of float32, shape=(width,)
    b_out: float

    Returns
    -------
    sse: float
        Sum of squared errors.
    g_b_out: float
        Gradient of the mean squared error with respect to ``b_out``; the arrays that follow
        are the gradients with respect to ``w_x``, ``exp_term``, ``q``, ``w_out`` and each
        sample's row of ``x`` (shape (n, n_factors), one row per sample).
    """
    n = y.shape[0]
    n_factors, width = w_x.shape
    kernel = _one_layer_kernel(width, n_factors)
    g_w_x = np.zeros_like(w_x)
    g_exp = np.zeros_like(exp_term)
    g_q = np.zeros_like(q)
    g_w_out = np.zeros_like(w_out)
    g_x = np.empty((n, n_factors), dtype=np.float32)
    sse, g_b = kernel(x, x_row, experiment, q_row, y, exp_term, q, w_x, w_out,
                      np.float32(b_out), np.float32(2.0 / n), g_w_x, g_exp, g_q, g_w_out, g_x)
    return float(sse), float(g_b), g_w_x, g_exp, g_q, g_w_out, g_x


# ------------------------------------------------------------------------------- catch-up Adam
@lru_cache(maxsize=None)
def _adam_kernels() -> tuple[Callable, Callable]:
    """The compiled catch-up and step kernels of :class:`~avocado_core.training.CatchUpAdam`."""
    from numba import njit, types
    from numba.typed import Dict

    @njit(boundscheck=False, nogil=True, error_model="numpy")
    def coefficients(s, k, b1, b2, eps, kcap, delta):  # pragma: no cover - compiled
        """Chunked moment coefficients of k missed steps after step s (see CatchUpAdam)."""
        kc = min(k, kcap)
        lb1, lb2 = np.log(b1), np.log(b2)
        w = np.empty(kc)
        e = np.empty(kc)
        chunk = np.empty(kc, np.int64)
        n_chunks = 1
        for i in range(kc):
            step = i + 1.0
            j = s + step
            root = np.sqrt(-np.expm1(j * lb2)) * np.exp(-0.5 * lb2 * step)
            w[i] = np.exp(lb1 * step) * root / -np.expm1(j * lb1)
            e[i] = eps * root
            c = max(int(np.floor((np.log(e[i]) - np.log(e[0])) / delta)), 0)
            chunk[i] = c
            n_chunks = max(n_chunks, c + 1)
        m0 = np.zeros(n_chunks)
        ebar = np.zeros(n_chunks)
        for i in range(kc):
            m0[chunk[i]] += w[i]
            ebar[chunk[i]] += w[i] * e[i]
        for c in range(n_chunks):
            ebar[c] = ebar[c] / m0[c] if m0[c] > 0 else eps
        nu = np.zeros((n_chunks, 3))
        for i in range(kc):
            c = chunk[i]
            rel = e[i] / ebar[c] - 1.0
            nu[c, 0] += w[i] * rel**2
            nu[c, 1] += w[i] * rel**3
            nu[c, 2] += w[i] * rel**4
        for c in range(n_chunks):
            if m0[c] > 0:
                nu[c] /= m0[c]
        return m0, ebar, nu

    @njit(fastmath=True, boundscheck=False, nogil=True, error_model="numpy")
    def catch_up_span(table, m, v, total, m0, ebar, nu, lr, decay1, decay2):
        """Catch up equally stale elements (flat views; one vectorized pass per chunk)."""
        n = table.shape[0]  # pragma: no cover - compiled
        for i in range(n):
            total[i] = 0.0
        for c in range(m0.shape[0]):
            if m0[c] == 0.0:
                continue
            eb = np.float32(ebar[c])
            n2, n3, n4 = np.float32(nu[c, 0]), np.float32(nu[c, 1]), np.float32(nu[c, 2])
            scale = np.float32(m0[c] * lr)
            for i in range(n):
                inv_d = np.float32(1.0) / (np.sqrt(v[i]) + eb)
                z = eb * inv_d
                total[i] += scale * inv_d * (np.float32(1.0) + z * z * (n2 + z * (n4 * z - n3)))
        d1, d2 = np.float32(decay1), np.float32(decay2)
        for i in range(n):
            table[i] -= m[i] * total[i]
            m[i] *= d1
            v[i] *= d2

    @njit(fastmath=True, boundscheck=False, nogil=True, error_model="numpy")
    def step_span(table, m, v, grad, step_size, inv_root_bc2, b1, b2, eps):
        """Adam step of elements (flat views) with their gradients."""
        f1, f2 = np.float32(b1), np.float32(b2)  # pragma: no cover - compiled
        g1, g2 = np.float32(1.0 - b1), np.float32(1.0 - b2)
        step32, inv32, e32 = np.float32(step_size), np.float32(inv_root_bc2), np.float32(eps)
        for i in range(table.shape[0]):
            g = grad[i]
            mm = f1 * m[i] + g1 * g
            vv = f2 * v[i] + g2 * g * g
            m[i] = mm
            v[i] = vv
            table[i] -= step32 * mm / (np.sqrt(vv) * inv32 + e32)

    @njit(boundscheck=False, nogil=True, error_model="numpy")
    def catch_up(table, m, v, last, rows, t, lr, b1, b2, eps, kcap, delta):  # pragma: no cover
        n_factors = table.shape[1]
        flat_table, flat_m, flat_v = table.reshape(-1), m.reshape(-1), v.reshape(-1)
        total = np.empty(rows.shape[0] * n_factors, np.float32)
        groups = Dict.empty(key_type=types.int64, value_type=types.int64)
        coef_m0, coef_ebar, coef_nu = [], [], []
        i = 0
        while i < rows.shape[0]:
            r0 = rows[i]
            s = last[r0]
            # a span: consecutive rows that were last stepped together
            j = i + 1
            while j < rows.shape[0] and rows[j] == r0 + (j - i) and last[rows[j]] == s:
                j += 1
            k = t - s
            if k > 0:
                if s in groups:
                    g = groups[s]
                else:
                    g = len(coef_m0)
                    groups[s] = g
                    m0, ebar, nu = coefficients(s, k, b1, b2, eps, kcap, delta)
                    coef_m0.append(m0)
                    coef_ebar.append(ebar)
                    coef_nu.append(nu)
                lo, hi = r0 * n_factors, (r0 + j - i) * n_factors
                catch_up_span(flat_table[lo:hi], flat_m[lo:hi], flat_v[lo:hi], total[: hi - lo],
                              coef_m0[g], coef_ebar[g], coef_nu[g], lr, b1**k, b2**k)
                for jj in range(i, j):
                    last[rows[jj]] = t
            i = j

    @njit(boundscheck=False, nogil=True, error_model="numpy")
    def step(table, m, v, last, rows, grad, t, lr, b1, b2, eps):  # pragma: no cover
        n_factors = table.shape[1]
        flat_table, flat_m, flat_v = table.reshape(-1), m.reshape(-1), v.reshape(-1)
        flat_grad = grad.reshape(-1)
        step_size = lr / (1.0 - b1**t)
        inv_root_bc2 = 1.0 / np.sqrt(1.0 - b2**t)
        i = 0
        while i < rows.shape[0]:
            j = i + 1  # a span of consecutive rows: one flat loop
            while j < rows.shape[0] and rows[j] == rows[i] + (j - i):
                j += 1
            lo, hi, off = rows[i] * n_factors, (rows[i] + j - i) * n_factors, i * n_factors
            step_span(flat_table[lo:hi], flat_m[lo:hi], flat_v[lo:hi],
                      flat_grad[off: off + hi - lo], step_size, inv_root_bc2, b1, b2, eps)
            for jj in range(i, j):
                last[rows[jj]] = t
            i = j

    return catch_up, step


def catch_up_rows(
    table: np.ndarray, m: np.ndarray, v: np.ndarray, last: np.ndarray, rows: np.ndarray,
    t: int, lr: float, betas: tuple[float, float], eps: float, kcap: int, delta: float,
) -> None:
    """Bring ``rows`` of a catch-up Adam table current to step ``t`` (in place).

    The arrays are :class:`~avocado_core.training.CatchUpAdam`'s (the table, its moments and
    each row's step, shared with its tensors); see there for the method and its parameters.
    """
    catch_up, _ = _adam_kernels()
    catch_up(table, m, v, last, rows, t, lr, betas[0], betas[1], eps, kcap, delta)


def adam_rows(
    table: np.ndarray, m: np.ndarray, v: np.ndarray, last: np.ndarray, rows: np.ndarray,
    grad: np.ndarray, t: int, lr: float, betas: tuple[float, float], eps: float,
) -> None:
    """Adam step ``t`` of ``rows`` (current to ``t - 1``) with gradients ``grad`` (in place)."""
    _, step = _adam_kernels()
    step(table, m, v, last, rows, grad, t, lr, betas[0], betas[1], eps)
