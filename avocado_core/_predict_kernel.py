"""The prediction kernel of :mod:`avocado_core.kernels`, as a template.

:func:`avocado_core.kernels.predict_positions` writes a copy of this file per layer size into
the cache folder with the sizes below filled in (loops of known length vectorize and unroll)
and imports it, so that numba compiles each size once and keeps it on disk. This module itself
is never imported.
"""

import numpy as np
from numba import njit

H, F = 128, 10  # replaced per network: hidden width, 25 bp factors
T = 16  # positions per tile: the tile's activations stay in L1
zero = np.float32(0.0)


@njit(fastmath={"contract", "reassoc"}, boundscheck=False, nogil=True, error_model="numpy",
      cache=True)
def kernel(g25, g250, g5k, emb_b, emb_a, b_idx, a_idx, weights, biases, act, lo, hi, base,
           out):  # pragma: no cover - compiled
    """``predict_positions``' forward pass of positions ``[lo, hi)`` into columns ``lo - base``
    to ``hi - base`` of ``out`` (and of ``act``, the average activity, when it has rows)."""
    n_exp = b_idx.shape[0]
    n_hidden = len(weights) - 2  # hidden layers after the first
    nb, na, n250, n5k = emb_b.shape[1], emb_a.shape[1], g250.shape[1], g5k.shape[1]
    # the first layer's weights (width, inputs) transposed: a row per input, of width H
    first = np.ascontiguousarray(weights[0].T)
    w25 = first[nb + na : nb + na + F]
    w250 = first[nb + na + F : nb + na + F + n250]
    w5k = first[nb + na + F + n250 : nb + na + F + n250 + n5k]
    w_act = first[first.shape[0] - 1]
    with_act = act.shape[0] > 0
    w_out = weights[n_hidden + 1][0]
    b_out = biases[n_hidden + 1][0]
    exp_term = np.empty((n_exp, H), np.float32)  # biosample + assay term and first bias
    for e in range(n_exp):
        for j in range(H):
            exp_term[e, j] = biases[0][j]
        for f in range(nb):
            v = emb_b[b_idx[e], f]
            for j in range(H):
                exp_term[e, j] += v * first[f, j]
        for f in range(na):
            v = emb_a[a_idx[e], f]
            for j in range(H):
                exp_term[e, j] += v * first[nb + f, j]
    g = np.empty((T, H), np.float32)  # the tile's genome term
    x = np.zeros((T, H), np.float32)  # activations (rows past a short tile's end: unused)
    y = np.zeros((T, H), np.float32)
    c250 = np.zeros(H, np.float32)
    c5k = np.zeros(H, np.float32)
    r250, r5k = -1, -1
    for t0 in range(lo, hi, T):
        m = min(T, hi - t0)
        for s in range(m):  # first layer, genome part: each 250 bp / 5 kbp row once
            p = t0 + s
            if p // 10 != r250:
                r250 = p // 10
                _row_term(g250, r250, w250, c250)
            if p // 200 != r5k:
                r5k = p // 200
                _row_term(g5k, r5k, w5k, c5k)
            for j in range(H):
                g[s, j] = c250[j] + c5k[j]
            for f in range(F):
                v = g25[p, f]
                for j in range(H):
                    g[s, j] += v * w25[f, j]
        for e in range(n_exp):
            for s in range(m):  # + biosample, assay, bias (and average activity); ReLU
                if with_act:
                    a = act[e, t0 - base + s]
                    for j in range(H):
                        x[s, j] = max(g[s, j] + exp_term[e, j] + a * w_act[j], zero)
                else:
                    for j in range(H):
                        x[s, j] = max(g[s, j] + exp_term[e, j], zero)
            for layer in range(n_hidden):
                _dense_relu(x, weights[layer + 1], biases[layer + 1], y, m)
                x, y = y, x
            for s in range(m):
                a = zero
                for j in range(H):
                    a += x[s, j] * w_out[j]
                out[e, t0 - base + s] = a + b_out


@njit(fastmath={"contract", "reassoc"}, boundscheck=False, nogil=True, error_model="numpy",
      cache=True)
def _row_term(table, row, w, c):  # pragma: no cover - compiled
    """``c = table[row] @ w``: the first layer's term of one row of a genome table."""
    for j in range(H):
        c[j] = zero
    for f in range(w.shape[0]):
        v = table[row, f]
        for j in range(H):
            c[j] += v * w[f, j]


@njit(fastmath={"contract", "reassoc"}, boundscheck=False, nogil=True, error_model="numpy",
      cache=True)
def _dense_relu(x, w, b, y, m):  # pragma: no cover - compiled
    """``y[:m] = relu(x[:m] @ w.T + b)`` for the rows of a tile, four rows and two outputs at a
    time: eight sums along contiguous rows of ``x`` and ``w``, kept in registers (rows ``m`` to
    the next multiple of four are computed from whatever they hold and not used)."""
    for s in range(0, m, 4):
        for j in range(0, H - 1, 2):
            a0 = a1 = a2 = a3 = c0 = c1 = c2 = c3 = zero
            for k in range(H):
                w0, w1 = w[j, k], w[j + 1, k]
                x0, x1, x2, x3 = x[s, k], x[s + 1, k], x[s + 2, k], x[s + 3, k]
                a0 += x0 * w0
                a1 += x1 * w0
                a2 += x2 * w0
                a3 += x3 * w0
                c0 += x0 * w1
                c1 += x1 * w1
                c2 += x2 * w1
                c3 += x3 * w1
            y[s, j], y[s, j + 1] = max(a0 + b[j], zero), max(c0 + b[j + 1], zero)
            y[s + 1, j], y[s + 1, j + 1] = max(a1 + b[j], zero), max(c1 + b[j + 1], zero)
            y[s + 2, j], y[s + 2, j + 1] = max(a2 + b[j], zero), max(c2 + b[j + 1], zero)
            y[s + 3, j], y[s + 3, j + 1] = max(a3 + b[j], zero), max(c3 + b[j + 1], zero)
        if H % 2:  # the last output of an odd width
            j = H - 1
            a0 = a1 = a2 = a3 = zero
            for k in range(H):
                w0 = w[j, k]
                a0 += x[s, k] * w0
                a1 += x[s + 1, k] * w0
                a2 += x[s + 2, k] * w0
                a3 += x[s + 3, k] * w0
            y[s, j], y[s + 1, j] = max(a0 + b[j], zero), max(a1 + b[j], zero)
            y[s + 2, j], y[s + 3, j] = max(a2 + b[j], zero), max(a3 + b[j], zero)
