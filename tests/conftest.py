"""Shared fixtures: where the real data lives, and the guard of the default device."""

from __future__ import annotations

import os
import traceback
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


@pytest.fixture(scope="session")
def hg19_sizes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chrom-sizes file of hg19's chr1 and chr2 (what bigWig export needs for a header)."""
    path = tmp_path_factory.mktemp("genome") / "hg19.sizes"
    path.write_text("chr1\t249250621\nchr2\t243199373\n")
    return path


@pytest.fixture(scope="session", autouse=True)
def one_signing_secret_for_every_app():
    """One secret for every Dash app of this test process.

    The tests build several apps in one process (a server never does: one app a process).
    Dash signs a background job's handle with the secret of ``dash.get_app()``, the app built
    last, but checks a Cancel against the app's own, so a job started through an earlier app
    could not be cancelled. With one secret every app works as it does when served.
    """
    import dash

    own = dash.Dash._get_signing_secret
    dash.Dash._get_signing_secret = lambda self: b"avocado tests: one process, several apps"
    yield
    dash.Dash._get_signing_secret = own


# ------------------------------------------------------------------------------ default device
#: Whether the running test may reach the default-device choice (``gpu`` tests only), and the
#: places where a test reached it.
_DEFAULT_DEVICE: dict = {"allowed": False, "reached": []}


@pytest.fixture(scope="session", autouse=True)
def _guard_default_device():
    """Fail any test (or fixture) outside the ``gpu`` mark that lets the library choose its
    device: on a machine with CUDA it would silently run on the GPU, not the CPU it means.
    (``default_device`` marks the tests of that choice itself.)

    Every implicit choice of the library goes through ``avocado_core.devices.default_device``;
    it raises here (pytest's ``Failed``, which no ``except Exception`` swallows) and the test
    also fails at teardown, should the call have happened on a thread that hid the error.
    """
    from avocado_core import devices

    original = devices.default_device

    def guarded():
        if _DEFAULT_DEVICE["allowed"]:
            return original()
        where = "".join(traceback.format_stack(limit=5)[:-1])
        _DEFAULT_DEVICE["reached"].append(where)
        pytest.fail("the library chose the device (avocado_core.devices.default_device): pass "
                    f"device='cpu' in a CPU test, or mark it gpu. Called from:\n{where}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(devices, "default_device", guarded)
        yield


@pytest.fixture(autouse=True)
def _default_device_per_test(request: pytest.FixtureRequest):
    node = request.node
    allowed = any(node.get_closest_marker(m) for m in ("gpu", "default_device"))
    _DEFAULT_DEVICE.update(allowed=allowed, reached=[])
    yield
    reached, _DEFAULT_DEVICE["reached"] = _DEFAULT_DEVICE["reached"], []
    _DEFAULT_DEVICE["allowed"] = False
    if reached:
        pytest.fail(f"{len(reached)} call(s) reached avocado_core.devices.default_device(); "
                    f"the first from:\n{reached[0]}")
