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

__all__ = ["BACKWARD_ROWS", "FOLD_EXPERIMENTS", "NetworkPass"]

#: Rows per product of the backward pass through a hidden layer (its input gradient is built
#: this many rows at a time in a buffer of rows x width, then written over the activations).
BACKWARD_ROWS = 4096
#: Most experiments whose one-hot rides in the first layer's product (the per-experiment term
#: and its gradient come out of the 25 bp product); more are gathered and summed apart.
FOLD_EXPERIMENTS = 64


class NetworkPass:
    """The forward and backward passes of a trainer (mixed into
    :class:`~avocado_core.training.Trainer`, whose ``network``, ``device``, ``precision``,
    ``row_adams``, ``n_experiments``, ``_one_hot``, ``_w_out_row``, ``_w_out_col``,
    ``_buffers`` and ``_views`` they use)."""

    def _buffer(self, name: str, rows: int, cols: int, dtype: torch.dtype) -> torch.Tensor:
        """A rows x cols array kept from step to step (its contents are not kept)."""
        return self._grouped(name, rows, cols, dtype)[0]

    def _grouped(self, name: str, rows: int, cols: int, dtype: torch.dtype, lead: int = 0,
                 div: int = 1) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor],
                                         torch.Tensor]:
        """A rows x cols array kept from step to step (its contents are not kept), ``lead``
        rows into a buffer of whole groups of ``div`` rows.

        The activations of a wide network are hundreds of MB; allocated afresh at every step
        they cost page faults and, once smaller allocations have filled the holes they left,
        a heap that grows by their size (measured +625 MB at the paper configuration's second
        step). Kept, the step allocates nothing that large. The views are kept too (a step
        that finds them makes no torch call for them).

        Returns
        -------
        tuple
            The array, the whole buffer as (n_groups, div, cols), the buffer's rows before
            and after the array (padding, those that exist) and the array transposed.
        """
        key = (name, rows, cols, dtype, lead, div)
        views = self._views.get(key)
        if views is None:
            n_groups = -(-(lead + rows) // div)
            size = n_groups * div * cols
            buf = self._buffers.get(name)
            if buf is None or buf.numel() < size or buf.dtype != dtype:
                self._views = {k: v for k, v in self._views.items() if k[0] != name}
                self._buffers.pop(name, None)  # (freed before the new one is allocated)
                buf = self._buffers[name] = torch.empty(size, dtype=dtype, device=self.device)
            whole = buf[:size].view(n_groups * div, cols)
            pads = [whole[:lead]] if lead else []
            if lead + rows < n_groups * div:
                pads.append(whole[lead + rows :])
            array = whole[lead : lead + rows]
            views = self._views[key] = (array, whole.view(n_groups, div, cols), pads, array.t())
        return views

    def _zeros(self, rows: int, cols: int) -> torch.Tensor:
        """A rows x cols array of zeros kept from step to step (never written: ``index_add``
        adds to a copy).

        One buffer of zeros per width, as tall as the most rows asked for; the arrays are its
        views (batches of random positions ask for a different number of rows each step: an
        array of its own for each would pile up).
        """
        key = ("zeros", rows, cols)
        view = self._views.get(key)
        if view is None:
            buf = self._buffers.get(("zeros", cols))
            if buf is None or len(buf) < rows:
                self._views = {k: v for k, v in self._views.items()
                               if k[0] != "zeros" or k[2] != cols}
                buf = self._buffers[("zeros", cols)] = torch.zeros(rows, cols,
                                                                   device=self.device)
            view = self._views[key] = buf[:rows]
        return view

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

    def _mlp_forward(self, pre: torch.Tensor, layout: tuple[int, int, int] | None = None
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The MLP above the first layer's pre-activation; returns output and activations.

        ``pre`` (fp32) is overwritten by its ReLU. With ``precision="bf16"`` the activations
        are cast to bfloat16 once and stay there: each product reads them without another
        cast (the products accumulate in fp32 either way); the first ones take the place
        ``layout`` gives (rows, lead, div: see :meth:`_grouped`; default: ``pre``'s rows, no
        padding), as ``pre`` does in its buffer.
        """
        net = self.network
        if not net.hidden:
            return pre[:, 0], []
        low = self.precision == "bf16"
        dtype = torch.bfloat16 if low else torch.float32
        n, lead, div = layout or (len(pre), 0, 1)
        h = pre.clamp_min_(0.0)
        width = net.hidden[0].out_features
        acts = [self._grouped("act0", n, width, dtype, lead, div)[0].copy_(h) if low else h]
        for i, layer in enumerate(net.hidden[1:], 1):
            w, b = layer.weight, layer.bias
            if low:
                w, b = w.to(torch.bfloat16), b.to(torch.bfloat16)
            dest = self._buffer(f"act{i}", n, layer.out_features, dtype)
            acts.append(torch.addmm(b, acts[-1], w.t(), out=dest).clamp_min_(0.0))
        w_out, b_out = net.output.weight, net.output.bias
        if net.output.out_features == 1 and not low:
            return torch.mv(acts[-1], self._w_out_row).add_(b_out), acts
        if low:
            w_out, b_out = w_out.to(torch.bfloat16), b_out.to(torch.bfloat16)
        out = torch.nn.functional.linear(acts[-1], w_out, b_out)[:, 0]
        return (out.float() if low else out), acts

    def _mlp_backward(
        self, g_out: torch.Tensor, acts: list[torch.Tensor], want_params: bool,
        n: int | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor | None]:
        """Hand-written backward of :meth:`_mlp_forward`, in place.

        Returns the gradient of the first pre-activation (in the activations' dtype: bfloat16
        with ``precision="bf16"``), when ``want_params`` the fp32 gradients of
        ``[*hidden[1:], output]`` weights and biases (in that order), and a column scale: when
        it is not None, the true gradient is the returned one times it, column by column (it
        is then the output weight's row, ``_w_out_row``; ``_w_out_col`` is it as a column).

        The activations are not needed once their layer's gradients are known, so each
        layer's input gradient is written over its input activations (``acts`` is consumed):
        the backward pass allocates no batch x width array. Below a one-column output the
        gradient is ``relu'(h) * g_out * w_out``; ``w_out`` is left as a column scale to the
        small products that read it (this layer's weight gradient, the weight of the layer
        below, or the caller's first-layer products), which saves a pass over the batch. The
        product with a hidden layer's weight runs :data:`BACKWARD_ROWS` rows at a time into a
        small buffer, then masked by the ReLU over the rows of the activations it replaces.
        ``n`` is the number of rows (default: ``g_out``'s length).
        """
        net = self.network
        if not net.hidden:
            return g_out[:, None], [], None
        grads: list[torch.Tensor] = []
        layers = [*net.hidden[1:], net.output]
        low = self.precision == "bf16"  # (the activations' dtype, known without asking)
        dtype = torch.bfloat16 if low else torch.float32
        n = len(g_out) if n is None else n
        g_col = g_out.to(dtype) if low else g_out
        g = g_col[:, None]
        scale: torch.Tensor | None = None  # the gradient of layers[i]'s output is g * scale
        threshold_backward = torch.ops.aten.threshold_backward.grad_input
        for i in range(len(layers) - 1, -1, -1):
            layer, h_in = layers[i], acts[i]
            one_column = layer.out_features == 1  # (then g is g_col[:, None])
            if want_params:
                if one_column:
                    g_w = torch.mv(h_in.t(), g_col)[None, :]
                elif low:  # a transposed bf16 operand is 2x slower
                    g_t = self._buffer("transposed", layer.out_features, n, dtype)
                    g_w = g_t.copy_(g.t()) @ h_in
                else:
                    g_w = g.t() @ h_in
                # the bias gradient summed into fp32 (a bf16 sum would round it to bf16)
                g_b = g.sum(0, dtype=torch.float32)
                if low:
                    g_w = g_w.float()
                if scale is not None:
                    g_w.mul_(self._w_out_col)  # (scale[:, None])
                    g_b.mul_(scale)
                grads = [g_w, g_b, *grads]
            if one_column:  # relu'(h) * g, and w[0] becomes the column scale
                # (the output layer: there is no scale above it)
                threshold_backward(g, h_in, 0.0, grad_input=h_in)  # (g broadcast)
                scale = self._w_out_row
            else:
                w = layer.weight if scale is None else layer.weight * self._w_out_col
                if low:
                    w = w.to(dtype)
                rows = min(BACKWARD_ROWS, n)
                buf = self._buffer("backward", rows, layer.in_features, dtype)
                for lo in range(0, n, rows):
                    part = h_in[lo : lo + rows]
                    out = buf if lo + rows <= n else buf[: n - lo]
                    g_h = torch.mm(g[lo : lo + rows], w, out=out)
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
        n: int,
        exp_term: torch.Tensor,
        q: torch.Tensor,
        w25: torch.Tensor,
        w25_t: torch.Tensor,
        want_params: bool,
    ) -> tuple:
        """The network's forward and backward pass in torch operations, for any network.

        Takes the batch's 25 bp rows (``inv25`` maps samples to them, None: one per sample),
        each sample's experiment ``e``, the ``n`` samples' values ``y``, the per-experiment
        term of the first layer and its per-250-bp-row genome term ``q`` (``inv250`` maps
        samples to rows; None: consecutive positions from ``p0``), the first layer's 25 bp
        weights and their transpose ``w25_t``. Returns the loss, the
        gradients of the first layer's 25 bp weights, of the per-experiment and per-row terms,
        of each sample's 25 bp factors (None when that table does not train), and those of
        the layers above.

        Shapes and dtypes come from the host (the network's sizes), not from the tensors.
        Consecutive positions lie in a buffer padded to whole 250 bp rows, so that adding
        ``q`` to them and summing their gradients per row are one operation each.
        """
        net = self.network
        first = net.hidden[0] if net.hidden else net.output
        n_exp, width = self.n_experiments, first.out_features
        f25 = net.genome_tables["25bp"].embedding_dim + net.n_activity_inputs
        low = self.precision == "bf16" and bool(net.hidden)  # (g_pre in bfloat16)
        # 25 bp factors and a one-hot of the experiment side by side: one product gives
        # the 25 bp term plus the per-experiment term (and, backwards, both gradients).
        fold = n_exp <= FOLD_EXPERIMENTS
        x = g25_rows if inv25 is None else g25_rows.index_select(0, inv25)
        if fold:
            x_buf, _, _, x_t = self._grouped("x", n, f25 + n_exp, torch.float32)
            x = torch.cat([x, self._one_hot.index_select(0, e)], 1, out=x_buf)
            w_x = torch.cat([w25_t, exp_term], dim=0)
        else:
            x_t, w_x = x.t(), w25_t
        lead, div = (p0 % 10, 10) if inv250 is None else (0, 1)
        # fp32: a product this skinny is no faster in bf16
        pre, pre_groups, _, _ = self._grouped("pre", n, width, torch.float32, lead, div)
        torch.mm(x, w_x, out=pre)
        if not fold:
            pre.add_(exp_term.index_select(0, e))
        if inv250 is None:
            pre_groups.add_(q[:, None])  # (the padding rows too: they are not read)
        else:
            pre.add_(q.index_select(0, inv250))

        pred, acts = self._mlp_forward(pre, (n, lead, div))
        diff = pred - y
        loss = torch.dot(diff, diff) / n
        g_pre, head_grads, scale = self._mlp_backward(diff * (2.0 / n), acts, want_params, n)
        # (the products below in bf16 with precision="bf16")
        g_x = (x_t.to(torch.bfloat16) @ g_pre).float() if low else x_t @ g_pre
        if scale is not None:  # (g_exp below is a view of g_x)
            g_x.mul_(scale)
        g_exp = g_x[f25:] if fold else torch.zeros(n_exp, width, device=self.device).index_add_(
            0, e, g_pre.float() if low else g_pre)
        if not fold and scale is not None:
            g_exp.mul_(scale)
        if inv250 is None:
            # summed per row in the padded buffer g_pre lies in, its padding zeroed
            if not net.hidden:
                g_pre = pre.copy_(g_pre)
            _, g_groups, pads, _ = self._grouped(
                "act0" if low else "pre", n, width, torch.bfloat16 if low else torch.float32,
                lead, div)
            for pad in pads:
                pad.zero_()
            g_q = g_groups.sum(1)
            if low:
                g_q = g_q.float()
        else:
            g_q = torch.zeros_like(q).index_add_(0, inv250, g_pre.float() if low else g_pre)
        if scale is not None:
            g_q.mul_(scale)
        g_g25 = None
        if "25bp" in self.row_adams:
            w = w25 if scale is None else w25 * self._w_out_col
            g_g25 = (g_pre @ w.to(torch.bfloat16)).float() if low else g_pre @ w
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

