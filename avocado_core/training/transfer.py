"""Host arrays onto the training device: one copy per training step, never waited for."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

__all__ = ["to_device"]

#: The dtypes :func:`to_device` packs, in the order they lie in the buffer.
_PACKED = (np.dtype(np.int64), np.dtype(np.float32))


def to_device(arrays: Mapping[str, np.ndarray], device: torch.device | str,
              pack: bool | None = None) -> dict[str, torch.Tensor]:
    """The ``arrays`` (int64 or float32) as tensors on ``device``, copied together.

    On the CPU they are the arrays themselves, without a copy. For another device they are
    packed into one page-locked (pinned) host buffer, int64 arrays first, then float32, which
    one non-blocking copy sends, and split into views on the device. A copy from ordinary
    (pageable) memory would hold the host until the copy is done, and one copy per array would
    cost one launch each; this way the host goes on with the next batch while the copy runs.
    The buffer comes from torch's caching host allocator, which does not hand it out again
    before the copy that reads it has finished.

    Parameters
    ----------
    arrays: mapping of str to numpy.ndarray
        Arrays of dtype int64 or float32, any shape.
    device: torch.device or str
    pack: bool or None, optional
        Pack and copy even to the CPU (tests of the packing). Default is None: for any
        device but the CPU.

    Returns
    -------
    dict of str to torch.Tensor
        The same keys; each tensor has its array's dtype and shape.
    """
    if not isinstance(device, torch.device):
        device = torch.device(device)
    if not (device.type != "cpu" if pack is None else pack):
        return {key: torch.from_numpy(np.ascontiguousarray(a)) for key, a in arrays.items()}
    bad = {key: a.dtype for key, a in arrays.items() if a.dtype not in _PACKED}
    if bad:
        raise TypeError(f"to_device packs int64 and float32 arrays, got {bad}")
    parts = [{key: a for key, a in arrays.items() if a.dtype == dtype} for dtype in _PACKED]
    n_int = sum(a.size for a in parts[0].values())
    n_float = sum(a.size for a in parts[1].values())
    host = torch.empty(n_int + (n_float + 1) // 2, dtype=torch.int64,
                       pin_memory=device.type == "cuda")
    words = host.numpy()
    views = (words[:n_int], words[n_int:].view(np.float32)[:n_float])
    for part, view in zip(parts, views):
        if part:
            np.concatenate([a.reshape(-1) for a in part.values()], out=view)
    sent = host.to(device, non_blocking=True)
    out: dict[str, torch.Tensor] = {}
    flat = (sent[:n_int], sent[n_int:].view(torch.float32)[:n_float])
    for part, tensor in zip(parts, flat):
        if part:
            pieces = tensor.split([a.size for a in part.values()])
            out.update({key: piece.view(a.shape) if a.ndim != 1 else piece
                        for (key, a), piece in zip(part.items(), pieces)})
    return {key: out[key] for key in arrays}
