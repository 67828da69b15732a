"""The trainer: one optimization step of an AvocadoNetwork per call (fast and reference paths)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ..errors import AvocadoValueError
from ..network import AvocadoNetwork
from ..precision import matmul_precision
from .batches import batch_rows
from .memory import tune_malloc
from .optimizer import (
    FUSED_ADAM_DEVICES,
    CatchUpAdam,
    catch_up_tables,
    fused_adam_step,
    put_rows,
    step_tables,
    take_rows,
)
from .passes import FOLD_EXPERIMENTS, NetworkPass
from .sampling import Sampler
from .sources import TrackSource
from .transfer import to_device

__all__ = ["GROUPS", "Trainer", "tune_malloc"]

#: Names of the parameter groups a trainer can update.
GROUPS = ("biosample", "assay", "25bp", "250bp", "5kbp", "network")


class Trainer(NetworkPass):
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
        ``"fp32"``, ``"tf32"`` (fp32 with TF32 products on CUDA's tensor cores, see
        :func:`~avocado_core.precision.matmul_precision`) or ``"bf16"`` (the MLP's
        activations, their gradients and its matrix products in bfloat16, accumulating in
        fp32; parameters, Adam, the loss and the genome terms of the first layer stay fp32).
        Default is ``"fp32"``.
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
        if precision not in ("fp32", "tf32", "bf16"):
            raise AvocadoValueError(
                f"unknown precision {precision!r}; expected 'fp32', 'tf32' or 'bf16'")
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
        self.n_experiments = len(np.asarray(biosample_index))
        # rows of one-hots of the experiments (the torch pass's x, where they fold into it)
        self._one_hot = (torch.eye(self.n_experiments, device=dev)
                         if self.n_experiments <= FOLD_EXPERIMENTS else None)
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
        # batch x width arrays of the torch pass, allocated once and reused by every step,
        # and views of them
        self._buffers: dict[str | tuple, torch.Tensor] = {}
        self._views: dict[tuple, tuple] = {}
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
        # Views of the first layer's weight per input group (biosample, assay, 25 bp, 250 bp,
        # 5 kbp, activity) and of its transpose, and of the output weight's row: taken once,
        # they follow the parameters' in-place updates.
        first = network.hidden[0] if network.hidden else network.output
        genome = network.genome_tables
        sizes = [network.biosample_embedding.embedding_dim,
                 network.assay_embedding.embedding_dim,
                 *(genome[res].embedding_dim for res in ("25bp", "250bp", "5kbp")),
                 network.n_activity_inputs]
        self._first_weight = first.weight.detach().split(sizes, dim=1)
        self._first_weight_t = first.weight.detach().t().split(sizes)
        self._w_out_row = network.output.weight.detach()[0]
        self._w_out_col = self._w_out_row[:, None]
        self.row_masks: dict[str, torch.Tensor] = {}
        for group, rows in (trainable_rows or {}).items():
            mask = torch.zeros(tables[group].shape[0], 1, dtype=tables[group].dtype)
            mask[torch.as_tensor(np.asarray(rows), dtype=torch.long)] = 1
            self.row_masks[group] = mask.to(dev)
        # zeros the biosample / assay gradients are added to (index_add copies them)
        self._zero_grads = {group: torch.zeros_like(tables[group]) for group in self.params
                            if group in ("biosample", "assay")}
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
    def _batch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next batch's experiments, positions and values (on the host)."""
        if not self._prefetching:
            experiments, positions = self.sampler.next_batch()
            values = self.source.values(experiments, positions)
        else:
            if self._prefetch is None:
                self._prefetch = self._draw_ahead()
            experiments, positions, future = self._prefetch
            values = future.result()
            self._prefetch = self._draw_ahead()
        return experiments, positions, np.asarray(values, dtype=np.float32)

    def _draw_ahead(self) -> tuple[np.ndarray, np.ndarray, Future]:
        """Draw the next batch and start reading its values on the helper thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="avocado-batch")
            weakref.finalize(self, self._pool.shutdown, wait=False)
        self._sampler_state = self.sampler.state_dict()
        experiments, positions = self.sampler.next_batch()
        return experiments, positions, self._pool.submit(self.source.values, experiments,
                                                         positions)

    def step(self) -> float:
        """Draw one batch and take one Adam step.

        Returns
        -------
        float
            The batch's mean squared error before the step (reading it waits for the device:
            a loop over many steps calls :meth:`advance`).
        """
        return float(self.advance())

    def advance(self) -> torch.Tensor:
        """Draw one batch and take one Adam step, without waiting for the device.

        Returns
        -------
        torch.Tensor
            The batch's mean squared error before the step, a scalar on the device (float64
            from the compiled CPU kernel, else float32).
        """
        with matmul_precision(self.precision, self.device):
            if self.mode == "dense":
                return self._step_dense()
            return self._step_catchup()

    def _activity_values(self, experiments: np.ndarray, positions: np.ndarray,
                         values: np.ndarray) -> dict[str, np.ndarray]:
        """Each sample's average-activity input, as ``{"activity": array}`` (empty without
        one)."""
        if self.activity_input is None:
            return {}
        return {"activity": np.asarray(
            self.activity_input.input_values(experiments, positions, values), dtype=np.float32)}

    def _step_dense(self) -> torch.Tensor:
        experiments, positions, values = self._batch()
        batch = to_device({"e": experiments, "p": positions, "y": values,
                           **self._activity_values(experiments, positions, values)}, self.device)
        exp, y = batch["e"], batch["y"]
        with self._autocast():
            pred = self.network(self.exp_biosample[exp], self.exp_assay[exp], batch["p"],
                                batch.get("activity"))
        loss = torch.mean((pred.float() - y) ** 2)
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        for group, mask in self.row_masks.items():
            self.params[group].grad.mul_(mask)
        self.optimizer.step()
        self.decay_biosamples()
        self.step_count += 1
        return loss.detach()

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

    def _step_catchup(self) -> torch.Tensor:
        """One step of the fast path. The host works out the batch's rows and the catch-up of
        the rows that missed steps (numpy, from the catch-up Adams' host mirrors), sends what
        the device needs in one copy, and only then queues the device's work: nothing in a
        step waits for the device."""
        net = self.network
        t = self.step_count + 1
        experiments, positions, values = self._batch()
        # (a scan over a subset of positions can wrap onto the same span by chance: it takes
        # the general path)
        rows = batch_rows(positions, self.sampler.sampling == "sequential"
                          and self.sampler.positions is None)
        # rows must be current before the step reads them
        coefs = {res: coef for res, adam in self.row_adams.items()
                 if (coef := adam.plan_catch_up(rows.rows[res], t - 1)) is not None}
        arrays = {"e": experiments, "y": values, **rows.arrays(),
                  **self._activity_values(experiments, positions, values),
                  **{f"{res}.catch_up": coef for res, coef in coefs.items()}}
        dev = to_device(arrays, self.device)
        index = {res: r if isinstance(r, slice) else dev[f"rows.{res}"]
                 for res, r in rows.rows.items()}
        # each trained table's rows, taken once: caught up, read by the pass, then stepped
        held = {res: take_rows(adam, rows.rows[res], index[res])
                for res, adam in self.row_adams.items()}
        catch_up_tables([(held[res], dev[f"{res}.catch_up"]) for res in coefs])

        tables = net.genome_tables
        first = net.hidden[0] if net.hidden else net.output
        f25, n_act = tables["25bp"].embedding_dim, net.n_activity_inputs
        w_b, w_a, w25, w250, w5k, w_act = self._first_weight
        wt_b, wt_a, wt25, wt250, wt5k, wt_act = self._first_weight_t
        train_net = "network" in self.train_groups
        inv25, inv250, map5k = dev.get("inv25"), dev.get("inv250"), dev["map5k"]
        # (no torch.no_grad(): on this path no parameter requires a gradient, see __init__,
        # so no operation below records one)
        e, y = dev["e"], dev["y"]
        b_rows = net.biosample_embedding.weight.index_select(0, self.exp_biosample)
        a_rows = net.assay_embedding.weight.index_select(0, self.exp_assay)
        exp_term = torch.addmm(first.bias, b_rows, wt_b).addmm_(a_rows, wt_a)
        g25_rows, g250_rows, g5k_rows = (
            held[res].p if res in held else tables[res].weight[index[res]]
            for res in ("25bp", "250bp", "5kbp"))
        # 250 bp and 5 kbp terms, summed per 250 bp row, then added to their samples.
        q = torch.addmm((g5k_rows @ wt5k).index_select(0, map5k), g250_rows, wt250)
        # The average-activity input is one more column of each sample's 25 bp factors
        # (with its own first-layer weights): the passes below need no change.
        x_rows, x_inv, w_x, w_x_t = g25_rows, inv25, w25, wt25
        if n_act:
            per_sample = g25_rows if inv25 is None else g25_rows.index_select(0, inv25)
            x_rows = torch.cat([per_sample, dev["activity"][:, None]], 1)
            x_inv, w_x, w_x_t = None, torch.cat([w25, w_act], 1), torch.cat([wt25, wt_act])
        if self._fused:
            loss, g_w25, g_exp, g_q, g_g25, head_grads = self._pass_fused(
                x_rows, None if n_act else rows.inv25, e, rows.q_row, y, exp_term, q, w_x)
            loss = torch.tensor(loss, dtype=torch.float64)
        else:
            loss, g_w25, g_exp, g_q, g_g25, head_grads = self._pass_torch(
                x_rows, x_inv, e, inv250, rows.p0, y, len(experiments), exp_term, q, w_x,
                w_x_t, train_net)
        g_w_act = []
        if n_act:
            g_w_act, g_w25 = [g_w25[:, f25:]], g_w25[:, :f25]
            if g_g25 is not None:
                g_g25 = g_g25[:, :f25]
        g_q5k = self._zeros(rows.n_rows("5kbp"), first.out_features).index_add(0, map5k, g_q)
        # Gradients that read the genome rows come first: the rows may be views of the
        # tables, which the row steps below update in place.
        if self.optimizer is not None and train_net:
            g_exp_t = g_exp.t()
            g_w1 = torch.cat(
                [g_exp_t @ b_rows, g_exp_t @ a_rows, g_w25,
                 g_q.t() @ g250_rows, g_q5k.t() @ g5k_rows, *g_w_act], dim=1
            )
        if "25bp" in self.row_adams and inv25 is not None:
            g_g25 = torch.zeros(rows.n_rows("25bp"), f25, device=self.device).index_add_(
                0, inv25, g_g25)
        row_grads = {"25bp": lambda: g_g25, "250bp": lambda: g_q @ w250,
                     "5kbp": lambda: g_q5k @ w5k}
        step_tables([(held[res], row_grads[res]()) for res in held], t)
        put_rows(list(held.values()))
        if self.optimizer is not None:
            grads = {}
            if train_net:
                dense = [g_w1, g_exp.sum(0), *head_grads]
                grads.update({f"network.{i}": g for i, g in enumerate(dense)})
            for group, exp_rows, w in (("biosample", self.exp_biosample, w_b),
                                       ("assay", self.exp_assay, w_a)):
                if group in self.params:
                    # (index_add: a copy of the zeros with the rows added)
                    grad = self._zero_grads[group].index_add(0, exp_rows, g_exp @ w)
                    if group in self.row_masks:
                        grad.mul_(self.row_masks[group])
                    grads[group] = grad
            self._dense_step([grads[name] for name in self.params])
        self.decay_biosamples()
        self.step_count += 1
        return loss

    def _dense_step(self, grads: list[torch.Tensor]) -> None:
        """Adam step of the parameters torch's Adam steps, with their gradients in order."""
        if self.device.type in FUSED_ADAM_DEVICES:
            fused_adam_step(self.optimizer, grads)
            return
        for p, g in zip(self.params.values(), grads):
            p.grad = g
        self.optimizer.step()

    def finalize(self) -> None:
        """Bring every row of the catch-up tables up to date (before predicting or saving).

        Also lets go of the step's activation buffers: prediction may need the memory.
        """
        for adam in self.row_adams.values():
            adam.finalize(self.step_count)
        self._buffers.clear()
        self._views.clear()

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
