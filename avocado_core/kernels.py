"""Compiled CPU kernels (numba) for the hot loops of training a small network.

:func:`catch_up_rows` and :func:`adam_rows` are :class:`~avocado_core.training.CatchUpAdam`'s
row updates in one pass over the rows each (a torch version takes some 30 small operations).

A network with one hidden layer of ~100 units spends most of a torch step streaming
batch x width arrays through memory, one pass per operation (the first layer's products, the
ReLU, the output, the ReLU's backward, the weight gradients). :func:`one_layer_step` does the
whole forward and backward pass of such a network one tile of samples at a time, with the
tile's activations in the core's L1 cache: no batch x width array is ever written.

:func:`predict_positions` is a narrow network's whole forward pass over a range of positions
in one call that holds no GIL: one tile of positions at a time, each 250 bp and 5 kbp row's
first-layer term computed once, the hidden layers' products in blocks of positions that share
each weight row.

The network kernels are specialized to the layer sizes (loops of known length vectorize and
unroll); every kernel is compiled once (a few seconds) and cached on disk by numba.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from numba import njit

__all__ = ["adam_rows", "catch_up_rows", "one_layer_step", "predict_positions"]

#: The line of each kernel template that :func:`_compiled` fills in.
_SIZES_LINE = "H, F = 128, 10  # replaced per network: hidden width, 25 bp factors\n"


@lru_cache(maxsize=None)
def _one_layer_kernel(width: int, n_factors: int) -> Callable:
    """The compiled training kernel for a hidden layer of ``width`` and ``n_factors`` 25 bp
    factors (see :func:`_compiled`)."""
    return _compiled("_one_layer_kernel", "avocado_one_layer", width, n_factors)


@lru_cache(maxsize=None)
def _predict_kernel(width: int, n_factors: int) -> Callable:
    """The compiled prediction kernel for hidden layers of ``width`` and ``n_factors`` 25 bp
    factors (see :func:`_compiled`)."""
    return _compiled("_predict_kernel", "avocado_predict", width, n_factors)


def _compiled(template: str, prefix: str, width: int, n_factors: int) -> Callable:
    """The ``kernel`` of the template module ``avocado_core.<template>`` for these sizes.

    A copy of the template with the sizes filled in is written to ``<cache>/kernels/``
    (``$AVOCADO_CACHE`` or ``~/.cache/avocado``), named by ``prefix``, the sizes and a hash of
    its text, and run: numba caches its compiled code beside it. The folder is private (0700);
    the cached file is compared with the expected text before each use and rewritten when it
    differs, and the module is compiled from that verified text (never from a ``.pyc``), so
    code added to the cached file never runs. Where the folder cannot be used, the kernel is
    compiled in memory for this process.
    """
    from ._io import write_text
    from .datasets import cache_dir

    spec = importlib.util.find_spec(f"avocado_core.{template}")
    source = Path(spec.origin).read_text()
    source = source.replace(_SIZES_LINE, f"H, F = {int(width)}, {int(n_factors)}\n")
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    name = f"{prefix}_{int(width)}_{int(n_factors)}_{digest}"
    path = cache_dir() / "kernels" / f"{name}.py"
    try:
        _private_folder(path.parent)
        if not path.is_file() or path.read_bytes() != source.encode():
            write_text(path, source)  # missing, or changed by someone: the real text
    except OSError:
        namespace: dict = {}
        exec(compile(source.replace("cache=True", "cache=False"), name, "exec"), namespace)
        return namespace["kernel"]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # numba's disk cache finds the module by its name
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module.kernel


def _private_folder(folder: Path) -> None:
    """Create ``folder`` with mode 0700, or make an existing one of ours 0700.

    Raises
    ------
    PermissionError
        When the folder belongs to another user (its files could run as ours).
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{folder} belongs to another user")
    if info.st_mode & 0o077:
        folder.chmod(0o700)


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


# -------------------------------------------------------------------------------- prediction
#: Fewest and most positions of one part of a :func:`predict_positions` call.
_MIN_PART, _MAX_PART = 4096, 1 << 20


@lru_cache(maxsize=None)
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:
    """Worker threads of :func:`predict_positions`, kept for the process ``pid`` (a forked child
    has none of its parent's threads: it gets its own)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="avocado-predict")


def predict_positions(
    tables: Sequence[np.ndarray],
    embeddings: Sequence[np.ndarray],
    experiments: tuple[np.ndarray, np.ndarray],
    layers: Sequence[tuple[np.ndarray, np.ndarray]],
    start: int,
    end: int,
    activity: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Forward pass of an Avocado network over positions ``[start, end)`` of experiments.

    All of it (the weights' layout, the first layer's biosample + assay term) in one compiled
    call per thread that holds no GIL. Position ``i`` uses rows ``i``, ``i // 10`` and
    ``i // 200`` of the three genome tables, as :class:`~avocado_core.network.AvocadoNetwork`
    does: the concatenated biosample, assay, 25 bp, 250 bp and 5 kbp factors (and the average
    activity) through the first layer, each layer's ReLU, the output layer.

    Parameters
    ----------
    tables: sequence of three numpy.ndarray of float32
        The 25 bp, 250 bp and 5 kbp genome tables, shapes ``(n_rows, n_factors)``.
    embeddings: sequence of two numpy.ndarray of float32
        The biosample and assay tables.
    experiments: (numpy.ndarray, numpy.ndarray) of int
        Biosample and assay row of each experiment.
    layers: sequence of (numpy.ndarray, numpy.ndarray) of float32
        Weight ``(width, n_inputs)`` and bias ``(width,)`` of each layer as ``torch.nn.Linear``
        holds them: the hidden layers (at least one, all of one width), then the output
        layer ``(1, width)``.
    start, end: int
        Position range.
    activity: numpy.ndarray of float32 or None, optional
        Each experiment's average-activity input over the range, ``(n_experiments, end -
        start)``, for a network with that input (the first layer's last input). Default is
        None: none.
    threads: int, optional
        Threads that share the range, a few parts each. Default is 1 (the caller's thread).

    Returns
    -------
    numpy.ndarray, shape=(n_experiments, end - start), dtype=float32
    """
    g25, g250, g5k = tables
    b_idx, a_idx = (np.asarray(i, np.int64) for i in experiments)
    act = np.empty((0, 0), np.float32) if activity is None else activity
    out = np.empty((len(b_idx), end - start), np.float32)
    weights = tuple(w for w, _ in layers)
    biases = tuple(b for _, b in layers)
    kernel = _predict_kernel(len(biases[0]), g25.shape[1])

    def run(lo: int, hi: int) -> None:
        kernel(g25, g250, g5k, embeddings[0], embeddings[1], b_idx, a_idx, weights, biases,
               act, lo, hi, start, out)

    # a few parts per thread (a thread whose core is busy with other work takes fewer of them),
    # none longer than _MAX_PART (an interrupt waits for one part at most)
    n = end - start
    n_parts = max(-(-n // _MAX_PART), min(4 * threads, n // _MIN_PART) if threads > 1 else 1)
    bounds = np.linspace(start, end, n_parts + 1).astype(int)
    parts = list(zip(bounds[:-1], bounds[1:]))
    if threads <= 1 or n_parts == 1:
        for lo, hi in parts:
            run(lo, hi)
        return out
    futures = [_pool(threads, os.getpid()).submit(run, lo, hi) for lo, hi in parts]
    try:
        for future in futures:
            future.result()
    except BaseException:  # an interrupt: the parts not begun are dropped
        for future in futures:
            future.cancel()
        raise
    return out


# ------------------------------------------------------------------------------- catch-up Adam
#: Distinct staleness groups whose coefficients one catch-up call keeps at once.
_GROUP_CACHE = 64


@njit(boundscheck=False, nogil=True, error_model="numpy", cache=True)
def _coefficients(s, k, b1, b2, eps, kcap, delta, m0, ebar, nu):  # pragma: no cover - compiled
    """Chunked moment coefficients of ``k`` missed steps after step ``s`` (see CatchUpAdam),
    written into ``m0``, ``ebar`` and ``nu`` (rows of chunks; unused chunks get ``m0 = 0``)."""
    kc = min(k, kcap)
    lb1, lb2 = np.log(b1), np.log(b2)
    w = np.empty(kc)
    e = np.empty(kc)
    chunk = np.empty(kc, np.int64)
    m0[:] = 0.0
    ebar[:] = 0.0
    nu[:] = 0.0
    for i in range(kc):
        step = i + 1.0
        j = s + step
        root = np.sqrt(-np.expm1(j * lb2)) * np.exp(-0.5 * lb2 * step)
        w[i] = np.exp(lb1 * step) * root / -np.expm1(j * lb1)
        e[i] = eps * root
        chunk[i] = min(max(int(np.floor((np.log(e[i]) - np.log(e[0])) / delta)), 0),
                       m0.shape[0] - 1)
        m0[chunk[i]] += w[i]
        ebar[chunk[i]] += w[i] * e[i]
    for c in range(m0.shape[0]):
        ebar[c] = ebar[c] / m0[c] if m0[c] > 0 else eps
    for i in range(kc):
        c = chunk[i]
        rel = e[i] / ebar[c] - 1.0
        nu[c, 0] += w[i] * rel**2
        nu[c, 1] += w[i] * rel**3
        nu[c, 2] += w[i] * rel**4
    for c in range(m0.shape[0]):
        if m0[c] > 0:
            nu[c] /= m0[c]


@njit(fastmath=True, boundscheck=False, nogil=True, error_model="numpy", cache=True)
def _catch_up_span(table, m, v, total, m0, ebar, nu, lr, decay1, decay2):  # pragma: no cover
    """Catch up equally stale elements (flat views; one vectorized pass per chunk)."""
    n = table.shape[0]
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


@njit(boundscheck=False, nogil=True, error_model="numpy", cache=True)
def _catch_up(table, m, v, last, rows, t, lr, b1, b2, eps, kcap, delta, n_chunks):
    """Bring ``rows`` current to step ``t``, span by span of consecutive, equally stale rows."""
    n_factors = table.shape[1]  # pragma: no cover - compiled
    flat_table, flat_m, flat_v = table.reshape(-1), m.reshape(-1), v.reshape(-1)
    total = np.empty(rows.shape[0] * n_factors, np.float32)
    # coefficients of the most recent staleness groups, looked up once per span
    cache_s = np.full(_GROUP_CACHE, -1, np.int64)
    cache_m0 = np.zeros((_GROUP_CACHE, n_chunks))
    cache_ebar = np.zeros((_GROUP_CACHE, n_chunks))
    cache_nu = np.zeros((_GROUP_CACHE, n_chunks, 3))
    n_cached = 0
    i = 0
    while i < rows.shape[0]:
        r0 = rows[i]
        s = last[r0]
        j = i + 1
        while j < rows.shape[0] and rows[j] == r0 + (j - i) and last[rows[j]] == s:
            j += 1
        k = t - s
        if k > 0:
            g = -1
            for c in range(min(n_cached, _GROUP_CACHE)):
                if cache_s[c] == s:
                    g = c
                    break
            if g < 0:
                g = n_cached % _GROUP_CACHE
                n_cached += 1
                cache_s[g] = s
                _coefficients(s, k, b1, b2, eps, kcap, delta, cache_m0[g], cache_ebar[g],
                              cache_nu[g])
            lo, hi = r0 * n_factors, (r0 + j - i) * n_factors
            _catch_up_span(flat_table[lo:hi], flat_m[lo:hi], flat_v[lo:hi], total[: hi - lo],
                           cache_m0[g], cache_ebar[g], cache_nu[g], lr, b1**k, b2**k)
            for jj in range(i, j):
                last[rows[jj]] = t
        i = j


@njit(fastmath=True, boundscheck=False, nogil=True, error_model="numpy", cache=True)
def _step_span(table, m, v, grad, step_size, inv_root_bc2, b1, b2, eps):  # pragma: no cover
    """Adam step of elements (flat views) with their gradients."""
    f1, f2 = np.float32(b1), np.float32(b2)
    g1, g2 = np.float32(1.0 - b1), np.float32(1.0 - b2)
    step32, inv32, e32 = np.float32(step_size), np.float32(inv_root_bc2), np.float32(eps)
    for i in range(table.shape[0]):
        g = grad[i]
        mm = f1 * m[i] + g1 * g
        vv = f2 * v[i] + g2 * g * g
        m[i] = mm
        v[i] = vv
        table[i] -= step32 * mm / (np.sqrt(vv) * inv32 + e32)


@njit(boundscheck=False, nogil=True, error_model="numpy", cache=True)
def _step(table, m, v, last, rows, grad, t, lr, b1, b2, eps):  # pragma: no cover - compiled
    """Adam step ``t`` of ``rows``, span by span of consecutive rows."""
    n_factors = table.shape[1]
    flat_table, flat_m, flat_v = table.reshape(-1), m.reshape(-1), v.reshape(-1)
    flat_grad = grad.reshape(-1)
    step_size = lr / (1.0 - b1**t)
    inv_root_bc2 = 1.0 / np.sqrt(1.0 - b2**t)
    i = 0
    while i < rows.shape[0]:
        j = i + 1
        while j < rows.shape[0] and rows[j] == rows[i] + (j - i):
            j += 1
        lo, hi, off = rows[i] * n_factors, (rows[i] + j - i) * n_factors, i * n_factors
        _step_span(flat_table[lo:hi], flat_m[lo:hi], flat_v[lo:hi],
                   flat_grad[off : off + hi - lo], step_size, inv_root_bc2, b1, b2, eps)
        for jj in range(i, j):
            last[rows[jj]] = t
        i = j


def _n_chunks(b2: float, kcap: int, delta: float) -> int:
    """An upper bound on the chunks of :func:`_coefficients`: the log-range of ``e_k`` over
    ``kcap`` steps (bias correction from the first step plus ``beta2``'s decay) / ``delta``."""
    log_range = 0.5 * math.log(1.0 / (1.0 - b2)) - 0.5 * kcap * math.log(b2)
    return int(math.ceil(log_range / delta)) + 2


def catch_up_rows(
    table: np.ndarray, m: np.ndarray, v: np.ndarray, last: np.ndarray, rows: np.ndarray,
    t: int, lr: float, betas: tuple[float, float], eps: float, kcap: int, delta: float,
) -> None:
    """Bring ``rows`` of a catch-up Adam table current to step ``t`` (in place).

    The arrays are :class:`~avocado_core.training.CatchUpAdam`'s (the table, its moments and
    each row's step, shared with its tensors); see there for the method and its parameters.
    """
    _catch_up(table, m, v, last, rows, t, lr, betas[0], betas[1], eps, kcap, delta,
              _n_chunks(betas[1], kcap, delta))


def adam_rows(
    table: np.ndarray, m: np.ndarray, v: np.ndarray, last: np.ndarray, rows: np.ndarray,
    grad: np.ndarray, t: int, lr: float, betas: tuple[float, float], eps: float,
) -> None:
    """Adam step ``t`` of ``rows`` (current to ``t - 1``) with gradients ``grad`` (in place)."""
    _step(table, m, v, last, rows, grad, t, lr, betas[0], betas[1], eps)
