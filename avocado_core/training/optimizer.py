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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import kernels
from ..errors import AvocadoValueError
from .transfer import to_device

__all__ = ["FUSED_ADAM_DEVICES", "CatchUp", "CatchUpAdam", "catch_up_tables", "fused_adam_step",
           "step_tables"]

#: Rows of a table's index: a slice (a contiguous run, updated through views) or, on the
#: device, an int64 tensor of distinct rows (gathered and written back).
Index = slice | torch.Tensor
#: Device types of torch's fused Adam kernel (``torch._fused_adam_``).
FUSED_ADAM_DEVICES = ("cpu", "cuda", "meta")
#: Staleness groups whose coefficients are computed at once (bounded memory: each holds
#: ``kcap`` steps of float64 per group).
_GROUP_BLOCK = 2048
#: A slice whose rows fall in at most this many runs of equal staleness is caught up run by
#: run with scalar coefficients (no per-row gathers).
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

    def plan_catch_up(self, rows: np.ndarray | slice, t: int) -> CatchUp | None:
        """Plan, on the host, bringing ``rows`` current to step ``t``; mark them current.

        With the compiled kernel (CPU) the rows are caught up here and then; otherwise the
        returned plan says what :func:`catch_up_tables` does on the device.

        Parameters
        ----------
        rows: numpy.ndarray of int64 (unique) or slice
            Rows to bring up to date.
        t: int
            The step they must be current to.

        Returns
        -------
        CatchUp or None
            None when there is nothing left to do.
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
        missed = t - last
        if not (missed > 0).any():
            return None
        plan = CatchUp(self, rows)
        runs = np.flatnonzero(last[1:] != last[:-1]) + 1
        if isinstance(rows, slice) and len(runs) < _MAX_RUNS:
            # A sequential batch's rows were last touched together: a few runs of equal
            # ``last``, each caught up with scalar coefficients (no per-row gathers).
            starts, ends = [0, *runs.tolist()], [*runs.tolist(), len(last)]
            stale = [(a, b, int(last[a])) for a, b in zip(starts, ends) if last[a] < t]
            s = np.array([run[2] for run in stale])
            ebar, mom = self._group_coefficients(s, t - s)
            plan.runs = [(slice(rows.start + a, rows.start + b), t - s_run, ebar[i], mom[i])
                         for i, (a, b, s_run) in enumerate(stale)]
        else:
            groups, inverse = np.unique(last, return_inverse=True)
            blocks = [self._group_coefficients(groups[lo : lo + _GROUP_BLOCK],
                                               t - groups[lo : lo + _GROUP_BLOCK])
                      for lo in range(0, len(groups), _GROUP_BLOCK)]
            n_chunks = max(ebar.shape[1] for ebar, _ in blocks)
            ebar = np.full((len(groups), n_chunks), self.eps, dtype=np.float32)
            mom = np.zeros((len(groups), n_chunks, 4), dtype=np.float32)
            for i, (e_b, m_b) in enumerate(blocks):
                lo = i * _GROUP_BLOCK
                ebar[lo : lo + len(e_b), : e_b.shape[1]] = e_b
                mom[lo : lo + len(e_b), : e_b.shape[1]] = m_b
            plan.arrays = {"inverse": inverse.reshape(-1).astype(np.int64),
                           "missed": missed.astype(np.float32), "ebar": ebar, "moments": mom}
        self._last[rows] = t
        return plan

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
        plan = self.plan_catch_up(rows, t)
        if plan is not None:
            catch_up_tables([(plan, self._index(rows, index), to_device(plan.arrays,
                                                                         self.table.device))])

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
        step_tables([(self, rows, self._index(rows, index), grad)], t)

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
class CatchUp:
    """A catch-up of one table's rows, planned on the host (:meth:`CatchUpAdam.plan_catch_up`).

    Attributes
    ----------
    adam: CatchUpAdam
    rows: slice or numpy.ndarray
        The rows, on the host.
    runs: list of (slice, int, numpy.ndarray, numpy.ndarray)
        Runs of rows that missed the same steps: their rows, the number of missed steps, and
        the chunk coefficients ``ebar`` (C,) and ``moments`` (C, 4).
    arrays: dict of str to numpy.ndarray
        Otherwise, what the device needs, per row: ``inverse`` (its staleness group) and
        ``missed`` (steps), and per group ``ebar`` (G, C) and ``moments`` (G, C, 4).
    """

    adam: CatchUpAdam
    rows: slice | np.ndarray
    runs: list[tuple[slice, int, np.ndarray, np.ndarray]] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def catch_up_tables(plans: Sequence[tuple[CatchUp, Index, Mapping[str, torch.Tensor]]]
                    ) -> None:
    """Carry out catch-ups on the device: each ``(plan, index, arrays)`` with its rows'
    ``index`` on the device and its ``plan.arrays`` uploaded as ``arrays``.

    The runs of every plan are updated together, one foreach operation per arithmetic step
    (a sequential batch's rows of the three genome tables: about 20 operations in all).
    """
    _catch_up_runs([(plan.adam, *run) for plan, _, _ in plans for run in plan.runs])
    for plan, index, arrays in plans:
        if plan.arrays:
            _catch_up_rows(plan.adam, index, arrays)


def _catch_up_runs(runs: list[tuple[CatchUpAdam, slice, int, np.ndarray, np.ndarray]]) -> None:
    """Catch up runs of rows that each missed the same steps, with scalar coefficients."""
    if not runs:
        return
    ps = [adam.table[rows] for adam, rows, *_ in runs]
    ms = [adam.m[rows] for adam, rows, *_ in runs]
    vs = [adam.v[rows] for adam, rows, *_ in runs]
    roots = torch._foreach_sqrt(vs)
    totals = torch._foreach_mul(roots, 0.0)  # zeros shaped like the rows (roots are finite)
    for c in range(max(len(ebar) for *_, ebar, _ in runs)):
        live = [i for i, (*_, ebar, mom) in enumerate(runs) if c < len(ebar) and mom[c, 0]]
        if not live:
            continue
        eb = [float(runs[i][3][c]) for i in live]
        m0, nu2, nu3, nu4 = (list(col) for col in zip(*(runs[i][4][c].tolist() for i in live)))
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
        torch._foreach_addcmul_([totals[i] for i in live], inv_d, poly,
                                [m0_i * runs[i][0].lr for m0_i, i in zip(m0, live)])
    torch._foreach_addcmul_(ps, ms, totals, value=-1.0)
    torch._foreach_mul_(ms, [adam.b1**k for adam, _, k, *_ in runs])
    torch._foreach_mul_(vs, [adam.b2**k for adam, _, k, *_ in runs])


def _catch_up_rows(adam: CatchUpAdam, index: Index, arrays: Mapping[str, torch.Tensor]) -> None:
    """Catch up rows of any staleness: each row's group coefficients gathered per row."""
    table, dtype = adam.table, adam.table.dtype
    p, m, v = table[index], adam.m[index], adam.v[index]
    root = torch.sqrt(v)
    total = torch.zeros_like(p)
    ebar = arrays["ebar"].to(dtype).index_select(0, arrays["inverse"])
    mom = arrays["moments"].to(dtype).index_select(0, arrays["inverse"])
    for c in range(ebar.shape[1]):
        eb = ebar[:, c : c + 1]
        mc = mom[:, c]
        inv_d = 1.0 / (root + eb)
        z = eb * inv_d
        poly = 1.0 + z * z * (mc[:, 1:2] + z * (-mc[:, 2:3] + z * mc[:, 3:4]))
        total += (mc[:, 0:1] * adam.lr) * inv_d * poly
    p -= m * total
    kf = arrays["missed"].to(dtype)[:, None]
    m *= torch.exp(kf * math.log(adam.b1))
    v *= torch.exp(kf * math.log(adam.b2))
    if not isinstance(index, slice):
        table[index] = p
        adam.m[index] = m
        adam.v[index] = v


def step_tables(items: Sequence[tuple[CatchUpAdam, np.ndarray | slice, Index, torch.Tensor]],
                t: int) -> None:
    """Adam step ``t`` of rows of several tables: ``(adam, rows, index, grad)`` each, with
    the rows on the host and their ``index`` on the device, current to ``t - 1``.

    Tables that share their hyperparameters step together, one foreach operation per
    arithmetic step of Adam.
    """
    torch_items = []
    for adam, rows, index, grad in items:
        if adam.kernel:
            kernels.adam_rows(
                adam.table.numpy(), adam.m.numpy(), adam.v.numpy(), adam._last,
                adam._row_array(rows), grad.contiguous().numpy(), t, adam.lr,
                (adam.b1, adam.b2), adam.eps,
            )
        else:
            torch_items.append((adam, index, grad))
            adam._last[rows] = t
    by_setting: dict[tuple, list] = {}
    for adam, index, grad in torch_items:
        by_setting.setdefault((adam.lr, adam.b1, adam.b2, adam.eps), []).append(
            (adam, index, grad))
    for (lr, b1, b2, eps), group in by_setting.items():
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        ps = [adam.table[index] for adam, index, _ in group]
        ms = [adam.m[index] for adam, index, _ in group]
        vs = [adam.v[index] for adam, index, _ in group]
        grads = [grad for *_, grad in group]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, grads, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, math.sqrt(bc2))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(ps, ms, denom, value=-lr / bc1)
        for (adam, index, _), p, m, v in zip(group, ps, ms, vs):
            if not isinstance(index, slice):  # gathered rows: write them back
                adam.table[index] = p
                adam.m[index] = m
                adam.v[index] = v


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
