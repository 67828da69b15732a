"""The real pilot tracks that the accuracy and training benchmarks use, cut short for smoke runs."""

from __future__ import annotations

import argparse
import json

import numpy as np

from avocado_core import datasets


def add_positions_option(parser: argparse.ArgumentParser) -> None:
    """``--positions N``: only the first N bins of every track (smoke runs)."""
    parser.add_argument("--positions", type=int, default=None,
                        help="only the first N bins (smoke runs) [default: all 1,126,469]")


def add_training_options(parser: argparse.ArgumentParser, epochs: int, average_from: int,
                         config: dict, config_help: str) -> None:
    """``--epochs``, ``--average-from``, ``--positions`` and ``--config`` (JSON, parsed: the
    argument is a dict) of the benchmarks that train on the pilot."""
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--average-from", type=int, default=average_from)
    add_positions_option(parser)
    parser.add_argument("--config", type=json.loads, default=json.dumps(config),
                        help=f"JSON: {config_help}")


def pilot_tracks(positions: int | None = None) -> dict[tuple[str, str], np.ndarray]:
    """The 25 observed pilot tracks, ``(biosample, assay) -> values``, the first ``positions``
    bins of each (all of them for None)."""
    tracks = datasets.roadmap_pilot().tracks("observed")
    return {k: np.asarray(v[:positions]) for k, v in tracks.items()}
