"""Process tuning for training on the CPU: how glibc's malloc serves a step's large tensors."""

from __future__ import annotations

import os

__all__ = ["tune_malloc"]

_MALLOC_TUNED: set[str] = set()


def tune_malloc(large_tensors: bool = False) -> bool:
    """Make glibc keep freed memory for reuse instead of unmapping it after every step.

    A training step allocates and frees tensors of a few MB; by default glibc serves those
    with fresh ``mmap``s whose pages the kernel must fault in and zero every time. Raising the
    mmap and trim thresholds (what ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` /
    ``MALLOC_TOP_PAD_`` do) made steps about 1.3-1.6x faster here. glibc caps the mmap
    threshold at 32 MiB, so a step with larger tensors (the paper configuration's activations
    are 160-330 MB) still pays those page faults on every pass over them: with
    ``large_tensors`` glibc stops using ``mmap`` for allocations altogether
    (``MALLOC_MMAP_MAX_=0``), which made the paper configuration's bf16 element-wise passes
    about 3x faster. Freed memory then stays with the process for reuse (its peak is reached
    at every step anyway). It is process-wide and applied once; set ``AVOCADO_MALLOC_TUNING=0``
    to leave malloc alone.

    Parameters
    ----------
    large_tensors: bool, optional
        Also serve allocations above 32 MiB from the heap. Default is False.

    Returns
    -------
    bool
        Whether the settings were applied (glibc only).
    """
    want = {"thresholds", *(["no-mmap"] if large_tensors else [])}
    if os.environ.get("AVOCADO_MALLOC_TUNING", "1") == "0":
        return False
    if want <= _MALLOC_TUNED:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold, m_mmap_max = -1, -2, -3, -4
        ok = libc.mallopt(m_mmap_threshold, 32 * 2**20) == 1
        ok &= libc.mallopt(m_trim_threshold, 1 * 2**30) == 1
        ok &= libc.mallopt(m_top_pad, 64 * 2**20) == 1
        if large_tensors:
            ok &= libc.mallopt(m_mmap_max, 0) == 1
    except (OSError, AttributeError):
        return False
    if ok:
        _MALLOC_TUNED.update(want)
    return bool(ok)
