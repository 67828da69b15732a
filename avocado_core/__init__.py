"""avocado_core: Avocado, multi-scale deep tensor factorization of epigenomic data, in PyTorch.

The public names below are imported on first use (PEP 562), so that ``import avocado_core`` and
``avocado --help`` do not pay for torch, scipy and umap until they are needed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> the submodule that defines it.
_EXPORTS: dict[str, str] = {
    "RegionSet": "regions", "parse_locus": "regions", "format_locus": "regions",
    "TrackStore": "store",
    "Annotations": "annotations",
    "bin_bigwig": "bigwig", "ingest_bigwig": "bigwig", "ingest_manifest": "bigwig",
    "export_bigwig": "bigwig", "write_bigwig": "bigwig",
    "Avocado": "model", "AvocadoEnsemble": "ensemble", "read_original": "original",
    "impute_experiments": "imputation",
    "score_track": "metrics",
    "average_activity": "baselines", "assay_mean": "baselines",
    "cross_validate": "evaluation",
    "export_features": "downstream",
    "project": "projection", "model_projection": "projection", "ProjectionCache": "projection",
    "facility_location": "selection", "select_biosamples": "selection",
    "select_positions": "selection", "SelectionResult": "selection",
    "synthetic_compendium": "synthetic", "SyntheticCompendium": "synthetic",
    "Workspace": "workspace", "build_workspace": "workspace_build",
}
_SUBMODULES = ("datasets",)

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
