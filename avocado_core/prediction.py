"""Imputation: what a trained :class:`~avocado_core.model.Avocado` predicts.

:class:`PredictionMixin` gives the model ``predict``, ``predict_many``, ``predict_settings`` and
``predict_embedding`` (a biosample the model does not hold, from a fitted row):
the network's output over a range of positions (on the CPU by one compiled call per range,
:func:`avocado_core.kernels.predict_positions`; elsewhere by torch, chunk by chunk), then the
prediction settings: the blend towards average activity and the moving mean
(``activity_blend``, ``smoothing``, per biosample where ``biosample_settings`` says).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from . import kernels
from .baselines import windowed_mean
from .errors import AvocadoValueError, short_list
from .network import AvocadoNetwork
from .precision import matmul_precision

__all__ = ["KERNEL_MAX_WIDTH", "PREDICTION_SETTINGS", "PredictionMixin", "kernel_fits"]

#: Settings that change predictions only (chosen after training, per biosample if wished).
PREDICTION_SETTINGS = ("activity_blend", "smoothing")
#: Bytes of first-layer activations one prediction chunk may hold (on an accelerator).
_PREDICT_BUDGET = 128 * 2**20
#: The same on the CPU: chunks whose activations stay in cache (a 2 x 64 network predicts a
#: chromosome about 3x faster than with 128 MiB chunks; benchmarks/bench_chromosome.py).
_PREDICT_BUDGET_CPU = 2 * 2**20
#: Widest hidden layers that the CPU predicts with the compiled kernel (kernels.py) when the
#: network has two or more: wider products run faster in torch's GEMM (one hidden layer has no
#: product between hidden layers: the kernel for every width; benchmarks/bench_predict.py).
KERNEL_MAX_WIDTH = 128


def kernel_fits(network: AvocadoNetwork) -> bool:
    """Whether the CPU predicts ``network`` with the compiled kernel (see KERNEL_MAX_WIDTH)."""
    return len(network.hidden) == 1 or (
        len(network.hidden) > 1 and network.hidden[0].out_features <= KERNEL_MAX_WIDTH)


def _with_biosample_rows(network: AvocadoNetwork, rows: np.ndarray) -> AvocadoNetwork:
    """A network whose biosample table is ``rows`` and whose every other weight is
    ``network``'s own (shared, not copied: the genome tables are most of a model's memory)."""
    shared = {id(p): p for p in network.parameters()}
    view = copy.deepcopy(network, memo=shared)
    device = network.biosample_embedding.weight.device
    view.biosample_embedding = torch.nn.Embedding.from_pretrained(
        torch.as_tensor(rows, dtype=torch.float32, device=device), freeze=True)
    return view


def _blend_and_smooth(out: np.ndarray, mean: np.ndarray | None, blend: float,
                      smoothing: int) -> np.ndarray:
    """``(1 - blend) out + blend mean``, then its moving mean over ``smoothing`` bins (a new
    array where either applies; ``out`` is left as it is)."""
    if blend:
        out = out * (1.0 - blend)
        out += blend * mean
    if smoothing > 1:
        out = windowed_mean(out, smoothing)
    return out


class PredictionMixin:
    """The imputation methods of :class:`~avocado_core.model.Avocado` (which holds the
    network, the names, the settings and the average activity they use)."""

    def _validation_mse(
        self, network: AvocadoNetwork, keys: list[tuple[str, str]], arrays: list[np.ndarray]
    ) -> float:
        total = 0.0
        for (b, a), y in zip(keys, arrays):
            pred = self._predict_indices(
                network, np.array([self._biosample_index(b)]), np.array([self._assay_index(a)]),
                0, network.n_positions,
            )[0]
            total += float(np.mean((pred.astype(np.float64) - np.asarray(y, np.float64)) ** 2))
        return total / len(keys)

    def _predict_indices(
        self,
        network: AvocadoNetwork,
        b_idx: np.ndarray,
        a_idx: np.ndarray,
        start: int,
        end: int,
    ) -> np.ndarray:
        groups = self._setting_groups(b_idx)
        if len(groups) == 1:
            blend, smoothing, _ = groups[0]
            return self._predict_rows(network, b_idx, a_idx, start, end, blend, smoothing)
        out = None
        for blend, smoothing, rows in groups:
            part = self._predict_rows(network, b_idx[rows], a_idx[rows], start, end, blend,
                                      smoothing)
            if out is None:
                out = np.empty((len(b_idx), part.shape[1]), part.dtype)
            out[rows] = part
        return out

    def _setting_groups(self, b_idx: np.ndarray) -> list[tuple[float, int, np.ndarray]]:
        """The rows of ``b_idx`` that share prediction settings: (blend, smoothing, rows)."""
        if not self._biosample_settings:
            return [(self.activity_blend, self.smoothing, np.arange(len(b_idx)))]
        groups: dict[tuple[float, int], list[int]] = {}
        for row, index in enumerate(b_idx):
            groups.setdefault(self._own_settings(int(index)), []).append(row)
        return [(blend, smoothing, np.array(rows)) for (blend, smoothing), rows in groups.items()]

    def _own_settings(self, index: int) -> tuple[float, int]:
        """The blend and smoothing of biosample ``index``'s imputations."""
        own = self._biosample_settings.get(self.biosamples[index], {})
        return (own.get("activity_blend", self.activity_blend),
                own.get("smoothing", self.smoothing))

    def _predict_rows(
        self,
        network: AvocadoNetwork,
        b_idx: np.ndarray,
        a_idx: np.ndarray,
        start: int,
        end: int,
        blend: float,
        smoothing: int,
    ) -> np.ndarray:
        """Imputations of rows that share the blend and the smoothing.

        A moving mean reads the model half a window past each end of the range (as far as
        there are positions), so a range gives the values of a whole prediction.
        """
        lo = max(0, start - smoothing // 2)
        hi = min(network.n_positions, end + (smoothing - 1) // 2)
        out, mean = self._network_rows(network, b_idx, a_idx, lo, hi, bool(blend))
        return _blend_and_smooth(out, mean, blend, smoothing)[:, start - lo : end - lo]

    def _network_rows(
        self,
        network: AvocadoNetwork,
        b_idx: np.ndarray,
        a_idx: np.ndarray,
        lo: int,
        hi: int,
        with_mean: bool,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's output before any blend or smoothing, and (if ``with_mean``) the rows'
        average activity."""
        if self.device.type == "cpu" and kernel_fits(network):
            out = self._predict_kernel(network, b_idx, a_idx, lo, hi)
        else:
            out = self._predict_torch(network, b_idx, a_idx, lo, hi)
        mean = None
        if self.average_activity == "residual" or with_mean:
            mean = self._require_activity().rows(a_idx, lo, hi, self.assays)
            if self.average_activity == "residual":
                out += mean
        return out, mean

    def _predict_kernel(
        self, network: AvocadoNetwork, b_idx: np.ndarray, a_idx: np.ndarray, start: int, end: int
    ) -> np.ndarray:
        """The network's output by :func:`kernels.predict_positions` (CPU: one compiled call
        per thread that holds no GIL; as many threads as torch uses)."""
        activity = None
        if self.average_activity == "input":
            activity = self._require_activity().rows(a_idx, start, end, self.assays)
        return kernels.predict_positions(
            [t.weight.detach().numpy() for t in network.genome_tables.values()],
            [network.biosample_embedding.weight.detach().numpy(),
             network.assay_embedding.weight.detach().numpy()],
            (b_idx, a_idx),
            [(layer.weight.detach().numpy(), layer.bias.detach().numpy())
             for layer in [*network.hidden, network.output]],
            start, end, activity,
            threads=torch.get_num_threads(),
        )

    def _predict_torch(
        self, network: AvocadoNetwork, b_idx: np.ndarray, a_idx: np.ndarray, start: int, end: int
    ) -> np.ndarray:
        """The network's output by torch, chunk by chunk (an accelerator, or wide layers)."""
        n_exp = len(b_idx)
        out = np.empty((n_exp, end - start), dtype=np.float32)
        width = network.hidden[0].out_features if network.hidden else 1
        dev = self.device
        budget = _PREDICT_BUDGET_CPU if dev.type == "cpu" else _PREDICT_BUDGET
        chunk = max(1, budget // (4 * width * max(n_exp, 1)))
        precision = self.predict_precision
        low = (torch.autocast(dev.type, dtype=torch.bfloat16) if precision == "bf16"
               else contextlib.nullcontext())  # (the MLP's products; its input stays fp32)
        with torch.no_grad(), matmul_precision(precision, dev):
            exp_term = network.experiment_term(
                torch.as_tensor(b_idx, dtype=torch.long, device=dev),
                torch.as_tensor(a_idx, dtype=torch.long, device=dev),
            )
            for lo in range(start, end, chunk):  # chunks of positions, vectorized inside
                hi = min(end, lo + chunk)
                pos = torch.arange(lo, hi, device=dev)
                pre = network.genome_term(pos).unsqueeze(0) + exp_term.unsqueeze(1)
                if self.average_activity == "input":
                    mean = self._require_activity().rows(a_idx, lo, hi, self.assays)
                    pre += torch.from_numpy(mean).to(dev)[:, :, None] * network.activity_weight()
                with low:
                    head = network.head(pre)
                out[:, lo - start : hi - start] = head.float().cpu().numpy()
        return out

    @property
    def predict_precision(self) -> str:
        """The precision predictions use: on CUDA the training's (:attr:`train_precision`:
        with ``"auto"``, bf16 or TF32 products on a GPU with tensor cores for them), fp32
        elsewhere."""
        return self.train_precision if self.device.type == "cuda" else "fp32"

    def _check_range(self, start: int, end: int | None) -> tuple[int, int]:
        end = self.n_positions if end is None else end
        if not (0 <= start < end <= self.n_positions):
            raise AvocadoValueError(
                f"position range [{start}, {end}) is not within [0, {self.n_positions})"
            )
        return int(start), int(end)

    def predict(self, biosample: str, assay: str, start: int = 0, end: int | None = None
                ) -> np.ndarray:
        """Impute one experiment's signal over positions ``[start, end)``.

        Parameters
        ----------
        biosample: str
            A biosample the model knows.
        assay: str
            An assay the model knows.
        start: int, optional
            First position. Default is 0.
        end: int or None, optional
            One past the last position. Default is None: ``n_positions``.

        Returns
        -------
        numpy.ndarray, shape=(end - start,), dtype=float32
        """
        return self.predict_many([(biosample, assay)], start, end)[0]

    def predict_many(
        self, experiments: Sequence[tuple[str, str]], start: int = 0, end: int | None = None
    ) -> np.ndarray:
        """Impute several experiments at once (the genome term is shared between them).

        Parameters
        ----------
        experiments: sequence of (str, str)
            ``(biosample, assay)`` pairs.
        start, end: int, optional
            Position range, as in :meth:`predict`.

        Returns
        -------
        numpy.ndarray, shape=(len(experiments), end - start), dtype=float32
        """
        experiments = list(experiments)
        if not experiments:
            raise AvocadoValueError("predict_many needs at least one (biosample, assay) pair")
        start, end = self._check_range(start, end)
        b_idx = np.array([self._biosample_index(b) for b, _ in experiments])
        a_idx = np.array([self._assay_index(a) for _, a in experiments])
        return self._predict_indices(self.network, b_idx, a_idx, start, end)

    def predict_settings(
        self, biosample: str, assay: str, settings: Sequence[Mapping[str, Any]],
        start: int = 0, end: int | None = None,
    ) -> np.ndarray:
        """One experiment's imputation under several prediction settings, from one network pass.

        What :meth:`predict` returns with ``activity_blend`` and ``smoothing`` set to each
        entry's values in turn (the same numbers; over part of the positions, to float32
        rounding), at the cost of one prediction and a blend and a moving mean per entry:
        model selection scores a grid of these settings this way.

        Parameters
        ----------
        biosample, assay: str
            The experiment.
        settings: sequence of dict
            Each a dict with some of ``activity_blend`` and ``smoothing``
            (:data:`PREDICTION_SETTINGS`); what an entry leaves out is the biosample's own
            setting (``biosample_settings``, else the model's).
        start, end: int, optional
            Position range, as in :meth:`predict`. Default: every position.

        Returns
        -------
        numpy.ndarray, shape=(len(settings), end - start), dtype=float32
        """
        start, end = self._check_range(start, end)
        b_idx = np.array([self._biosample_index(biosample)])
        a_idx = np.array([self._assay_index(assay)])
        own_blend, own_smoothing = self._own_settings(int(b_idx[0]))
        chosen = []
        for entry in settings:
            entry = self._checked_settings("settings entry", entry, allow_empty=True)
            chosen.append((entry.get("activity_blend", own_blend),
                           entry.get("smoothing", own_smoothing)))
        if not chosen:
            raise AvocadoValueError("predict_settings needs at least one settings entry")
        # the widest moving mean reads half its window past each end (as predict does)
        widest = max(smoothing for _, smoothing in chosen)
        lo = max(0, start - widest // 2)
        hi = min(self.n_positions, end + (widest - 1) // 2)
        out, mean = self._network_rows(self.network, b_idx, a_idx, lo, hi,
                                       any(blend for blend, _ in chosen))
        return np.concatenate([_blend_and_smooth(out, mean, blend, smoothing)
                               [:, start - lo : end - lo] for blend, smoothing in chosen])

    def predict_embedding(
        self, embedding: Sequence[float] | np.ndarray, assays: Sequence[str], start: int = 0,
        end: int | None = None, *, settings: Mapping[str, Any] | None = None,
    ) -> np.ndarray:
        """Impute a biosample the model does not hold, from its embedding row.

        The row is one that :meth:`fit_biosamples` (or
        :func:`avocado_core.placement.place_biosample`) fitted with the model frozen: the
        prediction is what a model holding that row predicts for it, by the same network,
        genome and assay factors, and the same computation as :meth:`predict_many` (chunked
        over positions inside; a range of positions gives the values of a whole prediction).
        A row equal to a known biosample's, with that biosample's settings, predicts its
        imputation.

        Parameters
        ----------
        embedding: array-like, shape=(n_biosample_factors,)
            The new biosample's row (finite numbers).
        assays: sequence of str
            Assays the model knows, one output row each.
        start, end: int, optional
            Position range, as in :meth:`predict`. Default: every position.
        settings: dict or None, optional
            Prediction settings of the new biosample, some of ``activity_blend`` and
            ``smoothing`` (:data:`PREDICTION_SETTINGS`); what it leaves out is the model's.
            Default is None: the model's settings (a new biosample has none of its own).

        Returns
        -------
        numpy.ndarray, shape=(len(assays), end - start), dtype=float32

        Raises
        ------
        AvocadoValueError, AvocadoKeyError
            A row of the wrong width or not finite, no assay or an unknown one, a range
            outside the positions, bad settings.
        """
        row = np.asarray(embedding, dtype=np.float32)
        width = int(self.network.biosample_embedding.embedding_dim)
        if row.shape != (width,) or not np.all(np.isfinite(row)):
            raise AvocadoValueError(
                f"the embedding row has shape {row.shape}"
                f"{'' if np.all(np.isfinite(row)) else ' and non-finite values'}; the model's "
                f"biosample rows are {width} finite numbers")
        assays = [str(a) for a in assays]
        if not assays:
            raise AvocadoValueError("predict_embedding needs at least one assay; the model "
                                    f"knows {short_list(self.assays)}")
        start, end = self._check_range(start, end)
        own = self._checked_settings("settings", dict(settings or {}), allow_empty=True)
        a_idx = np.array([self._assay_index(a) for a in assays])
        network = _with_biosample_rows(self.network, row[None, :])
        return self._predict_rows(network, np.zeros(len(assays), dtype=np.int64), a_idx,
                                  start, end, own.get("activity_blend", self.activity_blend),
                                  own.get("smoothing", self.smoothing))
