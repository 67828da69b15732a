"""avocado_core: Avocado, multi-scale deep tensor factorization of epigenomic data, in PyTorch."""

__version__ = "0.1.0"

from .regions import RegionSet, parse_locus, format_locus
from .store import TrackStore
from .annotations import Annotations
from .bigwig import bin_bigwig, export_bigwig, ingest_bigwig, ingest_manifest, write_bigwig
from . import datasets
from .model import Avocado
from .metrics import score_track
from .baselines import average_activity, assay_mean
from .evaluation import cross_validate
from .downstream import export_features
from .projection import ProjectionCache, model_projection, project
from .selection import SelectionResult, facility_location, select_biosamples, select_positions
from .synthetic import SyntheticCompendium, synthetic_compendium

__all__ = ["RegionSet", "parse_locus", "format_locus", "TrackStore", "Annotations",
           "bin_bigwig", "ingest_bigwig", "ingest_manifest", "export_bigwig", "write_bigwig",
           "datasets", "Avocado",
           "score_track", "average_activity", "assay_mean", "cross_validate", "export_features",
           "project", "model_projection", "ProjectionCache", "facility_location",
           "select_biosamples", "select_positions", "SelectionResult", "synthetic_compendium",
           "SyntheticCompendium"]
