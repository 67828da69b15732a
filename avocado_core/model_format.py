"""The on-disk format of a saved model (and of a training checkpoint).

A model directory holds one JSON file (``config.json``: format name, version, configuration,
history and the name of the weights file) and one safetensors file of named tensors; no pickle.
:meth:`Avocado.save <avocado_core.model.Avocado.save>` / :meth:`~avocado_core.model.Avocado.load`
and :class:`~avocado_core.training.Checkpointer` write and read it with the two functions here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from . import _io
from ._paths import inside
from .errors import AvocadoValueError

__all__ = ["CONFIG_FILE", "FORMAT", "read_tensors_dir", "write_tensors_dir"]

#: ``"format"`` of a saved model's JSON file.
FORMAT = "avocado-torch-model"
#: Name of a saved model's JSON file.
CONFIG_FILE = "config.json"


def write_tensors_dir(
    path: str | os.PathLike, meta: dict[str, Any], tensors: dict[str, torch.Tensor], meta_name: str
) -> None:
    """Write ``meta`` (JSON) and ``tensors`` (safetensors) into a directory atomically.

    The tensors go to a new file whose name ``meta`` records; the JSON file is replaced last
    (both through :mod:`avocado_core._io`), so a reader always sees a complete, consistent
    pair. Older tensor files, and the temporary files of killed saves, are removed.

    Parameters
    ----------
    path: path-like
        The directory (created if missing).
    meta: dict
        JSON-serializable metadata; the key ``"weights_file"`` is added.
    tensors: dict of str to torch.Tensor
        Tensors to store.
    meta_name: str
        File name of the JSON file inside the directory.
    """
    directory = _io.make_dir(path)
    _io.remove_stale(directory)  # what killed saves left behind
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    weights_name = f"weights-{os.urandom(6).hex()}.safetensors"
    with _io.atomic_path(directory / weights_name, size=size) as tmp:
        save_file(tensors, str(tmp))
    meta = dict(meta, weights_file=weights_name)
    try:
        _io.write_text(directory / meta_name, json.dumps(meta, indent=1, sort_keys=True))
    except BaseException:
        (directory / weights_name).unlink(missing_ok=True)
        raise
    for old in directory.glob("weights-*.safetensors"):
        if old.name != weights_name:
            old.unlink(missing_ok=True)


def read_tensors_dir(
    path: str | os.PathLike, meta_name: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read what :func:`write_tensors_dir` wrote.

    Raises
    ------
    AvocadoValueError
        When the directory, its JSON file or its tensor file is missing or unreadable.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise AvocadoValueError(f"{directory} is not a directory (expected a saved model)")
    meta_path = directory / meta_name
    if not meta_path.is_file():
        raise AvocadoValueError(f"{directory} has no {meta_name}: not a saved model directory")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AvocadoValueError(f"{meta_path} is corrupted (not valid JSON: {exc})") from None
    if not isinstance(meta, dict):
        raise AvocadoValueError(f"{meta_path} is corrupted (not a JSON object)")
    weights = inside(directory, meta.get("weights_file"), f"weights_file in {meta_path}")
    if not weights.is_file():
        raise AvocadoValueError(
            f"{directory}: weights file {meta.get('weights_file')!r} named in {meta_name} "
            "is missing"
        )
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types
        raise AvocadoValueError(f"{weights} is corrupted ({exc})") from None
    return meta, tensors
