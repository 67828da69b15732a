"""The trainer: one optimization step of an AvocadoNetwork per call (fast and reference paths)."""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from .. import kernels
from ..errors import AvocadoValueError
from ..network import AvocadoNetwork
from .optimizer import CatchUpAdam
from .sampling import Sampler
from .sources import TrackSource

__all__ = ["GROUPS", "Trainer", "tune_malloc"]

#: Names of the parameter groups a trainer can update.
GROUPS = ("biosample", "assay", "25bp", "250bp", "5kbp", "network")


# ---------------------------------------------------------------------------------- process tuning
_MALLOC_TUNED: set[str] = set()


def tune_malloc(large_tensors: bool = False) -> bool:
    """Make glibc keep freed memory for reuse instead of unmapping it after every step.

    A training step allocates and frees tensors of a few MB; by default glibc serves those
    with fresh ``mmap``s whose pages the kernel must fault in and zero every time. Raising the
    mmap and trim thresholds (what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` /
    ``MALLOC_TOP_PAD_`` do) made steps about 1.3-1.6x faster here. glibc caps the mmap
    threshold at 32 MiB, so a step with larger tensors (the paper configuration's activations
    are 160-330 MB) still pays those page faults on every pass over them: with
    ``large_tensors`` glibc stops using ``mmap`` for allocations altogether
    (``MALLOC_MMAP_MAX_=0``), which made the paper configuration's bf16 element-wise passes
    about 3x faster. Freed memory then stays with the process for reuse (its peak is reached
    at every step anyway). It is process-wide and applied once; set ``AVOCADO_MALLOC_TUNING=0``
    to leave malloc alone.

    Parameters
    ----------
    large_tensors: bool, optional
        Also serve allocations above 32 MiB from the heap. Default is False.

    Returns
    -------
    bool
        Whether the settings were applied (glibc only).
    """
    want = {"thresholds", *(["no-mmap"] if large_tensors else [])}
    if os.environ.get("AVOCADO_MALLOC_TUNING", "1") == "0":
        return False
    if want <= _MALLOC_TUNED:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold, m_mmap_max = -1, -2, -3, -4
        ok = libc.mallopt(m_mmap_threshold, 32 * 2**20) == 1
        ok &= libc.mallopt(m_trim_threshold, 1 * 2**30) == 1
        ok &= libc.mallopt(m_top_pad, 64 * 2**20) == 1
        if large_tensors:
            ok &= libc.mallopt(m_mmap_max, 0) == 1
    except (OSError, AttributeError):
        return False
    if ok:
        _MALLOC_TUNED.update(want)
    return bool(ok)


# ---------------------------------------------------------------------------------- trainer
#: Rows per product of the backward pass through a hidden layer (its input gradient is built
#: this many rows at a time in a buffer of rows x width, then written over the activations).
BACKWARD_ROWS = 4096


class Trainer:
    """Runs optimization steps of an :class:`AvocadoNetwork` with Adam.

    Two interchangeable paths compute the same thing:

    - ``optimizer="catchup"`` (default, fast): the first layer is split into a genome term
      computed once per distinct row of each genome table and a biosample + assay term computed
      once per experiment; the gradient of the embedding part is written by hand (autograd runs
      only through the rest of the MLP); the three genome tables use :class:`CatchUpAdam`, so
      a step costs what its rows cost while keeping dense Adam's results; the MLP and the
      small biosample / assay tables take a fused dense Adam step.
    - ``optimizer="dense"``: the plain port (full autograd, ``torch.optim.Adam`` over every
      parameter, every row every step); the reference the fast path is tested against.

    Parameters
    ----------
    network: AvocadoNetwork
        The network to train (in place).
    biosample_index, assay_index: array-like of int, shape=(n_experiments,)
        Biosample and assay row of each training experiment of ``source``.
    source: TrackSource
        Training values.
    batch_size: int
        Samples per step.
    learning_rate: float, optional
        Adam's learning rate. Default is 0.001.
    biosample_decay: float, optional
        After each step, multiply the trained rows of the biosample embedding by
        ``1 - biosample_decay`` (decoupled weight decay). Default is 0.0.
    train_groups: sequence of str, optional
        Which parameter groups train, among ``"biosample"``, ``"assay"``, ``"25bp"``,
        ``"250bp"``, ``"5kbp"``, ``"network"``. Default is all of them.
    trainable_rows: dict of str to array of int, optional
        Restrict the ``"biosample"`` or ``"assay"`` group to these rows (the others stay
        bit-for-bit unchanged).
    sampling: str, optional
        See :class:`Sampler`. Default is ``"sequential"``.
    seed: int or None, optional
        Seed of the sampler. Default is None.
    precision: str, optional
        ``"fp32"`` or ``"bf16"`` (the MLP's activations, their gradients and its matrix
        products in bfloat16, accumulating in fp32; parameters, Adam, the loss and the genome
        terms of the first layer stay fp32). Default is ``"fp32"``.
    betas: tuple of float, optional
        Adam's betas. Default is (0.9, 0.999).
    eps: float, optional
        Adam's epsilon (torch formulation: added to the bias-corrected root). Default is 1e-7,
        Keras' default.
    optimizer: str, optional
        ``"catchup"`` or ``"dense"`` (see above). Default is ``"catchup"``.
    threads: int or None, optional
        torch threads while :func:`train` runs. Default is None: one thread for a small MLP
        on CPU (measured faster than two: the steps are too short to share), else torch's
        setting.
    kernel: bool, optional
        On CPU, use the compiled kernels of :mod:`avocado_core.kernels` (same results to
        rounding): for the catch-up Adam's row updates and, with one hidden layer, one output
        and fp32, for the network's forward and backward pass. Default is True; False runs
        torch operations only.
    activity_input: object or None, optional
        For a network with an average-activity input (``n_activity_inputs=1``): its
        ``input_values(experiments, positions, y)`` gives each sample's input value from the
        batch's experiments, positions and observed values (e.g.
        :class:`~avocado_core.residual.ResidualSource`). The input joins each sample's 25 bp
        factors, so the fast path and the compiled kernel run unchanged. Default is None.
    positions: array-like or None, optional
        Train on these positions only (see :class:`Sampler`). Default is None: all of them.
    """

    def __init__(
        self,
        network: AvocadoNetwork,
        biosample_index: Sequence[int] | np.ndarray,
        assay_index: Sequence[int] | np.ndarray,
        source: TrackSource,
        batch_size: int,
        learning_rate: float = 0.001,
        biosample_decay: float = 0.0,
        train_groups: Sequence[str] = GROUPS,
        trainable_rows: dict[str, np.ndarray] | None = None,
        sampling: str = "sequential",
        seed: int | None = None,
        precision: str = "fp32",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-7,
        optimizer: str = "catchup",
        threads: int | None = None,
        kernel: bool = True,
        activity_input: Any = None,
        positions: Any = None,
    ) -> None:
        unknown = set(train_groups) - set(GROUPS)
        if unknown:
            raise AvocadoValueError(
                f"unknown parameter groups {sorted(unknown)}; expected {GROUPS}"
            )
        if precision not in ("fp32", "bf16"):
            raise AvocadoValueError(f"unknown precision {precision!r}; expected 'fp32' or 'bf16'")
        if optimizer not in ("catchup", "dense"):
            raise AvocadoValueError(
                f"unknown optimizer {optimizer!r}; expected 'catchup' or 'dense'"
            )
        bad_rows = set(trainable_rows or {}) - {"biosample", "assay"}
        if bad_rows:
            raise AvocadoValueError(
                f"trainable_rows only restricts 'biosample' or 'assay', got {sorted(bad_rows)}"
            )
        if (activity_input is None) != (network.n_activity_inputs == 0):
            raise AvocadoValueError(
                f"the network takes {network.n_activity_inputs} average-activity input(s) but "
                f"activity_input is {'None' if activity_input is None else 'given'}"
            )
        self.activity_input = activity_input
        self.network = network
        self.device = next(network.parameters()).device
        self.source = source
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.biosample_decay = float(biosample_decay)
        self.precision = precision
        self.betas = betas
        self.eps = float(eps)
        self.train_groups = tuple(train_groups)
        self.mode = optimizer
        dev = self.device
        self._fused = (
            kernel and self.mode == "catchup" and dev.type == "cpu" and precision == "fp32"
            and len(network.hidden) == 1 and network.output.out_features == 1
        )
        small = sum(p.numel() for p in network.dense_parameters()) < 100_000
        self.threads = threads or (1 if dev.type == "cpu" and small else None)
        if dev.type == "cpu":
            widest = max([batch_size * layer.out_features for layer in network.hidden] or [0])
            tune_malloc(large_tensors=widest * 4 > 32 * 2**20)
        self.exp_biosample = torch.as_tensor(np.asarray(biosample_index), dtype=torch.long).to(dev)
        self.exp_assay = torch.as_tensor(np.asarray(assay_index), dtype=torch.long).to(dev)
        self.sampler = Sampler(
            source.n_positions, source.n_experiments, batch_size, sampling=sampling, seed=seed,
            positions=positions,
        )
        self.step_count = 0
        # A source that reads from disk (``prefetch = True``) reads the next batch on a helper
        # thread while this one trains; the sampler state before that draw is what a
        # checkpoint records.
        self._prefetching = bool(getattr(source, "prefetch", False))
        self._prefetch: tuple[np.ndarray, np.ndarray, Future] | None = None
        self._sampler_state: dict[str, Any] | None = None
        self._pool: ThreadPoolExecutor | None = None
        # running mean of the trained parameters (stochastic weight averaging)
        self.average: dict[str, torch.Tensor] = {}
        self.n_averaged = 0
        # batch x width arrays of the torch pass, allocated once and reused by every step
        self._buffers: dict[str, torch.Tensor] = {}
        # the trained parameters' own values once ``apply_average`` replaced them by the mean
        self.trajectory: dict[str, torch.Tensor] = {}

        tables = network.embedding_parameters()
        # Parameters stepped by torch's Adam (all of them on the dense path).
        self.params: dict[str, torch.nn.Parameter] = {}
        self.row_adams: dict[str, CatchUpAdam] = {}
        memo: dict = {}
        for group in self.train_groups:
            if group == "network":
                for i, p in enumerate(network.dense_parameters()):
                    self.params[f"network.{i}"] = p
            elif group in ("25bp", "250bp", "5kbp") and self.mode == "catchup":
                self.row_adams[group] = CatchUpAdam(
                    tables[group].data, learning_rate, betas, eps, memo=memo, kernel=kernel
                )
            else:
                self.params[group] = tables[group]
        for p in network.parameters():
            p.requires_grad_(False)
        if self.mode == "dense":
            for p in self.params.values():
                p.requires_grad_(True)
        self.row_masks: dict[str, torch.Tensor] = {}
        for group, rows in (trainable_rows or {}).items():
            mask = torch.zeros(tables[group].shape[0], 1, dtype=tables[group].dtype)
            mask[torch.as_tensor(np.asarray(rows), dtype=torch.long)] = 1
            self.row_masks[group] = mask.to(dev)
        self.optimizer = None
        if self.params:
            fused = self.mode == "catchup" and dev.type in ("cpu", "cuda")
            self.optimizer = torch.optim.Adam(
                list(self.params.values()),
                lr=self.learning_rate,
                betas=betas,
                eps=self.eps,
                fused=fused or None,
                foreach=None if fused else (dev.type != "cpu" or None),
            )

    # -------------------------------------------------------------- batches
    def _batch(self) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
        if not self._prefetching:
            experiments, positions = self.sampler.next_batch()
            values = self.source.values(experiments, positions)
        else:
            if self._prefetch is None:
                self._prefetch = self._draw_ahead()
            experiments, positions, future = self._prefetch
            values = future.result()
            self._prefetch = self._draw_ahead()
        y = torch.from_numpy(values)
        return experiments, positions, y.to(self.device, non_blocking=True)

    def _draw_ahead(self) -> tuple[np.ndarray, np.ndarray, Future]:
        """Draw the next batch and start reading its values on the helper thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="avocado-batch")
            weakref.finalize(self, self._pool.shutdown, wait=False)
        self._sampler_state = self.sampler.state_dict()
        experiments, positions = self.sampler.next_batch()
        return experiments, positions, self._pool.submit(self.source.values, experiments,
                                                         positions)

    def _buffer(self, name: str, rows: int, cols: int, dtype: torch.dtype) -> torch.Tensor:
        """A rows x cols array kept from step to step (its contents are not kept).

        The activations of a wide network are hundreds of MB; allocated afresh at every step
        they cost page faults and, once smaller allocations have filled the holes they left,
        a heap that grows by their size (measured +625 MB at the paper configuration's second
        step). Kept, the step allocates nothing that large.
        """
        buf = self._buffers.get(name)
        if buf is None or buf.shape != (rows, cols) or buf.dtype != dtype:
            self._buffers.pop(name, None)
            buf = self._buffers[name] = torch.empty(rows, cols, dtype=dtype, device=self.device)
        return buf

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

    def step(self) -> float:
        """Draw one batch and take one Adam step.

        Returns
        -------
        float
            The batch's mean squared error before the step.
        """
        if self.mode == "dense":
            return self._step_dense()
        return self._step_catchup()

    def _activity_values(self, experiments: np.ndarray, positions: np.ndarray,
                         y: torch.Tensor) -> torch.Tensor | None:
        """Each sample's average-activity input (None without one)."""
        if self.activity_input is None:
            return None
        values = self.activity_input.input_values(experiments, positions, y.cpu().numpy())
        return torch.from_numpy(np.asarray(values, dtype=np.float32)).to(self.device)

    def _step_dense(self) -> float:
        experiments, positions, y = self._batch()
        exp = torch.from_numpy(experiments).to(self.device)
        pos = torch.from_numpy(positions).to(self.device)
        activity = self._activity_values(experiments, positions, y)
        with self._autocast():
            pred = self.network(self.exp_biosample[exp], self.exp_assay[exp], pos, activity)
        loss = torch.mean((pred.float() - y) ** 2)
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        for group, mask in self.row_masks.items():
            self.params[group].grad.mul_(mask)
        self.optimizer.step()
        self.decay_biosamples()
        self.step_count += 1
        return float(loss.detach())

    def decay_biosamples(self) -> None:
        """Shrink the trained biosample rows by ``1 - biosample_decay`` (after a step)."""
        if not self.biosample_decay or "biosample" not in self.params:
            return
        with torch.no_grad():
            table = self.params["biosample"]
            mask = self.row_masks.get("biosample")
            if mask is None:
                table.mul_(1.0 - self.biosample_decay)
            else:
                table.mul_(1.0 - self.biosample_decay * mask)

    def _unique_rows(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct rows of ``index`` and, per sample, its position among them."""
        rows, inv = np.unique(index, return_inverse=True)
        dev = self.device
        return torch.from_numpy(rows).to(dev), torch.from_numpy(inv.astype(np.int64)).to(dev)

    def _mlp_forward(self, pre: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The MLP above the first layer's pre-activation; returns output and activations.

        ``pre`` (fp32) is overwritten by its ReLU. With ``precision="bf16"`` the activations
        are cast to bfloat16 once and stay there: each product reads them without another
        cast (the products accumulate in fp32 either way).
        """
        net = self.network
        if not net.hidden:
            return pre[:, 0], []
        low = self.precision == "bf16"
        n = len(pre)
        h = pre.clamp_min_(0.0)
        acts = [self._buffer("act0", n, h.shape[1], torch.bfloat16).copy_(h) if low else h]
        for i, layer in enumerate(net.hidden[1:], 1):
            w, b = layer.weight, layer.bias
            if low:
                w, b = w.to(torch.bfloat16), b.to(torch.bfloat16)
            dest = self._buffer(f"act{i}", n, w.shape[0], acts[0].dtype)
            acts.append(torch.addmm(b, acts[-1], w.t(), out=dest).clamp_min_(0.0))
        w_out, b_out = net.output.weight, net.output.bias
        if net.output.out_features == 1 and not low:
            out = torch.mv(acts[-1], w_out[0]).add_(b_out)
        else:
            if low:
                w_out, b_out = w_out.to(torch.bfloat16), b_out.to(torch.bfloat16)
            out = torch.nn.functional.linear(acts[-1], w_out, b_out)[:, 0]
        return out.float(), acts

    def _mlp_backward(
        self, g_out: torch.Tensor, acts: list[torch.Tensor], want_params: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """Hand-written backward of :meth:`_mlp_forward`, in place.

        Returns the gradient of the first pre-activation (in the activations' dtype: bfloat16
        with ``precision="bf16"``), when ``want_params`` the fp32 gradients of
        ``[*hidden[1:], output]`` weights and biases (in that order), and a column scale: when
        it is not None, the true gradient is the returned one times it, column by column.

        The activations are not needed once their layer's gradients are known, so each
        layer's input gradient is written over its input activations (``acts`` is consumed):
        the backward pass allocates no batch x width array. Below a one-column output the
        gradient is ``relu'(h) * g_out * w_out``; ``w_out`` is left as a column scale to the
        small products that read it (this layer's weight gradient, the weight of the layer
        below, or the caller's first-layer products), which saves a pass over the batch. The
        product with a hidden layer's weight runs :data:`BACKWARD_ROWS` rows at a time into a
        small buffer, then masked by the ReLU over the rows of the activations it replaces.
        """
        net = self.network
        if not net.hidden:
            return g_out[:, None], [], None
        grads: list[torch.Tensor] = []
        layers = [*net.hidden[1:], net.output]
        dtype = acts[0].dtype
        g = g_out[:, None].to(dtype)
        scale: torch.Tensor | None = None  # the gradient of layers[i]'s output is g * scale
        threshold_backward = torch.ops.aten.threshold_backward.grad_input
        for i in range(len(layers) - 1, -1, -1):
            layer, h_in = layers[i], acts[i]
            if want_params:
                if g.shape[1] == 1:
                    g_w = torch.mv(h_in.t(), g[:, 0])[None, :]
                elif dtype == torch.bfloat16:  # a transposed bf16 operand is 2x slower
                    g_t = self._buffer("transposed", g.shape[1], g.shape[0], dtype)
                    g_w = g_t.copy_(g.t()) @ h_in
                else:
                    g_w = g.t() @ h_in
                # (sums of bf16 accumulate in fp32)
                g_w, g_b = g_w.float(), g.sum(0).float()
                if scale is not None:
                    g_w.mul_(scale[:, None])
                    g_b.mul_(scale)
                grads = [g_w, g_b, *grads]
            w = layer.weight if scale is None else layer.weight * scale[:, None]
            if g.shape[1] == 1:  # relu'(h) * g, and w[0] becomes the column scale
                threshold_backward(g.expand(h_in.shape), h_in, 0.0, grad_input=h_in)
                scale = w[0]
            else:
                w = w.to(dtype)
                rows = min(BACKWARD_ROWS, len(h_in))
                buf = self._buffer("backward", rows, w.shape[1], dtype)
                for lo in range(0, len(h_in), rows):
                    part = h_in[lo : lo + rows]
                    g_h = torch.mm(g[lo : lo + rows], w, out=buf[: len(part)])
                    threshold_backward(g_h, part, 0.0, grad_input=part)
                scale = None
            g = h_in
        return g, grads, scale

    def _pass_torch(
        self,
        g25_rows: torch.Tensor,
        inv25: torch.Tensor | None,
        e: torch.Tensor,
        inv250: torch.Tensor | None,
        p0: int,
        y: torch.Tensor,
        exp_term: torch.Tensor,
        q: torch.Tensor,
        w25: torch.Tensor,
        want_params: bool,
    ) -> tuple:
        """The network's forward and backward pass in torch operations, for any network.

        Takes the batch's 25 bp rows (``inv25`` maps samples to them, None: one per sample),
        each sample's experiment ``e``, the per-experiment term of the first layer and its
        per-250-bp-row genome term ``q`` (``inv250`` maps samples to rows; None: consecutive
        positions from ``p0``). Returns the loss, the gradients of the first layer's 25 bp
        weights, of the per-experiment and per-row terms, of each sample's 25 bp factors
        (None when that table does not train), and those of the layers above.
        """
        dev = self.device
        n_samples, n_exp, f25 = len(y), exp_term.shape[0], w25.shape[1]
        # 25 bp factors and a one-hot of the experiment side by side: one product gives
        # the 25 bp term plus the per-experiment term (and, backwards, both gradients).
        fold = n_exp <= 64
        x = torch.zeros(n_samples, f25 + (n_exp if fold else 0), device=dev)
        x[:, :f25] = g25_rows if inv25 is None else g25_rows.index_select(0, inv25)
        if fold:
            x[:, f25:].scatter_(1, e[:, None], 1.0)
            w_x = torch.cat([w25.t(), exp_term], dim=0)
        else:
            w_x = w25.t()
        # fp32: a product this skinny is no faster in bf16
        pre = torch.mm(x, w_x, out=self._buffer("pre", n_samples, w_x.shape[1], torch.float32))
        if not fold:
            pre.add_(exp_term.index_select(0, e))
        if inv250 is None:
            _block_apply(pre, q, p0, 10, add=True)
        else:
            pre.add_(q.index_select(0, inv250))

        pred, acts = self._mlp_forward(pre)
        diff = pred - y
        loss = torch.dot(diff, diff) / n_samples
        g_pre, head_grads, scale = self._mlp_backward(diff * (2.0 / n_samples), acts, want_params)
        with self._autocast():  # (f25 [+ n_exp], H): g_W25^T and per-experiment sums
            g_x = (x.t() @ g_pre).float()
        if scale is not None:  # (g_exp below is a view of g_x)
            g_x.mul_(scale)
        g_exp = g_x[f25:] if fold else torch.zeros(
            n_exp, g_pre.shape[1], device=dev).index_add_(0, e, g_pre.float())
        if not fold and scale is not None:
            g_exp.mul_(scale)
        if inv250 is None:
            g_q = _block_apply(g_pre, q, p0, 10, add=False)
        else:
            g_q = torch.zeros_like(q).index_add_(0, inv250, g_pre.to(q.dtype))
        if scale is not None:
            g_q.mul_(scale)
        g_g25 = None
        if "25bp" in self.row_adams:
            with self._autocast():
                g_g25 = (g_pre @ (w25 if scale is None else w25 * scale[:, None])).float()
        return loss, g_x[:f25].t(), g_exp, g_q, g_g25, head_grads

    def _pass_fused(
        self,
        g25_rows: torch.Tensor,
        inv25: torch.Tensor | None,
        e: torch.Tensor,
        q_row: np.ndarray,
        y: torch.Tensor,
        exp_term: torch.Tensor,
        q: torch.Tensor,
        w25: torch.Tensor,
    ) -> tuple:
        """:meth:`_pass_torch` of a one-hidden-layer network by the compiled kernel.

        ``q_row`` gives each sample's row of ``q``. Returns what :meth:`_pass_torch` returns.
        """
        n = len(y)
        x_row = np.arange(n, dtype=np.int64) if inv25 is None else inv25.numpy()
        out = self.network.output
        sse, g_b, g_w_x, g_exp, g_q, g_w_out, g_x = kernels.one_layer_step(
            g25_rows.numpy(), x_row, e.numpy(), q_row, y.numpy(), exp_term.numpy(),
            q.numpy(), w25.t().contiguous().numpy(), out.weight[0].numpy(),
            float(out.bias[0]),
        )
        as_tensor = torch.from_numpy
        head_grads = [as_tensor(g_w_out)[None, :], torch.tensor([g_b], dtype=torch.float32)]
        return (sse / n, as_tensor(g_w_x).t(), as_tensor(g_exp), as_tensor(g_q),
                as_tensor(g_x), head_grads)

    def _step_catchup(self) -> float:
        net = self.network
        t = self.step_count + 1
        experiments, positions, y = self._batch()
        dev = self.device
        n_samples = len(positions)
        tables = net.genome_tables
        first = net.hidden[0] if net.hidden else net.output
        nb = net.biosample_embedding.embedding_dim
        na = net.assay_embedding.embedding_dim
        f25, f250, f5k = (tables[r].embedding_dim for r in ("25bp", "250bp", "5kbp"))
        n_act = net.n_activity_inputs
        w_b, w_a, w25, w250, w5k, w_act = torch.split(
            first.weight, [nb, na, f25, f250, f5k, n_act], dim=1)
        train_net = "network" in self.train_groups

        # Rows of the three tables. A sequential batch that does not wrap is one contiguous
        # run of positions: its rows are slices (views, no gathers) and its 250 bp rows
        # cover consecutive blocks of 10 samples. (A scan over a subset of positions can wrap
        # onto the same span by chance: it takes the general path.)
        p0 = int(positions[0])
        contiguous = int(positions[-1]) - p0 == n_samples - 1 and (
            self.sampler.sampling == "sequential" and self.sampler.positions is None
        )
        r250 = positions // 10
        if contiguous:
            rows25: slice | torch.Tensor = slice(p0, p0 + n_samples)
            rows250: slice | torch.Tensor = slice(int(r250[0]), int(r250[-1]) + 1)
            inv25 = inv250 = None
            first250 = int(r250[0])
            ids250 = np.arange(first250, int(r250[-1]) + 1)
        else:
            # (a permuted batch can repeat positions where it spans two passes)
            rows25, inv25 = self._unique_rows(positions)
            rows250, inv250 = self._unique_rows(r250)
            ids250 = rows250.cpu().numpy()
        r5k = ids250 // 20
        first5k, last5k = int(r5k.min()), int(r5k.max())
        if contiguous or last5k - first5k + 1 == len(np.unique(r5k)):
            rows5k: slice | torch.Tensor = slice(first5k, last5k + 1)
        else:
            rows5k = torch.from_numpy(np.unique(r5k)).to(dev)
        map5k = torch.from_numpy(
            r5k - first5k if isinstance(rows5k, slice)
            else np.searchsorted(rows5k.cpu().numpy(), r5k)
        ).to(dev)
        for res, rows in (("25bp", rows25), ("250bp", rows250), ("5kbp", rows5k)):
            if res in self.row_adams:
                self.row_adams[res].catch_up(rows, t - 1)  # rows must be current first

        with torch.no_grad():
            e = torch.from_numpy(experiments).to(dev)
            b_rows = net.biosample_embedding.weight.index_select(0, self.exp_biosample)
            a_rows = net.assay_embedding.weight.index_select(0, self.exp_assay)
            exp_term = torch.addmm(first.bias, b_rows, w_b.t()).addmm_(a_rows, w_a.t())
            g25_rows = tables["25bp"].weight[rows25]
            # 250 bp and 5 kbp terms, summed per 250 bp row, then added to their samples.
            g250_rows = tables["250bp"].weight[rows250]
            g5k_rows = tables["5kbp"].weight[rows5k]
            q = torch.addmm((g5k_rows @ w5k.t()).index_select(0, map5k), g250_rows, w250.t())
            # The average-activity input is one more column of each sample's 25 bp factors
            # (with its own first-layer weights): the passes below need no change.
            x_rows, x_inv, w_x = g25_rows, inv25, w25
            if n_act:
                per_sample = g25_rows if inv25 is None else g25_rows.index_select(0, inv25)
                x_rows = torch.cat(
                    [per_sample, self._activity_values(experiments, positions, y)[:, None]], 1)
                x_inv, w_x = None, torch.cat([w25, w_act], 1)
            if self._fused:
                q_row = (r250 - first250) if contiguous else inv250.numpy()
                loss, g_w25, g_exp, g_q, g_g25, head_grads = self._pass_fused(
                    x_rows, x_inv, e, q_row, y, exp_term, q, w_x
                )
            else:
                loss, g_w25, g_exp, g_q, g_g25, head_grads = self._pass_torch(
                    x_rows, x_inv, e, inv250 if not contiguous else None, p0, y,
                    exp_term, q, w_x, train_net,
                )
            g_w_act = g_w25[:, f25:]
            g_w25 = g_w25[:, :f25]
            if n_act and g_g25 is not None:
                g_g25 = g_g25[:, :f25]
            g_q5k = torch.zeros(g5k_rows.shape[0], g_q.shape[1], device=dev).index_add_(
                0, map5k, g_q
            )
            # Gradients that read the genome rows come first: the rows may be views of the
            # tables, which the row steps below update in place.
            if self.optimizer is not None and train_net:
                g_w1 = torch.cat(
                    [g_exp.t() @ b_rows, g_exp.t() @ a_rows, g_w25,
                     g_q.t() @ g250_rows, g_q5k.t() @ g5k_rows, g_w_act], dim=1
                )
            if "25bp" in self.row_adams:
                if inv25 is not None:
                    g_g25 = torch.zeros(g25_rows.shape, device=dev).index_add_(0, inv25, g_g25)
                self.row_adams["25bp"].step(rows25, g_g25, t)
            if "250bp" in self.row_adams:
                self.row_adams["250bp"].step(rows250, g_q @ w250, t)
            if "5kbp" in self.row_adams:
                self.row_adams["5kbp"].step(rows5k, g_q5k @ w5k, t)
            if self.optimizer is not None:
                if train_net:
                    first.weight.grad = g_w1
                    first.bias.grad = g_exp.sum(0)
                    head = [p for layer in [*net.hidden[1:], net.output] if net.hidden
                            for p in (layer.weight, layer.bias)]
                    for p, g in zip(head, head_grads):
                        p.grad = g.reshape(p.shape)
                for group, table, exp_rows, w in (
                    ("biosample", net.biosample_embedding.weight, self.exp_biosample, w_b),
                    ("assay", net.assay_embedding.weight, self.exp_assay, w_a),
                ):
                    if group in self.params:
                        grad = torch.zeros_like(table).index_add_(0, exp_rows, g_exp @ w)
                        if group in self.row_masks:
                            grad.mul_(self.row_masks[group])
                        table.grad = grad
                self.optimizer.step()
        self.decay_biosamples()
        self.step_count += 1
        return float(loss)

    def finalize(self) -> None:
        """Bring every row of the catch-up tables up to date (before predicting or saving).

        Also lets go of the step's activation buffers: prediction may need the memory.
        """
        for adam in self.row_adams.values():
            adam.finalize(self.step_count)
        self._buffers.clear()

    # -------------------------------------------------------------- weight averaging
    def _trained_parameters(self) -> dict[str, torch.Tensor]:
        """The parameters of the groups this trainer trains, by name."""
        tables = self.network.embedding_parameters()
        return {**self.params, **{group: tables[group] for group in self.row_adams}}

    def accumulate_average(self) -> None:
        """Add the current parameters to their running mean (stochastic weight averaging).

        Only the trained groups are averaged; rows that do not train (``trainable_rows``)
        are equal in every snapshot, so their mean is them, bit for bit. The rows of the
        catch-up tables enter as they would be if brought up to date, but are left as they
        are: averaging does not change the course of training by a single rounding.
        """
        self.n_averaged += 1
        chunk = 1 << 16
        with torch.no_grad():
            for name, p in self._trained_parameters().items():
                adam = self.row_adams.get(name)
                if self.n_averaged == 1:
                    self.average[name] = torch.empty_like(p)
                avg = self.average[name]
                for lo in range(0, p.shape[0], chunk):
                    rows = slice(lo, lo + chunk)
                    value = p.detach()[rows] if adam is None else adam.current(
                        rows, self.step_count)
                    if self.n_averaged == 1:
                        avg[rows] = value
                    else:
                        avg[rows] += (value - avg[rows]) / self.n_averaged

    def apply_average(self) -> None:
        """Set the trained parameters to their running mean (at the end of training).

        Their own values are kept in ``trajectory`` (and in :meth:`state_tensors`): a run
        continued from this trainer's state goes on from them, not from the mean.
        """
        with torch.no_grad():
            for name, p in self._trained_parameters().items():
                if name in self.average:
                    self.trajectory[name] = p.detach().clone()
                    p.copy_(self.average[name])

    def trained_shapes(self) -> dict[str, list[int]]:
        """Shape of each trained parameter, by name (what a state to load must match)."""
        return {name: list(p.shape) for name, p in self._trained_parameters().items()}

    # -------------------------------------------------------------- state
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Optimizer state as named tensors (for a checkpoint)."""
        out: dict[str, torch.Tensor] = {}
        if self.optimizer is not None:
            for name, p in self.params.items():
                st = self.optimizer.state.get(p)
                if st:
                    out[f"adam.{name}.exp_avg"] = st["exp_avg"]
                    out[f"adam.{name}.exp_avg_sq"] = st["exp_avg_sq"]
        for name, adam in self.row_adams.items():
            out[f"rowadam.{name}.m"] = adam.m
            out[f"rowadam.{name}.v"] = adam.v
            out[f"rowadam.{name}.last"] = adam.last
        for name, avg in self.average.items():
            out[f"average.{name}"] = avg
        for name, value in self.trajectory.items():
            out[f"trajectory.{name}"] = value
        return out

    def state_meta(self) -> dict[str, Any]:
        """JSON-serializable trainer state (for a checkpoint)."""
        steps = {}
        if self.optimizer is not None:
            steps = {
                name: float(self.optimizer.state[p]["step"])
                for name, p in self.params.items()
                if self.optimizer.state.get(p)
            }
        pending = self._prefetch is not None
        return {
            "step_count": self.step_count,
            "sampler": self._sampler_state if pending else self.sampler.state_dict(),
            "adam_steps": steps,
            "mode": self.mode,
            "n_averaged": self.n_averaged,
        }

    def load_state(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_meta` and :meth:`state_tensors` returned.

        Without ``"sampler"`` in ``meta`` the sampler keeps its own state. Parameters that
        :meth:`apply_average` replaced by their mean get their own values back.
        """
        if meta.get("mode", "dense") != self.mode:
            raise AvocadoValueError(
                f"checkpoint was written by the {meta.get('mode')!r} optimizer, not {self.mode!r}"
            )
        self.step_count = int(meta["step_count"])
        if "sampler" in meta:
            self.sampler.load_state_dict(meta["sampler"])
        self._prefetch = None  # drawn from the old state
        for name, p in self.params.items():
            key = f"adam.{name}.exp_avg"
            if key in tensors:
                step = torch.tensor(meta["adam_steps"][name], dtype=torch.float32)
                self.optimizer.state[p] = {
                    "step": step.to(p.device) if self.mode == "catchup" else step,
                    "exp_avg": tensors[key].to(p.device).clone(),
                    "exp_avg_sq": tensors[f"adam.{name}.exp_avg_sq"].to(p.device).clone(),
                }
        for name, adam in self.row_adams.items():
            adam.m.copy_(tensors[f"rowadam.{name}.m"])
            adam.v.copy_(tensors[f"rowadam.{name}.v"])
            adam.last.copy_(tensors[f"rowadam.{name}.last"])
        self.n_averaged = int(meta.get("n_averaged", 0))
        self.average = {
            key.removeprefix("average."): value.to(self.device).clone()
            for key, value in tensors.items() if key.startswith("average.")
        }
        trained = self._trained_parameters()
        with torch.no_grad():
            for key, value in tensors.items():
                if key.startswith("trajectory."):
                    trained[key.removeprefix("trajectory.")].copy_(value)



def _block_apply(
    values: torch.Tensor, q: torch.Tensor, p0: int, div: int, add: bool
) -> torch.Tensor | None:
    """Add row ``q[(p0 + i) // div - p0 // div]`` to ``values[i]`` (``add=True``), or sum
    ``values`` over those groups of rows into a new ``q``-shaped tensor (``add=False``).

    ``values`` holds consecutive positions ``p0, p0 + 1, ...``: whole groups of ``div`` become
    a reshaped view and a broadcast, the two partial groups at the ends are done apart.
    """
    n = values.shape[0]
    p1 = p0 + n
    r0 = p0 // div
    a = min(-(-p0 // div) * div, p1)  # first group boundary at or after p0
    b = max((p1 // div) * div, a)  # last group boundary at or before p1
    pieces = []
    if a > p0:
        pieces.append((0, a - p0, 0, None))
    if b > a:
        pieces.append((a - p0, b - p0, a // div - r0, (b - a) // div))
    if p1 > b:
        pieces.append((b - p0, n, b // div - r0, None))
    out = None if add else torch.empty_like(q)
    for lo, hi, row, n_groups in pieces:
        chunk = values[lo:hi]
        if n_groups is None:  # a partial group: one row of q
            if add:
                chunk.add_(q[row])
            else:
                out[row] = chunk.sum(0)
        elif add:
            chunk.view(n_groups, div, -1).add_(q[row : row + n_groups].unsqueeze(1))
        else:
            out[row : row + n_groups] = chunk.view(n_groups, div, -1).sum(1)
    return out
