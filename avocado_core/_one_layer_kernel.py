"""The one-hidden-layer kernel of :mod:`avocado_core.kernels`, as a template.

:func:`avocado_core.kernels.one_layer_step` writes a copy of this file per layer size into the
cache folder with the sizes below filled in (loops of known length vectorize and unroll) and
imports it, so that numba compiles each size once and keeps it on disk. This module itself
is never imported.
"""

import numpy as np
from numba import njit

H, F = 128, 10  # replaced per network: hidden width, 25 bp factors
T = 16  # samples per tile: their activations and gradients stay in L1
F4 = F - F % 4
zero = np.float32(0.0)


@njit(fastmath=True, boundscheck=False, nogil=True, error_model="numpy", cache=True)
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
