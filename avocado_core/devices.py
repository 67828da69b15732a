"""Where computation runs when the caller does not say so.

Every place in the library that picks a device on its own (a model built or loaded without
``device``, a genome model, the genome-wide jobs, the distributed backend) asks
:func:`default_device`: one place to read the rule, and one place a test suite can guard so
that no test meant for the CPU silently runs on a GPU (``tests/conftest.py``).
"""

from __future__ import annotations

import torch

from .errors import AvocadoValueError

__all__ = ["as_device", "default_device", "job_devices"]


def default_device() -> torch.device:
    """The device used when none is given: ``cuda`` (the current GPU) when CUDA is available,
    else ``cpu``.

    Returns
    -------
    torch.device
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device`; None is :func:`default_device`.

    Parameters
    ----------
    device: str or torch.device or None

    Returns
    -------
    torch.device

    Raises
    ------
    AvocadoValueError
        ``device`` is not a device torch knows.
    """
    if device is None:
        return default_device()
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise AvocadoValueError(
            f"unknown device {device!r}; expected e.g. 'cpu', 'cuda' or 'cuda:1'") from None


def job_devices(device: str | torch.device | None, n_jobs: int) -> list[torch.device]:
    """The device of each of ``n_jobs`` jobs that run side by side.

    A CUDA device without an index (``"cuda"``, or None on a machine with CUDA) spreads the
    jobs over the GPUs, job ``i`` on ``cuda:{i % n_gpus}``; a device with an index, or the
    CPU, is every job's.

    Parameters
    ----------
    device: str or torch.device or None
        None is :func:`default_device`.
    n_jobs: int

    Returns
    -------
    list of torch.device
    """
    device = as_device(device)
    if device.type != "cuda" or device.index is not None:
        return [device] * n_jobs
    n_gpus = max(torch.cuda.device_count(), 1)
    return [torch.device("cuda", i % n_gpus) for i in range(n_jobs)]
