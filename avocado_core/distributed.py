"""Distributed data-parallel training with ``torch.distributed``, launched by ``torchrun``.

Every process (rank) holds a full replica of the model and of the optimizer state. All ranks
draw the same global batch from identically seeded samplers; rank ``r`` of ``R`` reads and
computes only its contiguous ``1/R`` share of the samples. The loss of a rank is its share of the
*global* mean squared error (its squared errors summed, divided by the global batch size), so
summing the gradients over the ranks gives exactly the single-process gradient of the global
batch. One ``all_reduce`` per step sums, in one flat buffer, the loss, the gradients of the MLP,
the (small, dense) gradients of the biosample and assay tables, and the gradients of the genome
rows the global batch touches (the union over ranks, known to every rank since every rank knows
the global batch). Each rank then takes the same Adam step, so the replicas stay identical: with
the same global batch, ``R`` processes give the parameters of one process within floating-point
tolerance (``tests/test_distributed.py`` checks it with 2 CPU processes).

Backends: ``gloo`` on CPU, ``nccl`` on GPUs (one GPU per rank, ``LOCAL_RANK``). From the shell,
``avocado train --distributed`` (the same options as ``avocado train``) under ``torchrun``::

    torchrun --standalone --nproc-per-node 2 -m avocado_core train STORE MODEL --distributed

or, from Python, inside a script started by ``torchrun``::

    from avocado_core import Avocado, TrackStore
    from avocado_core.distributed import init_distributed, data_parallel

    ctx = init_distributed()
    store = TrackStore("store/")
    model = Avocado.from_preset("small", store.experiments(), store.n_bins, seed=0,
                                device=ctx.device)
    with data_parallel():
        model.fit(store, n_epochs=10, progress=ctx.is_main)
    if ctx.is_main:
        model.save("model/")

See ``docs/scale.md`` for multi-GPU and multi-node commands.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .devices import as_device
from .errors import AvocadoValueError
from .regions import GENOME_RESOLUTIONS
from .training import Trainer, training_scope
from .training.optimizer import put_rows, step_tables, take_rows
from .training.transfer import to_device

__all__ = [
    "DistributedContext",
    "DistributedTrainer",
    "data_parallel",
    "init_distributed",
    "shard_bounds",
]

#: Order of the embedding groups in the reduced gradient buffer.
_TABLES = ("biosample", "assay", "25bp", "250bp", "5kbp")
_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the process group.

    Attributes
    ----------
    rank: int
        This process's rank.
    world_size: int
        Number of processes.
    local_rank: int
        Rank on this machine (selects the GPU).
    device: torch.device
        The device this rank computes on.
    backend: str
        ``"gloo"`` or ``"nccl"``.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes files and shows progress)."""
        return self.rank == 0


def init_distributed(
    backend: str | None = None, device: str | torch.device | None = None
) -> DistributedContext:
    """Join the process group that ``torchrun`` set up (idempotent).

    Parameters
    ----------
    backend: str or None, optional
        ``"gloo"`` or ``"nccl"``. Default is None: NCCL when ``device`` is CUDA (or, without
        ``device``, when :func:`avocado_core.devices.default_device` is), else gloo.
    device: str or torch.device or None, optional
        ``"cpu"`` or ``"cuda"``: each rank takes its own device, ``cuda:LOCAL_RANK`` on CUDA.
        A device with an index (``"cuda:0"``) is refused: it would put every rank on one GPU.
        Default is None: ``cuda:LOCAL_RANK`` with NCCL, CPU with gloo.

    Returns
    -------
    DistributedContext

    Raises
    ------
    AvocadoValueError
        When the environment variables ``torchrun`` sets are missing, the backend is unknown,
        or ``device`` names a device index.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is not None:
        device = as_device(device)
        if device.index is not None:
            raise AvocadoValueError(
                f"device {str(device)!r} with distributed training: every rank would use that "
                f"one device; pass {device.type!r} and each rank takes its own "
                f"({device.type}:LOCAL_RANK)")
    if not dist.is_initialized():
        missing = [v for v in _ENV if v not in os.environ]
        if missing:
            raise AvocadoValueError(
                f"environment variable(s) {', '.join(missing)} are not set: start this program "
                "with torchrun, e.g. 'torchrun --standalone --nproc-per-node 2 -m "
                "avocado_core train STORE MODEL --distributed'"
            )
        if backend is None:
            backend = "nccl" if as_device(device).type == "cuda" else "gloo"
        if backend not in ("gloo", "nccl"):
            raise AvocadoValueError(f"unknown backend {backend!r}; expected 'gloo' or 'nccl'")
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend)
    backend = str(dist.get_backend())
    if device is None:
        device = torch.device(f"cuda:{local_rank}" if backend == "nccl" else "cpu")
    elif device.type == "cuda":  # this rank's GPU
        device = torch.device("cuda", local_rank)
    return DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        device=device,
        backend=backend,
    )


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """The contiguous share ``[lo, hi)`` of ``n`` samples that ``rank`` computes.

    Parameters
    ----------
    n: int
        Global batch size.
    rank, world_size: int

    Returns
    -------
    tuple of int
    """
    return n * rank // world_size, n * (rank + 1) // world_size


class DistributedTrainer(Trainer):
    """A :class:`~avocado_core.training.Trainer` whose steps are data-parallel over ranks.

    Takes the arguments of :class:`~avocado_core.training.Trainer` (``batch_size`` is the
    global batch) plus ``group``. At construction the parameters and the sampler state of rank
    0 are broadcast, so replicas start identical even when their seeds differ. Each step
    catches up the touched genome rows (catch-up Adam), computes this rank's share of the
    gradient with autograd over the gathered rows, sums everything with one ``all_reduce``
    and applies the same Adam step on every rank. Checkpoints, ``finalize`` and the state
    methods are inherited: every rank holds the same state.

    Parameters
    ----------
    *args, **kwargs:
        As for :class:`~avocado_core.training.Trainer`.
    group: torch.distributed.ProcessGroup or None, optional
        The process group. Default is None: the default group.
    """

    def __init__(self, *args: Any, group: Any = None, **kwargs: Any) -> None:
        if not dist.is_initialized():
            raise AvocadoValueError(
                "DistributedTrainer needs an initialized process group: call "
                "avocado_core.distributed.init_distributed() in a program started by torchrun"
            )
        super().__init__(*args, **kwargs)
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        if self.batch_size < self.world_size:
            raise AvocadoValueError(
                f"global batch_size {self.batch_size} is smaller than the {self.world_size} "
                "processes; every process needs at least one sample"
            )
        src = dist.get_global_rank(group, 0) if group is not None else 0
        with torch.no_grad():
            for tensor in [*self.network.parameters(), *self.network.buffers()]:
                dist.broadcast(tensor.data, src=src, group=group)
        state = [self.sampler.state_dict()]
        dist.broadcast_object_list(state, src=src, group=group)
        self.sampler.load_state_dict(state[0])

    def advance(self) -> torch.Tensor:
        """Draw the global batch, take this rank's share, all-reduce, take one Adam step.

        Returns
        -------
        torch.Tensor
            The global batch's mean squared error before the step (the same on every rank),
            a scalar on the device.
        """
        net, dev = self.network, self.device
        t = self.step_count + 1
        experiments, positions = self.sampler.next_batch()
        n = len(positions)
        lo, hi = shard_bounds(n, self.rank, self.world_size)
        trained = set(self.train_groups)
        tables = net.embedding_parameters()

        # Rows of the global batch: the same on every rank, so the reduced buffers line up.
        host_rows: dict[str, np.ndarray] = {}
        arrays: dict[str, np.ndarray] = {}
        for res, div in GENOME_RESOLUTIONS.items():
            unique, inverse = np.unique(positions // div, return_inverse=True)
            host_rows[res] = unique
            arrays[f"rows.{res}"] = unique.astype(np.int64, copy=False)
            arrays[f"inv.{res}"] = inverse.reshape(-1)[lo:hi].astype(np.int64)
        values = np.asarray(self.source.values(experiments[lo:hi], positions[lo:hi]),
                            dtype=np.float32)
        arrays.update(e=experiments[lo:hi], y=values,
                      **self._activity_values(experiments[lo:hi], positions[lo:hi], values))
        batch = to_device(arrays, dev)
        rows = {res: batch[f"rows.{res}"] for res in GENOME_RESOLUTIONS}
        local_inv = {res: batch[f"inv.{res}"] for res in GENOME_RESOLUTIONS}
        for res, adam in self.row_adams.items():
            adam.catch_up(host_rows[res], t - 1, rows[res])  # rows must be current first
        e, y = batch["e"], batch["y"]

        leaves = {
            "biosample": tables["biosample"].detach(),
            "assay": tables["assay"].detach(),
            **{res: tables[res].detach()[rows[res]] for res in GENOME_RESOLUTIONS},
        }
        names = [g for g in _TABLES if g in trained]
        for g in names:
            leaves[g].requires_grad_(True)
        mlp = net.dense_parameters() if "network" in trained else []
        for p in mlp:
            p.requires_grad_(True)
        try:
            x = torch.cat(
                [
                    leaves["biosample"][self.exp_biosample[e]],
                    leaves["assay"][self.exp_assay[e]],
                    *(leaves[res][local_inv[res]] for res in GENOME_RESOLUTIONS),
                    *([batch["activity"][:, None]] if "activity" in batch else []),
                ],
                dim=1,
            )
            first = net.hidden[0] if net.hidden else net.output
            pre = torch.nn.functional.linear(x, first.weight, first.bias)
            with self._autocast():
                pred = net.head(pre)
            # This rank's share of the global mean: the ranks' gradients sum to the global one.
            loss = torch.sum((pred.float() - y) ** 2) / n
            wanted = [leaves[g] for g in names] + mlp
            grads = list(torch.autograd.grad(loss, wanted)) if wanted else []
        finally:
            for p in mlp:
                p.requires_grad_(False)

        flat = torch.cat(
            [loss.detach().reshape(1).float(), *(g.reshape(-1).float() for g in grads)]
        )
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.group)
        reduced, at = [], 1
        for g in grads:
            reduced.append(flat[at : at + g.numel()].view_as(g).to(g.dtype))
            at += g.numel()
        table_grads = dict(zip(names, reduced[: len(names)]))
        mlp_grads = reduced[len(names) :]

        with torch.no_grad():
            held = {res: take_rows(adam, host_rows[res], rows[res])
                    for res, adam in self.row_adams.items()}
            step_tables([(held[res], table_grads[res]) for res in held], t)
            put_rows(list(held.values()))
            if self.optimizer is not None:
                for name, p in self.params.items():
                    if name.startswith("network."):
                        p.grad = mlp_grads[int(name.split(".", 1)[1])]
                    elif name in ("biosample", "assay"):
                        grad = table_grads[name]
                        if name in self.row_masks:
                            grad = grad * self.row_masks[name]
                        p.grad = grad
                    else:  # a genome table stepped by torch's Adam (the dense reference path)
                        p.grad = torch.zeros_like(p).index_add_(0, rows[name], table_grads[name])
                self.optimizer.step()
        self.decay_biosamples()
        self.step_count += 1
        return flat[0]


@contextlib.contextmanager
def data_parallel(group: Any = None) -> Iterator[None]:
    """Make every ``Avocado`` fit in this process data-parallel (within the ``with`` block).

    ``fit``, ``fit_biosamples`` / ``fit_assays`` and ``fit_positions`` then train with
    :class:`DistributedTrainer`. Give every rank the same data and call the same methods with
    the same arguments; ``batch_size`` is the global batch. Pass ``progress`` only on rank 0,
    save only on rank 0, and give each rank its own ``checkpoint_dir`` (the checkpoints are
    identical; a rank-local directory also works without a shared file system). Sugar over
    the ``trainer`` option of ``fit`` (``trainer=DistributedTrainer``): a
    :func:`~avocado_core.training.training_scope`, local to the block and its thread.

    Parameters
    ----------
    group: torch.distributed.ProcessGroup or None, optional
        Default is None: the default group.
    """
    if not dist.is_initialized():
        raise AvocadoValueError(
            "data_parallel() needs an initialized process group: call init_distributed() first "
            "(in a program started by torchrun)"
        )
    trainer = (
        functools.partial(DistributedTrainer, group=group)
        if group is not None
        else DistributedTrainer
    )
    with training_scope(trainer=trainer):
        yield
