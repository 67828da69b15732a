"""Models of the original Avocado package (avocado-epigenome, Keras), read and written with h5py.

The original saves a model as two files side by side: ``NAME.json`` (the constructor's
arguments: ``celltypes``, ``assays``, ``experiments``, the factor counts, ``n_layers``,
``n_nodes``, ``batch_size``) and ``NAME.h5`` (the whole Keras model in HDF5). Its network is
the one of :class:`~avocado_core.network.AvocadoNetwork`: five embeddings
(``celltype_embedding``, ``assay_embedding``, ``genome_25bp_embedding`` with one row per
position, ``genome_250bp_embedding`` with ``n // 10 + 1`` rows and ``genome_5kbp_embedding``
with ``n // 200 + 1``), flattened and concatenated in that order, then ``dense_0`` ...
``dense_{n_layers - 1}`` (ReLU) and the linear ``y_pred``. Keras stores a Dense kernel as
``(inputs, outputs)``, the transpose of ``torch.nn.Linear.weight``.

:func:`read_original` turns such a pair into an :class:`~avocado_core.model.Avocado` (celltypes
become biosamples) without TensorFlow or Keras; :func:`write_original` writes the pair back, laid
out as Keras 2.15 saves it; :func:`import_original_genome` gathers the published per-chromosome
models (``avocado-chr1``, ``avocado-chr2``, ...) into one genome model directory (the layout of
:func:`avocado_core.genome_wide.assemble`).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from . import _io
from .errors import AvocadoValueError, short_list
from .model import Avocado
from .model_format import check_finite, read_json_object
from .network import GENOME_RESOLUTIONS, genome_rows

__all__ = ["EMBEDDING_LAYERS", "find_original_chromosomes", "import_original_genome",
           "original_pair", "original_spec", "read_original", "write_original"]

#: Keras layer name of each embedding, in the order the original concatenates them.
EMBEDDING_LAYERS: dict[str, str] = {
    "biosample_embedding": "celltype_embedding",
    "assay_embedding": "assay_embedding",
    "genome_25bp": "genome_25bp_embedding",
    "genome_250bp": "genome_250bp_embedding",
    "genome_5kbp": "genome_5kbp_embedding",
}
#: Keys of the original's ``.json`` and the matching Avocado keyword.
_JSON_SIZES: dict[str, str] = {
    "n_celltype_factors": "n_biosample_factors",
    "n_assay_factors": "n_assay_factors",
    "n_25bp_factors": "n_25bp_factors",
    "n_250bp_factors": "n_250bp_factors",
    "n_5kbp_factors": "n_5kbp_factors",
    "n_layers": "n_layers",
    "n_nodes": "n_nodes",
}
_REQUIRED_JSON = ("celltypes", "assays", "n_genomic_positions", *_JSON_SIZES)
_KNOWN_CLASSES = {"InputLayer", "Embedding", "Flatten", "Concatenate", "Dense"}
_KERAS_VERSION = "2.15.0"


# ---------------------------------------------------------------------------------- files
def original_pair(json_path_or_prefix: str | os.PathLike) -> tuple[Path, Path]:
    """The ``.json`` and ``.h5`` of an original model, from either file or their common prefix.

    Raises
    ------
    AvocadoValueError
        The ``.json`` or its ``.h5`` does not exist.
    """
    path = Path(json_path_or_prefix)
    prefix = path.with_suffix("") if path.suffix in (".json", ".h5") else path
    json_path, h5_path = Path(f"{prefix}.json"), Path(f"{prefix}.h5")
    if not json_path.is_file():
        raise AvocadoValueError(
            f"{json_path} does not exist; expected an original Avocado model saved as "
            f"{prefix.name}.json + {prefix.name}.h5 (give either file or the prefix {prefix})"
        )
    if not h5_path.is_file():
        raise AvocadoValueError(
            f"{json_path} has no {h5_path.name} beside it: the original Avocado saves its "
            f"weights in NAME.h5 next to NAME.json (expected {h5_path})"
        )
    return json_path, h5_path


def _read_json(path: Path) -> dict[str, Any]:
    spec = read_json_object(path, "is not an original Avocado model's .json")
    missing = [k for k in _REQUIRED_JSON if k not in spec]
    if missing:
        raise AvocadoValueError(
            f"{path} is not an original Avocado model's .json: it lacks {', '.join(missing)}"
        )
    for key in ("n_genomic_positions", *_JSON_SIZES):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AvocadoValueError(f"{path}: {key} must be a non-negative integer, got {value!r}")
    return spec


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _open_h5(path: Path) -> h5py.File:
    if not h5py.is_hdf5(path):
        raise AvocadoValueError(
            f"{path} is not an HDF5 file: expected the original Avocado's Keras model (.h5)"
        )
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise AvocadoValueError(
            f"{path} is truncated or corrupted; the HDF5 library says: {' '.join(str(exc).split())}"
        ) from None


class _Layers:
    """The weighted layers of a Keras HDF5 model file, by layer name."""

    def __init__(self, path: Path, f: h5py.File) -> None:
        self.path = path
        group = f.get("model_weights", f)
        if "layer_names" not in group.attrs:
            raise AvocadoValueError(
                f"{path} is not an Avocado model: an HDF5 file without Keras layers "
                "(no layer_names attribute)"
            )
        self.names = [_text(n) for n in group.attrs["layer_names"]]
        self.weights: dict[str, list[tuple[str, h5py.Dataset]]] = {}
        for name in self.names:
            if name not in group:
                raise AvocadoValueError(f"{path} is truncated or corrupted: layer {name!r} "
                                        "is listed but has no weights group")
            names = [_text(w) for w in group[name].attrs.get("weight_names", [])]
            if names:
                try:
                    self.weights[name] = [(w, group[name][w]) for w in names]
                except KeyError:
                    raise AvocadoValueError(
                        f"{path} is truncated or corrupted: a weight of layer {name!r} is missing"
                    ) from None
        self.config = self._model_config(f)

    def _model_config(self, f: h5py.File) -> dict[str, dict[str, Any]]:
        raw = f.attrs.get("model_config")
        if raw is None:  # a weights-only file
            return {}
        try:
            layers = json.loads(_text(raw))["config"]["layers"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise AvocadoValueError(f"{self.path}: unreadable Keras model_config ({exc})") from None
        return {layer.get("name", layer["config"].get("name")): layer for layer in layers}

    def matrix(self, layer: str, kind: str) -> h5py.Dataset:
        """The ``kernel`` / ``bias`` / ``embeddings`` dataset of a layer."""
        found = [d for w, d in self.weights[layer] if w.rsplit("/", 1)[-1].startswith(kind)]
        if len(found) != 1:
            raise AvocadoValueError(
                f"{self.path}: unknown layer layout: layer {layer!r} has weights "
                f"{[w for w, _ in self.weights[layer]]}, expected one named {kind}"
            )
        return found[0]


def _check_layout(layers: _Layers) -> list[str]:
    """The hidden Dense layers, in order; raise on anything the original does not build."""
    path = layers.path
    absent = [k for k in EMBEDDING_LAYERS.values() if k not in layers.weights]
    if absent:
        raise AvocadoValueError(
            f"{path} is not an Avocado model: it has no layer {absent[0]!r} "
            f"(its weighted layers: {short_list(layers.weights)})"
        )
    dense = sorted((n for n in layers.weights if re.fullmatch(r"dense_\d+", n)),
                   key=lambda n: int(n.split("_")[1]))
    expected = [*EMBEDDING_LAYERS.values(), *(f"dense_{i}" for i in range(len(dense))), "y_pred"]
    unknown = [n for n in layers.weights if n not in expected]
    if unknown or "y_pred" not in layers.weights or dense != expected[5:-1]:
        odd = unknown or [n for n in dense if n not in expected] or ["y_pred missing"]
        raise AvocadoValueError(
            f"{path}: unknown layer layout: weighted layers {short_list(layers.weights)}; expected "
            f"the five embeddings, dense_0 ... dense_{{n-1}} and y_pred (unexpected: "
            f"{short_list(odd)})"
        )
    for name, layer in layers.config.items():
        cls = layer.get("class_name")
        if cls not in _KNOWN_CLASSES:
            raise AvocadoValueError(
                f"{path}: unknown layer layout: layer {name!r} is a {cls}; the original builds "
                f"only {', '.join(sorted(_KNOWN_CLASSES))}"
            )
        if cls == "Dense":
            want = "linear" if name == "y_pred" else "relu"
            got = layer["config"].get("activation")
            if got != want:
                raise AvocadoValueError(
                    f"{path}: unknown layer layout: layer {name!r} has activation {got!r}, "
                    f"expected {want!r}"
                )
    _check_concatenation(layers)
    return dense


def _check_concatenation(layers: _Layers) -> None:
    """The embeddings must enter the network in the original's order (when the config says)."""
    config = layers.config
    concat = [n for n, layer in config.items() if layer.get("class_name") == "Concatenate"]
    if not concat:
        return
    try:
        inbound = [node[0] for node in config[concat[0]]["inbound_nodes"][0]]
        order = [config[n]["inbound_nodes"][0][0][0] if config[n]["class_name"] == "Flatten"
                 else n for n in inbound]
    except (KeyError, IndexError, TypeError):  # another Keras version's node format
        return
    if order != list(EMBEDDING_LAYERS.values()):
        raise AvocadoValueError(
            f"{layers.path}: unknown layer layout: the embeddings are concatenated as {order}, "
            f"expected {list(EMBEDDING_LAYERS.values())}"
        )


def _disagree(json_path: Path, h5_path: Path, json_says: str, h5_has: str) -> None:
    raise AvocadoValueError(
        f"{json_path.name} and {h5_path.name} disagree: the .json says {json_says}, "
        f"the .h5 has {h5_has}"
    )


def _check_names(json_path: Path, spec: dict[str, Any]) -> None:
    for key in ("celltypes", "assays"):
        names = spec[key]
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise AvocadoValueError(f"{json_path}: {key} must be a list of names, got {names!r}")
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise AvocadoValueError(f"{json_path}: duplicate {key} {dups}")
    for pair in spec.get("experiments", []):
        if (not isinstance(pair, list) or len(pair) != 2 or pair[0] not in spec["celltypes"]
                or pair[1] not in spec["assays"]):
            raise AvocadoValueError(
                f"{json_path}: experiment {pair!r} is not a [celltype, assay] pair of its "
                f"celltypes ({short_list(spec['celltypes'])}) and assays "
                f"({short_list(spec['assays'])})"
            )


def _shapes(json_path: Path, h5_path: Path, spec: dict[str, Any], layers: _Layers,
            dense: list[str]) -> dict[str, int]:
    """Check the .json against the .h5's matrices; return the Avocado size keywords."""
    tables = {k: layers.matrix(v, "embeddings").shape for k, v in EMBEDDING_LAYERS.items()}
    if any(len(s) != 2 for s in tables.values()):
        raise AvocadoValueError(f"{h5_path}: unknown layer layout: embedding shapes {tables}")
    n = spec["n_genomic_positions"]
    rows = {"biosample_embedding": ("celltypes", len(spec["celltypes"])),
            "assay_embedding": ("assays", len(spec["assays"])),
            **{f"genome_{r}": ("n_genomic_positions", genome_rows(n, r))
               for r in GENOME_RESOLUTIONS}}
    widths = dict(zip(EMBEDDING_LAYERS, [k for k in _JSON_SIZES if k.endswith("_factors")]))
    for table, (key, want) in rows.items():
        layer = EMBEDDING_LAYERS[table]
        if tables[table][0] != want:
            says = (f"n_genomic_positions {n} ({want} rows of {layer})"
                    if key == "n_genomic_positions" else f"{want} {key}")
            _disagree(json_path, h5_path, says, f"{tables[table][0]} rows in {layer}")
        if tables[table][1] != spec[widths[table]]:
            _disagree(json_path, h5_path, f"{widths[table]} {spec[widths[table]]}",
                      f"{tables[table][1]} columns in {layer}")
    if len(dense) != spec["n_layers"]:
        _disagree(json_path, h5_path, f"n_layers {spec['n_layers']}",
                  f"{len(dense)} hidden Dense layers")
    n_in = sum(s[1] for s in tables.values())
    for name in [*dense, "y_pred"]:
        kernel, bias = layers.matrix(name, "kernel").shape, layers.matrix(name, "bias").shape
        units = 1 if name == "y_pred" else spec["n_nodes"]
        if kernel != (n_in, kernel[1]) or bias != (kernel[1],):
            raise AvocadoValueError(
                f"{h5_path}: unknown layer layout: {name} has kernel {kernel} and bias {bias}, "
                f"expected ({n_in}, units) and (units,)"
            )
        if kernel[1] != units:
            if name == "y_pred":
                raise AvocadoValueError(f"{h5_path}: unknown layer layout: y_pred has "
                                        f"{kernel[1]} outputs, expected 1")
            _disagree(json_path, h5_path, f"n_nodes {units}", f"{kernel[1]} units in {name}")
        n_in = kernel[1]
    return {avocado_key: int(spec[key]) for key, avocado_key in _JSON_SIZES.items()}


def _fill(param: torch.Tensor, data: h5py.Dataset, path: Path, transpose: bool = False) -> None:
    """Copy an HDF5 matrix into a parameter (straight into its memory when on the CPU).

    Only floating-point datasets whose values are finite in float32 are taken: anything else
    (text, integers, NaN, infinity, 1e300) is a damaged file, refused naming the dataset.
    """
    where = f"{path}: dataset {data.name}"
    if data.dtype.kind != "f":
        raise AvocadoValueError(f"{where} has dtype {data.dtype}; expected floating-point weights")
    with torch.no_grad():
        if not transpose and param.device.type == "cpu" and param.dtype == torch.float32:
            data.read_direct(param.numpy())
            values = param
        else:
            with np.errstate(over="ignore"):  # beyond float32's range: inf, refused below
                values = torch.from_numpy(np.asarray(data[()], dtype=np.float32))
            param.copy_(values.t() if transpose else values)
    check_finite(values, where)  # in the dataset's layout, so that the index names its place


# ---------------------------------------------------------------------------------- reading
def read_original(json_path_or_prefix: str | os.PathLike,
                  device: str | torch.device | None = None) -> Avocado:
    """Read a model saved by the original Avocado package (``NAME.json`` + ``NAME.h5``).

    Only h5py is needed (no TensorFlow or Keras). Any number of hidden layers and any width
    are read; celltypes become biosamples; the genome factors keep the original's layout
    (rows ``i``, ``i // 10`` and ``i // 200`` for position ``i``).

    Parameters
    ----------
    json_path_or_prefix: path-like
        ``NAME.json``, ``NAME.h5`` or ``NAME``.
    device: str or torch.device or None, optional
        Where to put the model. Default is None: CUDA when available, else CPU.

    Returns
    -------
    Avocado
        ``model.experiments`` holds the original's list of training experiments, in its order;
        ``model.trained_on`` records the same experiments (sorted, saved with the model).

    Raises
    ------
    AvocadoValueError
        A file is missing, is not an Avocado model, is truncated, the two files disagree, or
        the layers are not laid out as the original builds them.
    """
    json_path, h5_path = original_pair(json_path_or_prefix)
    spec = _read_json(json_path)
    _check_names(json_path, spec)
    f = _open_h5(h5_path)
    try:
        layers = _Layers(h5_path, f)
        dense = _check_layout(layers)
        sizes = _shapes(json_path, h5_path, spec, layers, dense)
        config = {"biosamples": spec["celltypes"], "assays": spec["assays"],
                  "n_positions": spec["n_genomic_positions"], **sizes}
        if "batch_size" in spec:
            config["batch_size"] = spec["batch_size"]
        model = Avocado(**config, device=device)
        net = model.network
        for attr, layer in EMBEDDING_LAYERS.items():
            _fill(getattr(net, attr).weight, layers.matrix(layer, "embeddings"), h5_path)
        for linear, name in zip([*net.hidden, net.output], [*dense, "y_pred"]):
            _fill(linear.weight, layers.matrix(name, "kernel"), h5_path, transpose=True)
            _fill(linear.bias, layers.matrix(name, "bias"), h5_path)
    except (OSError, RuntimeError) as exc:  # a dataset's chunks lie past the end of the file
        raise AvocadoValueError(
            f"{h5_path} is truncated or corrupted ({' '.join(str(exc).split())})"
        ) from None
    finally:
        f.close()
    for p in model.network.parameters():
        p.requires_grad_(False)
    model.experiments = [tuple(e) for e in spec.get("experiments", [])]
    # What the original trained on is what this project records as trained_on (the app marks
    # those experiments' scores as training fit); it survives save / load, the order does not.
    model.trained_on = sorted(set(model.experiments))
    return model


# ---------------------------------------------------------------------------------- writing
def _initializer(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"module": "keras.initializers", "class_name": name, "config": config,
            "registered_name": None}


def _layer(cls: str, name: str, inbound: list[str], **config: Any) -> dict[str, Any]:
    base = {"name": name, "trainable": True, "dtype": "float32"}
    if cls == "InputLayer":
        base = {"batch_input_shape": [None, 1], "dtype": "float32", "sparse": False,
                "ragged": False, "name": name}
    return {"class_name": cls, "config": {**base, **config}, "name": name,
            "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else []}


def _model_config(model: Avocado) -> tuple[dict[str, Any], list[str]]:
    """Keras 2.15's ``model_config`` of the original's network, and its layer names in order."""
    net = model.network
    inputs = ["celltype_input", "assay_input",
              *(f"genome_{r}_input" for r in GENOME_RESOLUTIONS)]
    layers = [_layer("InputLayer", n, []) for n in inputs]
    flats = ["flatten", *(f"flatten_{i}" for i in range(1, 5))]
    for inp, (attr, name) in zip(inputs, EMBEDDING_LAYERS.items()):
        table = getattr(net, attr)
        layers.append(_layer(
            "Embedding", name, [inp], batch_input_shape=[None, 1],
            input_dim=table.num_embeddings, output_dim=table.embedding_dim,
            embeddings_initializer=_initializer("RandomUniform",
                                                {"minval": -0.05, "maxval": 0.05, "seed": None}),
            embeddings_regularizer=None, activity_regularizer=None, embeddings_constraint=None,
            mask_zero=False, input_length=1))
    layers += [_layer("Flatten", f, [e], data_format="channels_last")
               for f, e in zip(flats, EMBEDDING_LAYERS.values())]
    layers.append(_layer("Concatenate", "concatenate", flats, axis=-1))
    dense = [f"dense_{i}" for i in range(len(net.hidden))]
    previous = "concatenate"
    for name, linear in zip([*dense, "y_pred"], [*net.hidden, net.output]):
        layers.append(_layer(
            "Dense", name, [previous], units=linear.out_features,
            activation="linear" if name == "y_pred" else "relu", use_bias=True,
            kernel_initializer=_initializer("GlorotUniform", {"seed": None}),
            bias_initializer=_initializer("Zeros", {}), kernel_regularizer=None,
            bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
            bias_constraint=None))
        previous = name
    config = {"class_name": "Functional", "config": {
        "name": "model", "trainable": True, "layers": layers,
        "input_layers": [[n, 0, 0] for n in inputs], "output_layers": [["y_pred", 0, 0]]}}
    return config, [*inputs, *EMBEDDING_LAYERS.values(), *flats, "concatenate", *dense, "y_pred"]


def _training_config(model: Avocado) -> dict[str, Any]:
    adam = {"name": "Adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
            "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
            "ema_overwrite_frequency": None, "jit_compile": False, "is_legacy_optimizer": False,
            "learning_rate": float(np.float32(model.learning_rate)), "beta_1": 0.9,
            "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}
    return {"loss": "mse", "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
        "name": "mse", "dtype": "float32", "fn": "mean_squared_error"}}]],
        "weighted_metrics": None, "loss_weights": None,
        "optimizer_config": {"class_name": "Custom>Adam", "config": adam}}


def _weights(model: Avocado) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(layer, weight name, Keras-oriented tensor) of every weight."""
    net = model.network
    for attr, layer in EMBEDDING_LAYERS.items():
        yield layer, "embeddings", getattr(net, attr).weight
    names = [f"dense_{i}" for i in range(len(net.hidden))] + ["y_pred"]
    for name, linear in zip(names, [*net.hidden, net.output]):
        yield name, "kernel", linear.weight.t()
        yield name, "bias", linear.bias


def original_spec(model: Avocado, experiments: Any = None) -> dict[str, Any]:
    """The original's ``.json`` content for a model (its constructor's arguments)."""
    sizes = model.config
    spec: dict[str, Any] = {"celltypes": list(model.biosamples), "assays": list(model.assays),
                            "experiments": [list(e) for e in (experiments or [])]}
    for key, avocado_key in _JSON_SIZES.items():
        spec[key] = sizes[avocado_key]
        if key == "n_assay_factors":
            spec["n_genomic_positions"] = model.n_positions
    spec["batch_size"] = model.batch_size
    return spec


def write_original(model: Avocado, prefix: str | os.PathLike, experiments: Any = None) -> \
        tuple[Path, Path]:
    """Write a model as the original Avocado saves one: ``PREFIX.json`` + ``PREFIX.h5``.

    The ``.h5`` is laid out as Keras 2.15 saves the original's model (``model_config``,
    ``training_config`` and ``model_weights/<layer>/<layer>/<weight>:0``), without optimizer
    state; the original's ``Avocado.load`` reads the pair. Each file is written under a temporary
    name and renamed into place.

    Parameters
    ----------
    model: Avocado
    prefix: path-like
        ``PREFIX.json`` and ``PREFIX.h5`` are written (a trailing ``.json`` / ``.h5`` is dropped).
    experiments: sequence of (str, str) or None, optional
        The ``experiments`` list of the ``.json``. Default is None: ``model.experiments`` when
        the model was read from the original format, else the experiments the model was
        trained on (``model.trained_on``).

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The ``.json`` and ``.h5``.

    Raises
    ------
    AvocadoValueError
        The model uses average activity (the ``"small"`` preset does), which the original's
        network has no input for, or ``experiments`` are not the model's.

    Warns
    -----
    UserWarning
        The model smooths or blends its imputations (prediction settings): the original
        package predicts the network's output as it is.
    """
    if model.average_activity is not None:
        raise AvocadoValueError(
            f"the model uses average activity ({model.average_activity!r}), which the original "
            "package's network has no input for; train one without it to export (avocado train "
            "--config original-small, or average_activity=None)")
    if model.smoothing > 1 or model.biosample_settings:
        warnings.warn("the model's prediction settings (smoothing, per-biosample settings) are "
                      "not part of the original format: the written model predicts the "
                      "network's output without them", stacklevel=2)
    prefix = Path(prefix)
    if prefix.suffix in (".json", ".h5"):
        prefix = prefix.with_suffix("")
    if experiments is None:
        experiments = getattr(model, "experiments", None) or model.trained_on
    unknown = [e for e in experiments
               if e[0] not in model.biosamples or e[1] not in model.assays]
    if unknown:
        raise AvocadoValueError(f"experiments {unknown[:3]} are not (biosample, assay) pairs "
                                "of the model")
    json_path, h5_path = Path(f"{prefix}.json"), Path(f"{prefix}.h5")
    config, names = _model_config(model)
    text = h5py.string_dtype()
    with _io.atomic_path(h5_path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = _KERAS_VERSION
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["training_config"] = json.dumps(_training_config(model))
        root = f.create_group("model_weights")
        root.attrs["backend"] = "tensorflow"
        root.attrs["keras_version"] = _KERAS_VERSION
        root.attrs.create("layer_names", names, dtype=text)
        weights: dict[str, list[tuple[str, torch.Tensor]]] = {}
        for layer, kind, tensor in _weights(model):
            weights.setdefault(layer, []).append((f"{layer}/{kind}:0", tensor))
        for layer in [*names, "top_level_model_weights"]:
            group = root.create_group(layer)
            own = weights.get(layer, [])
            if own:
                group.attrs.create("weight_names", [w for w, _ in own], dtype=text)
            else:
                group.attrs["weight_names"] = np.array([], dtype=np.float64)
            for w, tensor in own:
                group.create_dataset(w, data=tensor.detach().cpu().contiguous().numpy())
    _io.write_text(json_path, json.dumps(original_spec(model, experiments),
                                         separators=(",", " : "), indent=4))
    return json_path, h5_path


# ---------------------------------------------------------------------------------- genome
def find_original_chromosomes(prefix: str | os.PathLike) -> dict[str, Path]:
    """The per-chromosome models ``PREFIX-<chrom>.json`` (e.g. ``avocado-chr1``), in natural
    chromosome order.

    Parameters
    ----------
    prefix: path-like
        E.g. ``models/avocado`` for ``models/avocado-chr1.json``, ``models/avocado-chr2.json``...

    Returns
    -------
    dict of str to pathlib.Path
        Chromosome name -> model prefix.
    """
    prefix = Path(prefix)
    found = {p.name[len(prefix.name) + 1: -len(".json")]: p.with_suffix("")
             for p in prefix.parent.glob(f"{prefix.name}-*.json")}
    if not found:
        raise AvocadoValueError(
            f"no per-chromosome original models {prefix}-<chrom>.json (e.g. {prefix}-chr1.json)"
        )

    def natural(chrom: str) -> list[Any]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", chrom)]

    return {c: found[c] for c in sorted(found, key=natural)}


def _first_difference(reference: Avocado, other: Avocado) -> str | None:
    """What differs between two chromosomes' shared parts (names, sizes, network), or None."""
    if reference.biosamples != other.biosamples:
        return f"its celltypes {short_list(other.biosamples)}"
    if reference.assays != other.assays:
        return f"its assays {short_list(other.assays)}"
    ref, oth = reference.config, other.config
    for key in _JSON_SIZES.values():
        if ref[key] != oth[key]:
            return f"its {key} {oth[key]} (vs {ref[key]})"
    original_names = {"biosample_embedding": "celltype_embedding", "output": "y_pred"}
    theirs = other.network.state_dict()
    for key, tensor in reference.network.state_dict().items():
        if key.startswith("genome_"):
            continue
        if not torch.equal(tensor, theirs[key]):
            module, _, kind = key.rpartition(".")
            if module.startswith("hidden."):
                module = f"dense_{module.split('.')[1]}"
            kind = {"weight": "kernel" if "embedding" not in module else "embeddings"}.get(
                kind, kind)
            return f"its {original_names.get(module, module)} {kind}"
    return None


def import_original_genome(models: str | os.PathLike | Mapping[str, str | os.PathLike],
                           output: str | os.PathLike, device: str | torch.device | None = None,
                           progress: bool = True) -> Path:
    """Import per-chromosome original models into one genome model directory.

    The original's genome-wide models are one ``.json`` + ``.h5`` pair per chromosome, all
    sharing one network and one set of celltype / assay factors; the result has the layout of
    :func:`avocado_core.genome_wide.assemble` (the shared network once, genome factors per
    chromosome; chromosome ``c`` covers ``n_genomic_positions`` 25 bp bins from base 0). One
    chromosome is in memory at a time.

    Parameters
    ----------
    models: path-like or mapping
        A prefix (``models/avocado`` for ``models/avocado-chr1.json``, ...) or a mapping
        chromosome -> model prefix, in the order the chromosomes should have.
    output: path-like
        The genome model directory (written under a temporary name and renamed into place).
    device: str or torch.device or None, optional
        Where to read each chromosome. Default is None.
    progress: bool, optional
        Progress bar. Default is True.

    Returns
    -------
    pathlib.Path
        ``output``, a genome model directory (:class:`avocado_core.genome_wide.GenomeModel`).

    Raises
    ------
    AvocadoValueError
        A chromosome's network, celltype / assay factors or sizes differ from the first
        chromosome's (the message names the first that differs), or a file is unreadable.
    """
    from .genome_wide import frozen_fingerprint, write_genome_model
    from .regions import BIN_SIZE, RegionSet

    chroms = dict(models) if isinstance(models, Mapping) else find_original_chromosomes(models)
    chroms = {str(c): Path(p) for c, p in chroms.items()}
    sizes = {c: _read_json(original_pair(p)[0])["n_genomic_positions"] for c, p in
             chroms.items()}
    regions = RegionSet.from_chrom_sizes({c: n * BIN_SIZE for c, n in sizes.items()})
    first = next(iter(chroms))
    reference = read_original(chroms[first], device="cpu")

    def parts() -> Iterator[tuple[str, Avocado]]:
        yield first, reference
        for chrom, prefix in list(chroms.items())[1:]:
            model = read_original(prefix, device="cpu")
            diff = _first_difference(reference, model)
            if diff is not None:
                raise AvocadoValueError(
                    f"{prefix.name} is not from the same genome-wide model as "
                    f"{chroms[first].name}: {diff} differ(s); every chromosome must share the "
                    "network and the celltype / assay factors"
                )
            yield chrom, model

    return write_genome_model(reference, regions, parts(), output,
                              fingerprint=frozen_fingerprint(reference), progress=progress)

