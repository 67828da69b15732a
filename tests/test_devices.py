"""The library's one choice of device (``avocado_core.devices``) and the suite's guard of it."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from avocado_core import Avocado, devices
from avocado_core.errors import AvocadoValueError

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent


@pytest.mark.default_device
def test_the_default_is_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.default_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.default_device() == torch.device("cpu")
    assert Avocado(["x"], ["k"], 10).device == torch.device("cpu")
    assert devices.as_device(None) == torch.device("cpu")


def test_as_device_names_a_bad_device():
    assert devices.as_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(AvocadoValueError, match="unknown device 'gpu0'; expected e.g. 'cpu'"):
        devices.as_device("gpu0")


def test_jobs_spread_over_the_gpus_unless_one_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [str(d) for d in devices.job_devices("cuda", 5)] == [
        "cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert [str(d) for d in devices.job_devices("cuda:1", 3)] == ["cuda:1"] * 3
    assert [str(d) for d in devices.job_devices("cpu", 2)] == ["cpu"] * 2


def test_the_suite_fails_a_test_that_lets_the_library_choose(pytester, monkeypatch):
    """The guard of ``conftest.py``: a test without ``device`` fails (even when the library
    swallows exceptions), one with ``device="cpu"`` passes, a ``gpu`` one may choose."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS.parent), *sys.path]))
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    shutil.copy(TESTS / "cpu_cli.py", pytester.path / "cpu_cli.py")
    pytester.makepyfile(test_inner="""
        import pytest
        from avocado_core import Avocado
        from avocado_core.cli import main
        from cpu_cli import on_cpu

        def test_unpinned():
            Avocado(["b"], ["a"], 10)

        def test_swallowed():
            try:
                Avocado(["b"], ["a"], 10)
            except BaseException:
                pass

        def test_pinned():
            assert Avocado(["b"], ["a"], 10, device="cpu").device.type == "cpu"

        def test_cli_pinned():
            assert on_cpu(["train", "s", "m"]) == ["train", "s", "m", "--device", "cpu"]
            assert on_cpu(["train", "--device", "cuda"]) == ["train", "--device", "cuda"]
            assert on_cpu(["info", "m"]) == ["info", "m"]

        @pytest.mark.gpu
        def test_gpu_may_choose():
            Avocado(["b"], ["a"], 10)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:dash")
    # test_unpinned fails, and again at teardown; test_swallowed passes, and fails there
    result.assert_outcomes(passed=4, failed=1, errors=2)
    result.stdout.fnmatch_lines(["*test_unpinned*the library chose the device*"])
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_swallowed*"])
