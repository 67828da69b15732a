"""Train avocado_core from the original Avocado's own start: its initial weights, its batches.

Run by ``bench_vs_original.py`` (with this project's Python) right after ``original_runner.py``
trained the original with ``"save_start"``: that saved the original model as its training
began, in the original's format, and the state of numpy's global generator, from which the
original's ``sequential_data_generator`` draws the experiment of every sample. Here
:func:`avocado_core.original.read_original` reads those weights (what ``avocado
import-original`` does) and :class:`ReplaySampler` draws the very batches the original trained
on: consecutive positions from the first bin, each sample's experiment from
``numpy.random.randint(n_experiments, size=batch_size)`` on the restored generator, mapped from
the original's order of the training experiments to the trainer's. The two implementations
then differ only in their arithmetic (TensorFlow's against torch's and the compiled kernels;
Keras adds Adam's epsilon to the root of the uncorrected second moment, torch to the corrected
one), so their held-out scores show how closely one reproduces the other, apart from the
differences between two random draws.

Usage (by the benchmark)::

    python benchmarks/original_start.py '{"start_from": FOLDER, "held_out": ["E065", "H3K4me3"],
                                          "epochs": 10, "epoch_size": 113, "warmup": 0}'

It prints one line ``RESULT {json}`` as ``original_runner.py`` does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_training import _peak_rss_mb, fit_and_score, load_pilot
from original_runner import START_STATE

from avocado_core.original import read_original
from avocado_core.training import Trainer
from avocado_core.training.sampling import Sampler


class ReplaySampler(Sampler):
    """The sequential scan, with each sample's experiment drawn as the original draws it.

    Parameters
    ----------
    n_positions, n_experiments, batch_size, **kwargs:
        As :class:`~avocado_core.training.sampling.Sampler` (``sampling`` must be
        ``"sequential"``, the original's default).
    state: dict
        numpy's global generator state as ``original_runner.save_start`` wrote it.
    order: numpy.ndarray of int, shape=(n_experiments,)
        The trainer's index of the original's experiment ``i``.
    """

    def __init__(self, n_positions: int, n_experiments: int, batch_size: int, *,
                 state: dict[str, Any], order: np.ndarray, **kwargs: Any) -> None:
        super().__init__(n_positions, n_experiments, batch_size, **kwargs)
        if self.sampling != "sequential" or self.positions is not None:
            raise ValueError(f"the original's batches are a sequential scan over every "
                             f"position, not sampling={self.sampling!r}")
        self.order = np.asarray(order, dtype=np.int64)
        self.legacy = np.random.RandomState()
        self.legacy.set_state((state["bit_generator"], np.asarray(state["keys"], np.uint32),
                               state["pos"], state["has_gauss"], state["cached_gaussian"]))

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next batch: the scan's positions, the original's experiments."""
        _, positions = super().next_batch()  # (the base class's own experiment draw unused)
        drawn = self.legacy.randint(len(self.order), size=self.batch_size)
        return self.order[drawn], positions


def replay_trainer(model, state: dict[str, Any]) -> Callable[..., Trainer]:
    """A ``trainer=`` factory for ``model.fit``: a Trainer whose sampler replays ``state``."""

    def make(network, biosample_index, assay_index, source, batch_size, **kwargs) -> Trainer:
        trainer = Trainer(network, biosample_index, assay_index, source, batch_size, **kwargs)
        ours = [(model.biosamples[b], model.assays[a])
                for b, a in zip(biosample_index, assay_index)]
        order = np.array([ours.index(tuple(e)) for e in state["experiments"]])
        trainer.sampler = ReplaySampler(
            source.n_positions, source.n_experiments, batch_size, state=state, order=order,
            sampling=kwargs.get("sampling", "sequential"), seed=kwargs.get("seed"))
        return trainer

    return make


def main(spec: dict) -> dict:
    """Train from ``spec["start_from"]`` on the original's batches; held-out MSE and r."""
    held_out = tuple(spec["held_out"])
    tracks, held = load_pilot(held_out)
    folder = Path(spec["start_from"])
    state = json.loads((folder / START_STATE).read_text())
    model = read_original(folder / "start", device="cpu")
    result = fit_and_score(model, tracks, held, held_out, spec,
                           trainer=replay_trainer(model, state))
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(json.loads(sys.argv[1]))), flush=True)
