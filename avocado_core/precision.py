"""Which arithmetic precision training uses: what ``precision="auto"`` resolves to.

bfloat16 matrix products pay where the CPU multiplies bfloat16 natively (AMX-BF16 on Intel
Xeon since Sapphire Rapids, AVX512-BF16 on AMD Zen 4 and Intel Cooper Lake) and the step is
dominated by wide hidden-to-hidden products: the paper configuration (2 x 2048) trained 2-3x
faster in bf16 than in fp32 on both, at the same held-out accuracy
(``benchmarks/bench_vs_original.py``). A narrow network such as the small configuration
(1 x 128) is bound by memory traffic and the embedding updates, and its compiled fp32 kernel
is faster than bf16 there.
"""

from __future__ import annotations

import functools

import torch

from .errors import AvocadoValueError

__all__ = ["AUTO_BF16_MIN_NODES", "PRECISIONS", "cpu_has_native_bf16", "resolve_precision"]

#: Accepted values of ``precision``.
PRECISIONS = ("auto", "fp32", "bf16")

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


def resolve_precision(
    precision: str, n_layers: int, n_nodes: int, device: torch.device | str
) -> str:
    """The precision training uses: ``"fp32"`` or ``"bf16"``.

    Parameters
    ----------
    precision: str
        ``"fp32"`` and ``"bf16"`` are kept; ``"auto"`` becomes ``"bf16"`` on a CPU with native
        bfloat16 (:func:`cpu_has_native_bf16`) for a network with at least two hidden layers
        of at least :data:`AUTO_BF16_MIN_NODES` nodes, and ``"fp32"`` otherwise (narrower
        networks, other CPUs, other devices).
    n_layers, n_nodes: int
        The network's hidden layers and their width.
    device: torch.device or str
        Where training runs.

    Returns
    -------
    str
    """
    if precision not in PRECISIONS:
        raise AvocadoValueError(
            f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}"
        )
    if precision != "auto":
        return precision
    wide = n_layers >= 2 and n_nodes >= AUTO_BF16_MIN_NODES
    on_cpu = torch.device(device).type == "cpu"
    return "bf16" if wide and on_cpu and cpu_has_native_bf16() else "fp32"
