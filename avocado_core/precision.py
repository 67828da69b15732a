"""Which arithmetic precision training and prediction use: what ``precision="auto"`` resolves to.

bfloat16 matrix products pay where the CPU multiplies bfloat16 natively (AMX-BF16 on Intel
Xeon since Sapphire Rapids, AVX512-BF16 on AMD Zen 4 and Intel Cooper Lake) and the step is
dominated by wide hidden-to-hidden products: the paper configuration (2 x 2048) trained 2-3x
faster in bf16 than in fp32 on both, at the same held-out accuracy
(``benchmarks/bench_vs_original.py``). A narrow network such as the small configuration
(1 x 128) is bound by memory traffic and the embedding updates, and its compiled fp32 kernel
is faster than bf16 there.

On a GPU with tensor cores for bfloat16 and TF32 (NVIDIA compute capability 8.0 and later:
A100, H100, RTX 30xx and later) ``auto`` gives bf16 for the same wide networks and TF32 (fp32
numbers, products with 10-bit mantissas on tensor cores) for the others; earlier GPUs keep
fp32. Every resolved precision keeps fp32 accumulation: :func:`matmul_precision` turns off
cuBLAS's reduced-precision reductions for bf16 and allows TF32 only for ``"tf32"``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from .errors import AvocadoValueError

__all__ = ["AUTO_BF16_MIN_NODES", "PRECISIONS", "check_precision", "cpu_has_native_bf16",
           "cuda_has_bf16", "matmul_precision", "resolve_precision"]

#: Accepted values of ``precision``.
PRECISIONS = ("auto", "fp32", "tf32", "bf16")

#: ``"auto"`` picks bf16 only for networks with a hidden-to-hidden layer at least this wide.
AUTO_BF16_MIN_NODES = 1024

#: CPU flags (as /proc/cpuinfo spells them) of native bfloat16 matrix arithmetic.
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX-BF16 or AVX512-BF16).

    Parameters
    ----------
    cpuinfo: str, optional
        The file listing the CPU's flags. Default is ``"/proc/cpuinfo"`` (Linux); where it
        cannot be read the answer is False.

    Returns
    -------
    bool
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return bool(BF16_FLAGS & set(line.partition(":")[2].split()))
    except OSError:
        pass
    return False


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`.

    Raises
    ------
    AvocadoValueError
        Any other value.
    """
    if precision not in PRECISIONS:
        raise AvocadoValueError(
            f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}"
        )
    return precision


def cuda_has_bf16(device: torch.device | str) -> bool:
    """Whether a CUDA device has bfloat16 and TF32 tensor cores (compute capability >= 8.0).

    Parameters
    ----------
    device: torch.device or str
        A CUDA device.

    Returns
    -------
    bool
    """
    return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)


def resolve_precision(
    precision: str, n_layers: int, n_nodes: int, device: torch.device | str
) -> str:
    """The precision training and prediction use: ``"fp32"``, ``"tf32"`` or ``"bf16"``.

    Parameters
    ----------
    precision: str
        ``"fp32"`` and ``"bf16"`` are kept; ``"tf32"`` is kept on CUDA and is ``"fp32"``
        elsewhere (a format of NVIDIA's tensor cores); ``"auto"`` becomes ``"bf16"`` for a
        network with at least two hidden layers of at least :data:`AUTO_BF16_MIN_NODES` nodes
        on a CPU with native bfloat16 (:func:`cpu_has_native_bf16`) or a CUDA device with
        bfloat16 tensor cores (:func:`cuda_has_bf16`), ``"tf32"`` for other networks on such
        a CUDA device, and ``"fp32"`` otherwise.
    n_layers, n_nodes: int
        The network's hidden layers and their width.
    device: torch.device or str
        Where it runs.

    Returns
    -------
    str
    """
    check_precision(precision)
    device = torch.device(device)
    if precision == "tf32":
        return "tf32" if device.type == "cuda" else "fp32"
    if precision != "auto":
        return precision
    wide = n_layers >= 2 and n_nodes >= AUTO_BF16_MIN_NODES
    if device.type == "cuda":
        if not cuda_has_bf16(device):
            return "fp32"
        return "bf16" if wide else "tf32"
    return "bf16" if wide and device.type == "cpu" and cpu_has_native_bf16() else "fp32"


@contextlib.contextmanager
def matmul_precision(precision: str, device: torch.device | str) -> Iterator[None]:
    """Within the block, CUDA matrix products of fp32 tensors follow ``precision``.

    ``"tf32"`` allows TF32 tensor-core products; ``"fp32"`` and ``"bf16"`` forbid them (strict
    fp32), and ``"bf16"`` also forbids cuBLAS's reduced-precision reductions of bf16 products
    (which would otherwise sum partial products in bf16): accumulation stays fp32. The flags
    are process-wide; they are restored at the end. Elsewhere than CUDA, nothing changes.

    Parameters
    ----------
    precision: str
        A resolved precision (``"fp32"``, ``"tf32"`` or ``"bf16"``).
    device: torch.device or str
    """
    if (device if isinstance(device, torch.device) else torch.device(device)).type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    # (the fp32_precision API: torch refuses to mix it with the older allow_tf32 flag)
    old = matmul.fp32_precision, matmul.allow_bf16_reduced_precision_reduction
    matmul.fp32_precision = "tf32" if precision == "tf32" else "ieee"
    if precision == "bf16":
        matmul.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        matmul.fp32_precision, matmul.allow_bf16_reduced_precision_reduction = old
