"""The network's forward and backward pass in a training step, written by hand.

:class:`NetworkPass` holds the arithmetic of :class:`~avocado_core.training.Trainer`'s fast path:
the MLP above the first layer forward and backward in place over reused buffers
(:meth:`~NetworkPass._pass_torch`, any network, any device) and the same pass by the compiled
kernel of :mod:`avocado_core.kernels` (:meth:`~NetworkPass._pass_fused`, one hidden layer on
the CPU). The trainer around it draws the batches and steps the optimizers.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import kernels

__all__ = ["BACKWARD_ROWS", "NetworkPass"]

#: Rows per product of the backward pass through a hidden layer (its input gradient is built
#: this many rows at a time in a buffer of rows x width, then written over the activations).
BACKWARD_ROWS = 4096


class NetworkPass:
    """The forward and backward passes of a trainer (mixed into
    :class:`~avocado_core.training.Trainer`, whose ``network``, ``device``, ``precision``,
    ``row_adams`` and ``_buffers`` they use)."""

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
                # the bias gradient summed into fp32 (a bf16 sum would round it to bf16)
                g_w, g_b = g_w.float(), g.sum(0, dtype=torch.float32)
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
        low = g_pre.dtype  # (the products below in bf16 with precision="bf16")
        g_x = (x.t().to(low) @ g_pre).float()  # (f25 [+ n_exp], H): g_W25^T, per-experiment sums
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
            g_g25 = (g_pre @ (w25 if scale is None else w25 * scale[:, None]).to(low)).float()
        return loss, g_x[:f25].t(), g_exp, g_q, g_g25, head_grads

    def _pass_fused(
        self,
        g25_rows: torch.Tensor,
        inv25: np.ndarray | None,
        e: torch.Tensor,
        q_row: np.ndarray,
        y: torch.Tensor,
        exp_term: torch.Tensor,
        q: torch.Tensor,
        w25: torch.Tensor,
    ) -> tuple:
        """:meth:`_pass_torch` of a one-hidden-layer network by the compiled kernel.

        ``inv25`` and ``q_row`` (host arrays) give each sample's row of ``g25_rows`` and
        ``q``. Returns what :meth:`_pass_torch` returns, the loss as a float.
        """
        n = len(y)
        x_row = np.arange(n, dtype=np.int64) if inv25 is None else inv25
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
