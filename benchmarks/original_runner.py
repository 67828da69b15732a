"""Train the original Avocado (avocado-epigenome 0.4.0, Keras / TensorFlow) for one benchmark run.

Run by ``bench_vs_original.py`` with the Python of the original's own virtual environment
(numpy, avocado-epigenome 0.4.0, tensorflow-cpu 2.15.1; no torch, no avocado_core). The only
change to the original is a shim, applied here and never in its files: avocado 0.4.0 calls
``Model.fit_generator(generator, steps, epochs, workers=1, pickle_safe=True, ...)``, which Keras
2.15 rejects (``pickle_safe`` is gone and ``fit_generator`` is deprecated), so that call is
routed to ``Model.fit(generator, steps_per_epoch=, epochs=)`` with ``pickle_safe`` dropped.

Usage (by the benchmark)::

    ORIGINAL_VENV/bin/python benchmarks/original_runner.py '{"config": "small", ...}'

It prints one line ``RESULT {json}`` with samples/s, peak RSS and, when the spec asks for
epochs, the held-out MSE and Pearson r. With ``"save_start": FOLDER`` it first saves the model
as it starts the timed training, in the original's own format (``FOLDER/start.json`` +
``FOLDER/start.h5``), and the state of numpy's global generator that its batch generator then
draws the experiments of every batch from (``FOLDER/start.numpy-state.json``, with the order
of the training experiments): ``original_start.py`` trains avocado_core from there on the same
batches.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_training import HELD_OUT, PAPER, SMALL, _peak_rss_mb, _score, load_pilot

#: Saved by ``save_start`` beside the model: numpy's global generator state and the order of
#: the training experiments that its draws index.
START_STATE = "start.numpy-state.json"


def install_shim() -> None:
    """Route avocado 0.4.0's ``fit_generator(..., pickle_safe=True)`` to Keras 2.15's ``fit``."""
    from keras.models import Model

    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1,
                      callbacks=None, validation_data=None, validation_steps=None,
                      workers=1, pickle_safe=False, **kwargs):
        return self.fit(generator, steps_per_epoch=steps_per_epoch, epochs=epochs,
                        verbose=verbose, callbacks=callbacks, validation_data=validation_data,
                        validation_steps=validation_steps, workers=workers, **kwargs)

    Model.fit_generator = fit_generator


def main(spec: dict) -> dict:
    """Train as ``spec`` says; return samples/s, peak RSS and (with epochs) held-out scores."""
    import tensorflow as tf

    install_shim()
    from avocado import Avocado

    # Python's, numpy's and TensorFlow's generators: Keras 2.15 draws the seed of an unseeded
    # initializer from Python's ``random``, so without it every run starts from other weights.
    tf.keras.utils.set_random_seed(spec.get("seed", 0))
    held_out = tuple(spec.get("held_out", HELD_OUT))
    tracks, held = load_pilot(held_out)
    cfg = dict(SMALL if spec["config"] == "small" else PAPER)
    biosamples = sorted({b for b, _ in tracks} | {held_out[0]})
    assays = sorted({a for _, a in tracks} | {held_out[1]})
    model = Avocado(biosamples, assays, n_genomic_positions=len(held),
                    n_celltype_factors=cfg.pop("n_biosample_factors"), **cfg)
    bs = cfg["batch_size"]
    if spec["warmup"]:  # graph tracing and the first steps' allocations, not timed
        model.fit(tracks, n_epochs=1, epoch_size=spec["warmup"], verbose=0)
    # as bench_training's workers: ``epochs`` x ``epoch_size`` batches, then the held-out
    # scores; or (``epochs`` 0) one epoch of ``steps`` batches, speed only
    if spec["epochs"]:
        n_epochs, epoch_size = spec["epochs"], spec["epoch_size"]
    else:
        n_epochs, epoch_size = 1, spec["steps"]
    if spec.get("save_start"):
        save_start(model, list(tracks), Path(spec["save_start"]))
    t0 = time.perf_counter()
    model.fit(tracks, n_epochs=n_epochs, epoch_size=epoch_size, verbose=0)
    elapsed = time.perf_counter() - t0
    result = {"samples_per_s": n_epochs * epoch_size * bs / elapsed,
              "version": f"avocado-epigenome 0.4.0, tensorflow {tf.__version__}"}
    if spec["epochs"]:
        result["mse"], result["r"] = _score(model.predict(*held_out), held)
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def save_start(model, experiments: list[tuple[str, str]], folder: Path) -> None:
    """The model's current weights (the original's ``save``) and :func:`generator_state`."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(str(folder / "start"))
    (folder / START_STATE).write_text(json.dumps(generator_state(experiments)))


def generator_state(experiments: list[tuple[str, str]]) -> dict:
    """numpy's global generator state (JSON), from which ``sequential_data_generator`` draws
    each batch's experiments as indices into ``experiments`` (the training dict's order)."""
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"bit_generator": name, "keys": keys.tolist(), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached),
            "experiments": [list(e) for e in experiments]}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(json.loads(sys.argv[1]))), flush=True)
