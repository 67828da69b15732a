"""The on-disk format of a saved model (and of a training checkpoint).

A model directory holds one JSON file (``config.json``: format name, version, configuration,
history and the name of the weights file) and one safetensors file of named tensors; no pickle.
:meth:`Avocado.save <avocado_core.model.Avocado.save>` / :meth:`~avocado_core.model.Avocado.load`
and :class:`~avocado_core.training.Checkpointer` write and read it with the two functions here.

Safetensors files are written here, not by the safetensors package: its writer puts the data
in a temporary file of its own naming (``.tmpXXXXXX``) that a killed process leaves behind,
where :mod:`avocado_core._io`'s temporary names are removed by the next write. What is read is
checked (:func:`check_tensors`): weights are floating point and finite, counters integers, so
a damaged file is refused by name instead of predicting NaN everywhere.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch
from safetensors.torch import load_file

from . import _io
from ._paths import inside
from .errors import AvocadoValueError

__all__ = ["CONFIG_FILE", "FORMAT", "check_finite", "check_tensors", "read_json_object",
           "read_safetensors", "read_tensors_dir", "write_safetensors", "write_tensors_dir"]

#: ``"format"`` of a saved model's JSON file.
FORMAT = "avocado-torch-model"
#: Name of a saved model's JSON file.
CONFIG_FILE = "config.json"
#: safetensors' name of each dtype a saved tensor may have.
_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
           torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
           torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
#: Entries that count (steps, tracks) rather than weigh: integers, by the last part of their name.
_COUNTERS = ("last", "count")
#: Entry whose rows of assays without a training track are NaN (see AverageActivity).
_ACTIVITY_MEAN, _ACTIVITY_COUNT = "average_activity.mean", "average_activity.count"
#: Elements checked at once (bounds the memory of a check of a large table).
_CHECK_CHUNK = 1 << 22


def _layout(tensors: Mapping[str, torch.Tensor]) -> tuple[list[str], bytes]:
    """The order of the tensors' data and the file's head (header length + JSON header).

    The layout of the format's specification (and of ``safetensors.torch.save``): the
    header's length (8 bytes, little-endian), the JSON header padded with spaces to a multiple
    of 8, then the tensors' bytes, widest elements first so that each starts aligned.
    """
    header: dict[str, Any] = {}
    offset = 0
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    for name in order:
        t = tensors[name]
        if t.dtype not in _DTYPES:
            raise AvocadoValueError(f"tensor {name!r} has dtype {t.dtype}, which is not saved")
        n = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return order, struct.pack("<Q", len(text)) + text


def _serialize(handle: IO[bytes], tensors: Mapping[str, torch.Tensor]) -> None:
    """Write contiguous CPU ``tensors`` into ``handle`` in the safetensors format."""
    order, head = _layout(tensors)
    handle.write(head)
    for name in order:  # one write per tensor, straight from its memory
        handle.write(tensors[name].reshape(-1).view(torch.uint8).numpy())


def write_safetensors(target: str | os.PathLike, tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write tensors to a safetensors file atomically (through :mod:`avocado_core._io`).

    Parameters
    ----------
    target: path-like
        The file; replaced when the write is complete.
    tensors: mapping of str to torch.Tensor
        Tensors to store (copied to the CPU when elsewhere).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    AvocadoDiskFullError
        When the tensors do not fit on the disk (checked before anything is written).
    """
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    size = len(_layout(tensors)[1]) + sum(t.numel() * t.element_size() for t in tensors.values())
    with _io.atomic_file(target, "wb", size=size) as handle:
        _serialize(handle, tensors)
    return Path(target)


def _first_non_finite(values: torch.Tensor) -> tuple[int, int]:
    """(how many, flat index of the first) non-finite values of ``values`` as float32."""
    flat = values.reshape(-1)
    count, first = 0, -1
    for lo in range(0, flat.numel(), _CHECK_CHUNK):  # chunks of a table, not positions
        finite = torch.isfinite(flat[lo:lo + _CHECK_CHUNK].to(torch.float32))
        if bool(finite.all()):  # the common case, 3-4x faster than counting
            continue
        bad = ~finite
        n = int(bad.sum())
        if n and first < 0:
            first = lo + int(bad.nonzero()[0, 0])
        count += n
    return count, first


def check_finite(values: torch.Tensor, what: str) -> None:
    """Raise when ``values`` holds NaN, infinity or a number beyond float32's range.

    Parameters
    ----------
    values: torch.Tensor
        Floating-point values (compared as float32, the precision the network computes in).
    what: str
        Names them in the message (e.g. the file and the dataset).

    Raises
    ------
    AvocadoValueError
    """
    count, first = _first_non_finite(values)
    if count:
        index = tuple(int(i) for i in torch.unravel_index(torch.tensor(first), values.shape))
        raise AvocadoValueError(
            f"{what} holds {count:,} value(s) that are NaN, infinite or beyond float32's range "
            f"(the first at index {list(index)}: {values[index].item()!r}); expected finite "
            "values: the file is damaged"
        )


def check_tensors(tensors: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Refuse what a saved model or checkpoint never holds.

    Counters (entries named ``*.last`` / ``*.count``) must be integers; every other entry
    floating point and finite (as float32), except the rows of ``average_activity.mean``
    whose ``average_activity.count`` is 0 (assays without a training track: NaN).

    Parameters
    ----------
    tensors: mapping of str to torch.Tensor
    source: path-like
        The file they were read from (named in the message).

    Raises
    ------
    AvocadoValueError
        Naming the file and the entry.
    """
    for name, t in tensors.items():
        where = f"{source}: entry {name!r}"
        if name.rsplit(".", 1)[-1] in _COUNTERS:
            if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise AvocadoValueError(f"{where} has dtype {t.dtype}; expected integers")
            continue
        if not t.is_floating_point():
            raise AvocadoValueError(
                f"{where} has dtype {t.dtype}; expected floating-point weights")
        if name == _ACTIVITY_MEAN and _ACTIVITY_COUNT in tensors and t.ndim == 2:
            counts = tensors[_ACTIVITY_COUNT].reshape(-1)
            for row in range(min(t.shape[0], counts.numel())):  # assays, each a whole row
                if counts[row] > 0:
                    check_finite(t[row], f"{where}, row {row}")
            continue
        check_finite(t, where)


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file and :func:`check_tensors` its content.

    Raises
    ------
    AvocadoValueError
        When the file is unreadable or holds what a model never holds.
    """
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise AvocadoValueError(f"{path} is corrupted ({exc})") from None
    check_tensors(tensors, path)
    return tensors


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
    weights_name = f"weights-{os.urandom(6).hex()}.safetensors"
    write_safetensors(directory / weights_name, tensors)
    meta = dict(meta, weights_file=weights_name)
    try:
        _io.write_text(directory / meta_name, json.dumps(meta, indent=1, sort_keys=True))
    except BaseException:
        (directory / weights_name).unlink(missing_ok=True)
        raise
    for old in directory.glob("weights-*.safetensors"):
        if old.name != weights_name:
            old.unlink(missing_ok=True)


def read_json_object(path: Path, verdict: str) -> dict[str, Any]:
    """The JSON object that the file ``path`` holds.

    Raises
    ------
    AvocadoValueError
        ``"<path> <verdict>: not valid JSON (...)"`` or ``"...: not a JSON object"``, e.g. with
        the verdict ``"is corrupted"``.
    """
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AvocadoValueError(f"{path} {verdict}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise AvocadoValueError(f"{path} {verdict}: not a JSON object")
    return value


def read_tensors_dir(
    path: str | os.PathLike, meta_name: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read what :func:`write_tensors_dir` wrote.

    Raises
    ------
    AvocadoValueError
        When the directory, its JSON file or its tensor file is missing or unreadable, or a
        tensor is not what a model holds (:func:`check_tensors`).
    """
    directory = Path(path)
    if not directory.is_dir():
        raise AvocadoValueError(f"{directory} is not a directory (expected a saved model)")
    meta_path = directory / meta_name
    if not meta_path.is_file():
        raise AvocadoValueError(f"{directory} has no {meta_name}: not a saved model directory")
    meta = read_json_object(meta_path, "is corrupted")
    weights = inside(directory, meta.get("weights_file"), f"weights_file in {meta_path}")
    if not weights.is_file():
        raise AvocadoValueError(
            f"{directory}: weights file {meta.get('weights_file')!r} named in {meta_name} "
            "is missing"
        )
    return meta, read_safetensors(weights)
