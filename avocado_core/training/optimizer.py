"""Catch-up Adam: dense Adam for a big embedding table at the cost of the rows a step touches.

The work of a step is split between the host and the device. The host keeps the bookkeeping:
the step each row is current to, which rows missed steps, and the coefficients of the missed
steps (numpy, from a mirror that never leaves the host); the device only updates rows, with
coefficients and indices handed to it. So a step on a GPU never waits for the GPU to answer a
question (no host synchronisation). :func:`catch_up_tables` and :func:`step_tables` update the
rows of several tables with one foreach operation per arithmetic step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .. import kernels
from ..errors import AvocadoValueError
from .transfer import to_device

__all__ = ["FUSED_ADAM_DEVICES", "CatchUpAdam", "TableRows", "catch_up_tables",
           "fused_adam_step", "put_rows", "step_tables", "take_rows"]

#: Rows of a table's index: a slice (a contiguous run, updated through views) or, on the
#: device, an int64 tensor of distinct rows (gathered and written back).
Index = slice | torch.Tensor
#: Device types of torch's fused Adam kernel (``torch._fused_adam_``).
FUSED_ADAM_DEVICES = ("cpu", "cuda", "meta")
#: Staleness groups whose coefficients are computed at once (bounded memory: each holds
#: ``kcap`` steps of float64 per group).
_GROUP_BLOCK = 2048
#: Rows that fall in fewer runs of equal staleness than this are grouped by their runs (no
#: sort); others by :func:`numpy.unique`.
_MAX_RUNS = 8


class CatchUpAdam:
    """Dense Adam for a big embedding table at the cost of the rows a step touches.

    Dense Adam moves every row at every step: with a zero gradient, a row's moments decay
    (``m *= beta1``, ``v *= beta2``) and it keeps moving on its decaying momentum. Updating only
    the touched rows ("lazy Adam") drops those moves and trains genome factors far worse.
    Here each row remembers the step it is current to; just before a row is used again the
    steps it missed are applied at once: the moments decay by ``beta1**k`` / ``beta2**k``
    exactly, and the missed weight updates ``sum_k lr * w_k * m / (sqrt(v) + e_k)`` (``w_k`` and
    ``e_k`` carry the bias corrections and epsilon of each missed step) are summed by a short
    moment expansion around the mean ``e_k`` of each of a few chunks of the missed steps (a
    relative error below about 1e-6 of the catch-up; the chunks are chosen so that ``e_k``
    varies by at most ``exp(delta)`` within one). Terms after ``kcap`` missed steps are below
    ``beta1**kcap`` of the first and are dropped.

    Parameters
    ----------
    table: torch.Tensor, shape=(n_rows, n_factors)
        The parameter (updated in place).
    lr: float
        Learning rate.
    betas: tuple of float
        Adam's betas.
    eps: float
        Adam's epsilon (torch formulation), must be positive.
    kcap: int, optional
        Missed steps summed at most. Default is 400 (``0.9**400`` is 5e-19).
    delta: float, optional
        Largest log-range of ``e_k`` within one chunk. Default is 0.25.
    memo: dict or None, optional
        Coefficients by (step, missed steps), shared by the tables of one trainer. Default is
        None (a new one).
    kernel: bool, optional
        On CPU, update rows with the compiled kernels of :mod:`avocado_core.kernels` (one pass
        over the rows instead of some 30 torch operations). Default is True.
    """

    def __init__(
        self,
        table: torch.Tensor,
        lr: float,
        betas: tuple[float, float],
        eps: float,
        kcap: int = 400,
        delta: float = 0.25,
        memo: dict | None = None,
        kernel: bool = True,
    ) -> None:
        if eps <= 0:
            raise AvocadoValueError(f"catch-up Adam needs eps > 0, got {eps}")
        self.table = table
        self.n_rows = table.shape[0]
        self.lr, (self.b1, self.b2), self.eps = float(lr), betas, float(eps)
        self.kcap, self.delta = int(kcap), float(delta)
        # (s, k) -> coefficients; tables of one trainer share it (their rows' groups repeat).
        self.memo: dict = {} if memo is None else memo
        self.m = torch.zeros_like(table)
        self.v = torch.zeros_like(table)
        # The step each row is current to (0: never stepped, moments are zero), on the host
        # whatever the table's device: every step reads it to plan the catch-up, and reading
        # it from a GPU would make the host wait for the GPU.
        self.last = torch.zeros(table.shape[0], dtype=torch.long)
        self._last = self.last.numpy()  # the same memory
        self.kernel = (kernel and table.device.type == "cpu" and table.dtype == torch.float32
                       and table.is_contiguous())

    def _row_array(self, rows: np.ndarray | slice) -> np.ndarray:
        """``rows`` as an int64 array (for the kernels)."""
        if isinstance(rows, slice):
            return np.arange(*rows.indices(self.n_rows), dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)

    def _coefficients(self, s: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-group chunk coefficients for groups of rows current to step s missing k steps.

        Returns ``ebar`` (G, C) and ``moments`` (G, C, 4): M0, nu2, nu3, nu4 (central moments
        of e around ebar relative to ebar**p, weighted by w), float64.
        """
        s = np.asarray(s, dtype=np.float64)
        kc = np.clip(np.asarray(k), 0, self.kcap)
        g = len(s)
        if g == 0 or int(kc.max()) == 0:  # nothing missed
            return np.full((g, 1), self.eps), np.zeros((g, 1, 4))
        steps = np.arange(1, int(kc.max()) + 1, dtype=np.float64)
        j = s[:, None] + steps[None, :]
        valid = steps[None, :] <= kc[:, None]
        lb1, lb2 = math.log(self.b1), math.log(self.b2)
        bc1 = -np.expm1(j * lb1)
        bc2 = -np.expm1(j * lb2)
        root = np.sqrt(bc2) * np.exp(-0.5 * lb2 * steps)[None, :]
        w = np.exp(lb1 * steps)[None, :] * root / bc1 * valid
        e = self.eps * root
        loge = np.log(e)
        chunk = np.clip(np.floor((loge - loge[:, :1]) / self.delta), 0, None).astype(np.int64)
        chunk = np.where(valid, chunk, 0)
        n_chunks = int(chunk.max()) + 1
        # per group and chunk sums, as one bincount over (group, chunk) cells
        cell = (np.arange(g)[:, None] * n_chunks + chunk).ravel()

        def chunk_sum(x: np.ndarray) -> np.ndarray:
            return np.bincount(cell, weights=x.ravel(), minlength=g * n_chunks).reshape(
                g, n_chunks)

        m0 = chunk_sum(w)
        safe = np.where(m0 > 0, m0, 1.0)
        ebar = np.where(m0 > 0, chunk_sum(w * e) / safe, self.eps)
        rel = e / np.take_along_axis(ebar, chunk, 1) - 1.0
        moments = [m0] + [chunk_sum(w * rel**power) / safe for power in (2, 3, 4)]
        return ebar, np.stack(moments, axis=2)

    def _group_coefficients(self, s: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_coefficients` through the memo (for the few groups of a training step)."""
        if len(s) > 64:
            return self._coefficients(s, k)
        keys = list(zip(np.asarray(s).tolist(), np.asarray(k).tolist()))
        if len(self.memo) > 4096:  # bound the memo; clear it before choosing what to compute
            self.memo.clear()
        missing = [key for key in dict.fromkeys(keys) if key not in self.memo]
        if missing:
            ebar, mom = self._coefficients(np.array([key[0] for key in missing]),
                                           np.array([key[1] for key in missing]))
            for i, key in enumerate(missing):
                self.memo[key] = (ebar[i], mom[i])
        n_chunks = max(self.memo[key][0].shape[0] for key in keys)
        ebar = np.full((len(keys), n_chunks), self.eps)
        mom = np.zeros((len(keys), n_chunks, 4))
        for i, key in enumerate(keys):  # a loop over the step's few groups of rows
            e_i, m_i = self.memo[key]
            ebar[i, : len(e_i)] = e_i
            mom[i, : len(e_i)] = m_i
        return ebar, mom

    def plan_catch_up(self, rows: np.ndarray | slice, t: int) -> np.ndarray | None:
        """Plan, on the host, bringing ``rows`` current to step ``t``; mark them current.

        With the compiled kernel (CPU) the rows are caught up here and then; otherwise the
        returned coefficients say what :func:`catch_up_tables` does on the device.

        Parameters
        ----------
        rows: numpy.ndarray of int64 (unique) or slice
            Rows to bring up to date.
        t: int
            The step they must be current to.

        Returns
        -------
        numpy.ndarray of float32, shape=(2 + 5 * n_chunks, n_rows, 1), or None
            Each row's coefficients: ``beta1**k`` and ``beta2**k`` of its ``k`` missed steps,
            then per chunk ``ebar``, ``lr * M0``, ``nu2``, ``nu3``, ``nu4`` (see
            :meth:`_coefficients`; a row current to ``t`` gets 1, 1 and chunks that add
            nothing). None when there is nothing left to do.
        """
        if self.kernel:
            kernels.catch_up_rows(
                self.table.numpy(), self.m.numpy(), self.v.numpy(), self._last,
                self._row_array(rows), t, self.lr, (self.b1, self.b2), self.eps, self.kcap,
                self.delta,
            )
            return None
        if isinstance(rows, slice):
            rows = slice(*rows.indices(self.n_rows))
        last = self._last[rows]
        if not (last < t).any():
            return None
        runs = np.flatnonzero(last[1:] != last[:-1]) + 1
        if len(runs) < _MAX_RUNS:
            # A sequential batch's rows were last touched together: a few runs of equal
            # ``last`` (no sort).
            starts = np.concatenate([[0], runs])
            groups = last[starts]
            inverse = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(last))))
        else:
            groups, inverse = np.unique(last, return_inverse=True)
        blocks = [self._group_coefficients(groups[lo : lo + _GROUP_BLOCK],
                                           t - groups[lo : lo + _GROUP_BLOCK])
                  for lo in range(0, len(groups), _GROUP_BLOCK)]
        n_chunks = max(ebar.shape[1] for ebar, _ in blocks)
        coef = np.zeros((len(groups), 2 + 5 * n_chunks))
        coef[:, 2::5] = self.eps  # (chunks that add nothing: any positive ebar)
        for i, (ebar, mom) in enumerate(blocks):
            at, width = slice(i * _GROUP_BLOCK, i * _GROUP_BLOCK + len(ebar)), ebar.shape[1]
            coef[at, 2 : 2 + 5 * width : 5] = ebar
            coef[at, 3 : 3 + 5 * width : 5] = mom[:, :, 0] * self.lr
            for j in range(1, 4):
                coef[at, 3 + j : 3 + j + 5 * width : 5] = mom[:, :, j]
        missed = (t - groups).astype(np.float64)
        coef[:, 0], coef[:, 1] = self.b1**missed, self.b2**missed
        self._last[rows] = t
        return coef.T.astype(np.float32)[:, inverse.reshape(-1), None]

    def catch_up(self, rows: np.ndarray | slice, t: int, index: Index | None = None) -> None:
        """Bring rows current to step ``t`` (apply the zero-gradient steps they missed): what
        :meth:`plan_catch_up` plans, done.

        Parameters
        ----------
        rows, t:
            As in :meth:`plan_catch_up`.
        index: slice or torch.Tensor or None, optional
            The same rows on the table's device. Default is None: uploaded here.
        """
        coef = self.plan_catch_up(rows, t)
        if coef is not None:
            held = take_rows(self, rows, self._index(rows, index))
            catch_up_tables([(held, to_device({"c": coef}, self.table.device)["c"])])
            put_rows([held])

    def step(self, rows: np.ndarray | slice, grad: torch.Tensor, t: int,
             index: Index | None = None) -> None:
        """Adam step ``t`` for rows that are current to ``t - 1``.

        Parameters
        ----------
        rows: numpy.ndarray of int64 (unique) or slice
        grad: torch.Tensor, shape=(n_rows, n_factors)
            The summed gradient of each row.
        t: int
            The step number (1 for the first).
        index: slice or torch.Tensor or None, optional
            The same rows on the table's device. Default is None: uploaded here.
        """
        held = take_rows(self, rows, self._index(rows, index))
        step_tables([(held, grad)], t)
        put_rows([held])

    def _index(self, rows: np.ndarray | slice, index: Index | None) -> Index:
        """``index`` or, when None, ``rows`` on the table's device."""
        if index is not None or isinstance(rows, slice):
            return rows if index is None else index
        return to_device({"rows": np.asarray(rows, dtype=np.int64)}, self.table.device)["rows"]

    def finalize(self, t: int, chunk_rows: int = 1 << 16) -> None:
        """Bring every row current to step ``t`` (before predicting or saving)."""
        for lo in range(0, self.n_rows, chunk_rows):
            self.catch_up(slice(lo, lo + chunk_rows), t)

    def current(self, rows: slice, t: int) -> torch.Tensor:
        """The values ``rows`` would have when brought current to step ``t``, leaving this
        optimizer's state untouched (catching up in two parts rounds differently from at
        once, so a peek must not change the rows the training goes on with)."""
        peek = CatchUpAdam(self.table[rows].clone(), self.lr, (self.b1, self.b2), self.eps,
                           self.kcap, self.delta, memo=self.memo, kernel=self.kernel)
        peek.m.copy_(self.m[rows])
        peek.v.copy_(self.v[rows])
        peek.last.copy_(self.last[rows])
        peek.catch_up(slice(None), t)
        return peek.table


@dataclass
class TableRows:
    """The rows of one table that a step updates, taken once (:func:`take_rows`) for the
    catch-up, the forward pass and the Adam step.

    Attributes
    ----------
    adam: CatchUpAdam
    rows: slice or numpy.ndarray
        The rows, on the host.
    index: slice or torch.Tensor
        The same rows on the table's device.
    p: torch.Tensor
        Their values: a view of the table for a slice, else a gathered copy.
    m, v: torch.Tensor or None
        Their moments, likewise (None with the compiled kernel, which updates the table
        itself).
    """

    adam: CatchUpAdam
    rows: slice | np.ndarray
    index: Index
    p: torch.Tensor
    m: torch.Tensor | None = None
    v: torch.Tensor | None = None


def take_rows(adam: CatchUpAdam, rows: np.ndarray | slice, index: Index) -> TableRows:
    """The values and moments of ``adam``'s ``rows`` (``index`` on the device)."""
    if adam.kernel:
        return TableRows(adam, rows, index, adam.table[index])
    return TableRows(adam, rows, index, adam.table[index], adam.m[index], adam.v[index])


def put_rows(items: Sequence[TableRows]) -> None:
    """Write gathered copies back into their tables (views need nothing)."""
    for held in items:
        if held.m is not None and not isinstance(held.index, slice):
            held.adam.table[held.index] = held.p
            held.adam.m[held.index] = held.m
            held.adam.v[held.index] = held.v


def catch_up_tables(items: Sequence[tuple[TableRows, torch.Tensor]]) -> None:
    """Carry out catch-ups on the device: each ``(rows, coef)`` with the coefficients that
    :meth:`CatchUpAdam.plan_catch_up` planned for those rows, uploaded.

    The rows of every table are updated together, one foreach operation per arithmetic step
    (each row with its own coefficients, columns of ``coef``): about 20 operations in all.
    """
    if not items:
        return
    cols = [coef.unbind(0) for _, coef in items]
    roots = torch._foreach_sqrt([held.v for held, _ in items])
    totals: list[torch.Tensor] = []
    for c in range(max((len(col) - 2) // 5 for col in cols)):
        live = [i for i, col in enumerate(cols) if len(col) > 2 + 5 * c]
        eb, lr_m0, nu2, nu3, nu4 = ([cols[i][2 + 5 * c + j] for i in live] for j in range(5))
        inv_d = torch._foreach_add([roots[i] for i in live], eb)  # 1 / (root + ebar)
        torch._foreach_reciprocal_(inv_d)
        z = torch._foreach_mul(inv_d, eb)
        # poly = 1 + z^2 (nu2 + z (-nu3 + z nu4)), in place
        poly = torch._foreach_mul(z, nu4)
        torch._foreach_sub_(poly, nu3)
        torch._foreach_mul_(poly, z)
        torch._foreach_add_(poly, nu2)
        torch._foreach_mul_(poly, z)
        torch._foreach_mul_(poly, z)
        torch._foreach_add_(poly, 1.0)
        torch._foreach_mul_(inv_d, lr_m0)
        if c == 0:  # (every table has a first chunk: 0 + x would be x)
            totals = torch._foreach_mul(inv_d, poly)
        else:
            torch._foreach_addcmul_([totals[i] for i in live], inv_d, poly)
    torch._foreach_addcmul_([held.p for held, _ in items], [held.m for held, _ in items],
                            totals, value=-1.0)
    torch._foreach_mul_([held.m for held, _ in items], [col[0] for col in cols])
    torch._foreach_mul_([held.v for held, _ in items], [col[1] for col in cols])


def step_tables(items: Sequence[tuple[TableRows, torch.Tensor]], t: int) -> None:
    """Adam step ``t`` of rows of several tables: ``(rows, grad)`` each, rows current to
    ``t - 1`` (gathered copies are left to :func:`put_rows`).

    Tables that share their hyperparameters step together, one foreach operation per
    arithmetic step of Adam.
    """
    by_setting: dict[tuple, list] = {}
    for held, grad in items:
        adam = held.adam
        if adam.kernel:
            kernels.adam_rows(
                adam.table.numpy(), adam.m.numpy(), adam.v.numpy(), adam._last,
                adam._row_array(held.rows), grad.contiguous().numpy(), t, adam.lr,
                (adam.b1, adam.b2), adam.eps,
            )
        else:
            adam._last[held.rows] = t
            by_setting.setdefault((adam.lr, adam.b1, adam.b2, adam.eps), []).append(
                (held, grad))
    for (lr, b1, b2, eps), group in by_setting.items():
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        ms, vs = [held.m for held, _ in group], [held.v for held, _ in group]
        grads = [grad for _, grad in group]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, grads, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, math.sqrt(bc2))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_([held.p for held, _ in group], ms, denom, value=-lr / bc1)


def fused_adam_step(optimizer: torch.optim.Adam, grads: Sequence[torch.Tensor]) -> None:
    """One step of ``optimizer`` with the gradients ``grads`` of its parameters, in order.

    What ``optimizer.step()`` computes with ``fused=True`` (torch's fused Adam kernel on the
    optimizer's own state, created as it creates it), without its bookkeeping of about six
    torch calls per parameter and without going through ``.grad``. The state stays in
    ``optimizer.state``, so saving and loading it is unchanged. One parameter group, no
    weight decay, no amsgrad; the parameters on a device of :data:`FUSED_ADAM_DEVICES`.
    """
    [group] = optimizer.param_groups
    params = group["params"]
    states = [optimizer.state[p] for p in params]
    for p, state in zip(params, states):
        if not state:  # the first step
            state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    steps = [state["step"] for state in states]
    torch._foreach_add_(steps, 1)
    beta1, beta2 = group["betas"]
    torch._fused_adam_(params, list(grads), [state["exp_avg"] for state in states],
                       [state["exp_avg_sq"] for state in states], [], steps, amsgrad=False,
                       lr=group["lr"], beta1=beta1, beta2=beta2,
                       weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
