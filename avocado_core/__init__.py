"""avocado_core: Avocado, multi-scale deep tensor factorization of epigenomic data, in PyTorch."""

__version__ = "0.1.0"

from .regions import RegionSet, parse_locus, format_locus
from .store import TrackStore
from .annotations import Annotations
from .model import Avocado

__all__ = ["RegionSet", "parse_locus", "format_locus", "TrackStore", "Annotations", "Avocado"]
