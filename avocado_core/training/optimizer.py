"""Catch-up Adam: dense Adam for a big embedding table at the cost of the rows a step touches."""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import kernels
from ..errors import AvocadoValueError

__all__ = ["CatchUpAdam"]


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
        self.lr, (self.b1, self.b2), self.eps = float(lr), betas, float(eps)
        self.kcap, self.delta = int(kcap), float(delta)
        # (s, k) -> coefficients; tables of one trainer share it (their rows' groups repeat).
        self.memo: dict = {} if memo is None else memo
        self.m = torch.zeros_like(table)
        self.v = torch.zeros_like(table)
        # The step each row is current to (0: never stepped, moments are zero).
        self.last = torch.zeros(table.shape[0], dtype=torch.long, device=table.device)
        self.kernel = (kernel and table.device.type == "cpu" and table.dtype == torch.float32
                       and table.is_contiguous())

    def _row_array(self, rows: torch.Tensor | slice) -> np.ndarray:
        """``rows`` as an int64 array (for the kernels)."""
        if isinstance(rows, slice):
            return np.arange(*rows.indices(self.table.shape[0]), dtype=np.int64)
        return rows.numpy()

    def _coefficients(
        self, s: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-group chunk coefficients for groups of rows current to step s missing k steps.

        Returns ``ebar`` (G, C) and ``moments`` (G, C, 4): M0, nu2, nu3, nu4 (central moments
        of e around ebar relative to ebar**p, weighted by w).
        """
        f64 = torch.float64
        kc = k.clamp(min=0, max=self.kcap)
        if int(kc.max()) == 0:  # nothing missed
            return (torch.full((len(s), 1), self.eps, dtype=f64),
                    torch.zeros((len(s), 1, 4), dtype=f64))
        steps = torch.arange(1, int(kc.max()) + 1, dtype=f64)
        j = s.to(f64)[:, None] + steps[None, :]
        valid = steps[None, :] <= kc.to(f64)[:, None]
        lb1, lb2 = math.log(self.b1), math.log(self.b2)
        bc1 = -torch.expm1(j * lb1)
        bc2 = -torch.expm1(j * lb2)
        root = torch.sqrt(bc2) * torch.exp(-0.5 * lb2 * steps)[None, :]
        w = torch.exp(lb1 * steps)[None, :] * root / bc1 * valid
        e = self.eps * root
        loge = torch.log(e)
        chunk = torch.floor((loge - loge[:, :1]) / self.delta).long().clamp(min=0)
        chunk = torch.where(valid, chunk, torch.zeros_like(chunk))
        n_chunks = int(chunk.max()) + 1
        g = s.shape[0]
        m0 = torch.zeros(g, n_chunks, dtype=f64).scatter_add_(1, chunk, w)
        safe = torch.where(m0 > 0, m0, torch.ones_like(m0))
        ebar = torch.zeros(g, n_chunks, dtype=f64).scatter_add_(1, chunk, w * e) / safe
        ebar = torch.where(m0 > 0, ebar, torch.full_like(ebar, self.eps))
        rel = e / torch.gather(ebar, 1, chunk) - 1.0
        moments = [m0]
        for power in (2, 3, 4):
            mp = torch.zeros(g, n_chunks, dtype=f64).scatter_add_(1, chunk, w * rel**power)
            moments.append(mp / safe)
        return ebar, torch.stack(moments, dim=2)

    def _group_coefficients(
        self, s: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_coefficients` through the memo (for the few groups of a training step)."""
        if len(s) > 64:
            return self._coefficients(s, k)
        keys = list(zip(s.tolist(), k.tolist()))
        if len(self.memo) > 4096:  # bound the memo; clear it before choosing what to compute
            self.memo.clear()
        missing = [key for key in dict.fromkeys(keys) if key not in self.memo]
        if missing:
            ms = torch.tensor([key[0] for key in missing])
            mk = torch.tensor([key[1] for key in missing])
            ebar, mom = self._coefficients(ms, mk)
            for i, key in enumerate(missing):
                self.memo[key] = (ebar[i], mom[i])
        n_chunks = max(self.memo[key][0].shape[0] for key in keys)
        ebar = torch.full((len(keys), n_chunks), self.eps, dtype=torch.float64)
        mom = torch.zeros((len(keys), n_chunks, 4), dtype=torch.float64)
        for i, key in enumerate(keys):  # a loop over the step's few groups of rows
            e_i, m_i = self.memo[key]
            ebar[i, : len(e_i)] = e_i
            mom[i, : len(e_i)] = m_i
        return ebar, mom

    def catch_up(self, rows: torch.Tensor | slice, t: int) -> None:
        """Bring rows current to step ``t`` (apply the zero-gradient steps they missed).

        Parameters
        ----------
        rows: torch.Tensor of int64 (unique) or slice
            Rows to bring up to date.
        t: int
            The step they must be current to.
        """
        if self.kernel:
            kernels.catch_up_rows(
                self.table.numpy(), self.m.numpy(), self.v.numpy(), self.last.numpy(),
                self._row_array(rows), t, self.lr, (self.b1, self.b2), self.eps, self.kcap,
                self.delta,
            )
            return
        last = self.last[rows]
        missed = t - last
        if not bool((missed > 0).any()):
            return
        if isinstance(rows, slice):
            # A sequential batch's rows were last touched together: a few runs of equal
            # ``last``, each caught up with scalar coefficients (no per-row gathers).
            runs, counts = torch.unique_consecutive(last, return_counts=True)
            if len(runs) <= 8:
                ebar, mom = self._group_coefficients(runs.cpu(), (t - runs).cpu())
                lo = rows.start or 0
                for i, (run, n) in enumerate(zip(runs.tolist(), counts.tolist())):
                    if run < t:
                        self._catch_up_run(slice(lo, lo + n), t - run, ebar[i], mom[i])
                    lo += n
                self.last[rows] = t
                return
        groups, inverse = torch.unique(last, return_inverse=True)
        k_groups = t - groups
        dtype = self.table.dtype
        if isinstance(rows, slice):
            p, m, v = self.table[rows], self.m[rows], self.v[rows]
        else:
            p, m, v = self.table[rows], self.m[rows], self.v[rows]
        root = torch.sqrt(v)
        total = torch.zeros_like(p)
        for lo in range(0, len(groups), 2048):  # bounded memory when many groups
            sel = slice(lo, lo + 2048)
            ebar, mom = self._group_coefficients(groups[sel].cpu(), k_groups[sel].cpu())
            ebar = ebar.to(device=p.device, dtype=dtype)
            mom = mom.to(device=p.device, dtype=dtype)
            inv = inverse - lo
            in_block = (inv >= 0) & (inv < ebar.shape[0])
            idx = inv.clamp(0, ebar.shape[0] - 1)
            for c in range(ebar.shape[1]):
                eb = ebar[idx, c][:, None]
                mc = mom[idx, c]
                inv_d = 1.0 / (root + eb)
                z = eb * inv_d
                poly = 1.0 + z * z * (mc[:, 1:2] + z * (-mc[:, 2:3] + z * mc[:, 3:4]))
                contrib = (mc[:, 0:1] * self.lr) * inv_d * poly
                if len(groups) > 2048:
                    contrib = contrib * in_block[:, None]
                total += contrib
        p -= m * total
        kf = missed.to(dtype)[:, None]
        m *= torch.exp(kf * math.log(self.b1))
        v *= torch.exp(kf * math.log(self.b2))
        if isinstance(rows, slice):
            self.last[rows] = t
        else:
            self.table[rows] = p
            self.m[rows] = m
            self.v[rows] = v
            self.last[rows] = t

    def _catch_up_run(
        self, rows: slice, k: int, ebar: torch.Tensor, moments: torch.Tensor
    ) -> None:
        """:meth:`catch_up` of rows that all missed the same ``k`` steps (in place)."""
        p, m, v = self.table[rows], self.m[rows], self.v[rows]
        root = v.sqrt()
        total = torch.zeros_like(p)
        inv_d, poly = torch.empty_like(p), torch.empty_like(p)
        for eb, (m0, nu2, nu3, nu4) in zip(ebar.tolist(), moments.tolist()):
            if m0 == 0.0:
                continue
            torch.add(root, eb, out=inv_d).reciprocal_()  # 1 / (root + ebar)
            z = inv_d * eb
            # poly = 1 + z^2 (nu2 + z (-nu3 + z nu4)), in place
            torch.mul(z, nu4, out=poly).sub_(nu3).mul_(z).add_(nu2).mul_(z).mul_(z).add_(1.0)
            total.addcmul_(inv_d, poly, value=m0 * self.lr)
        p.addcmul_(m, total, value=-1.0)
        m.mul_(self.b1**k)
        v.mul_(self.b2**k)

    def step(self, rows: torch.Tensor | slice, grad: torch.Tensor, t: int) -> None:
        """Adam step ``t`` for rows that are current to ``t - 1``.

        Parameters
        ----------
        rows: torch.Tensor of int64 (unique) or slice
        grad: torch.Tensor, shape=(n_rows, n_factors)
            The summed gradient of each row.
        t: int
            The step number (1 for the first).
        """
        if self.kernel:
            kernels.adam_rows(
                self.table.numpy(), self.m.numpy(), self.v.numpy(), self.last.numpy(),
                self._row_array(rows), grad.contiguous().numpy(), t, self.lr,
                (self.b1, self.b2), self.eps,
            )
            return
        b1, b2 = self.b1, self.b2
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        if isinstance(rows, slice):
            p, m, v = self.table[rows], self.m[rows], self.v[rows]
        else:
            p, m, v = self.table[rows], self.m[rows], self.v[rows]
        m.mul_(b1).add_(grad, alpha=1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (v.sqrt() / math.sqrt(bc2)).add_(self.eps)
        p.addcdiv_(m, denom, value=-self.lr / bc1)
        if not isinstance(rows, slice):
            self.table[rows] = p
            self.m[rows] = m
            self.v[rows] = v
        self.last[rows] = t

    def finalize(self, t: int, chunk_rows: int = 1 << 16) -> None:
        """Bring every row current to step ``t`` (before predicting or saving)."""
        for lo in range(0, self.table.shape[0], chunk_rows):
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
