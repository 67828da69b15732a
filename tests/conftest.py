"""Shared fixtures: where the real data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("AVOCADO_DATA_MIRROR", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    """The local mirror of the public datasets (../shared/data beside the checkout)."""
    path = Path(os.environ["AVOCADO_DATA_MIRROR"])
    if not path.is_dir():
        pytest.fail(f"AVOCADO_DATA_MIRROR={path} is not a directory")
    return path


@pytest.fixture(scope="session")
def pilot_dir(data_mirror: Path) -> Path:
    """The real Roadmap pilot tracks."""
    return data_mirror / "roadmap-pilot"
