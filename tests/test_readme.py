"""The README's commands work as written.

Every ``avocado`` line and the ``printf`` of the README's bash blocks is run here, in order, in
one scratch directory (with the few input files they name: two real bigWigs and a chrom-sizes
file); its Python example is executed; and ``make demo`` is started on an existing workspace and
must serve the app, as must gunicorn on ``dashboard.wsgi:server``. ``avocado serve`` is run by
``tests/test_cli.py::test_serve_answers_http``, and ``make test`` by CI.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app_workspaces import pilot_workspace  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
#: Lines run by other tests (see the module docstring).
RUN_ELSEWHERE = ("avocado serve", "make demo", "make test")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _shell_commands() -> list[str]:
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = re.sub(r"\s+# .*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def test_readme_names_only_commands_that_are_run():
    commands = _shell_commands()
    assert any(c.startswith("avocado train") for c in commands)
    unknown = [c for c in commands
               if not c.startswith(("avocado ", "printf ")) and not c.startswith(RUN_ELSEWHERE)]
    assert unknown == [], f"README commands no test runs: {unknown}"


def test_readme_cli_commands_run(tmp_path, data_mirror):
    bigwigs = data_mirror / "bigwig-real"
    shutil.copy(bigwigs / "bigwig_chrx_2e6_5e6.bw", tmp_path / "sampleA.H3K4me3.bw")
    shutil.copy(bigwigs / "bigwig2_X_2.5e6_3.5e6.bw", tmp_path / "sampleB.H3K4me3.bw")
    (tmp_path / "genome.sizes").write_text("chrX\t5000000\n")
    env = _env()
    ran = []
    for command in _shell_commands():
        if command.startswith(RUN_ELSEWHERE):
            continue
        result = subprocess.run(command if command.startswith("printf") else
                                shlex.split(command) + ["-q"] * _quiet(command),
                                shell=command.startswith("printf"), cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        ran.append(command)
    assert len(ran) >= 10
    # What the commands were meant to produce is there.
    for name in ("pilot/catalog.tsv", "model/config.json", "imputed/E065.H3K4me3.imputed.bw",
                 "E065.H3K4me3.imputed.bw", "biosamples.tsv", "diverse-positions.bed",
                 "features.tsv", "my-store/catalog.tsv"):
        assert (tmp_path / name).is_file(), name
    assert len((tmp_path / "diverse-positions.bed").read_text().splitlines()) == 50


def _quiet(command: str) -> int:
    """Add -q to commands that have it, to keep progress bars out of the captured output."""
    words = command.split()
    return int(len(words) > 1 and words[1] in {"train", "impute", "embed", "select", "ingest",
                                               "features"})


@pytest.mark.default_device  # as a user runs it: the device is the library's choice
def test_readme_python_example_runs(tmp_path, monkeypatch):
    (example,) = _blocks("python")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["imputed"].shape == namespace["observed"].shape == (4_000,)
    assert namespace["factors"].shape == (4_000, 10 + 20 + 30)  # the small config
    assert len(namespace["history"]["loss"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_and_get(command: list[str], port: int, env: dict[str, str]) -> tuple[str, str]:
    """Start a server command, wait for its page, stop it; the page and the command's output."""
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    body = None
    try:
        started = time.monotonic()
        while time.monotonic() - started < 120 and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    body = response.read().decode()
                break
            except OSError:
                time.sleep(1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    assert body is not None, f"{' '.join(command)} did not serve (exit {proc.poll()}):\n{output}"
    return body, output


def test_make_demo_serves_an_existing_workspace(pilot_workspace):  # noqa: F811
    assert shutil.which("make"), "make is not installed"
    port = _free_port()
    body, output = _serve_and_get(
        ["make", "--no-print-directory", "demo", f"WORKSPACE={pilot_workspace.path}",
         f"PORT={port}", f"VENV={Path(sys.executable).parents[1]}"], port, _env())
    assert "<title>" in body
    assert f"http://127.0.0.1:{port}" in output


def test_gunicorn_serves_the_wsgi_app(pilot_workspace):  # noqa: F811
    port = _free_port()
    env = {**_env(), "AVOCADO_WORKSPACE": str(pilot_workspace.path)}
    body, _ = _serve_and_get([str(Path(sys.executable).parent / "gunicorn"), "-w", "1", "-b",
                              f"127.0.0.1:{port}", "dashboard.wsgi:server"], port, env)
    assert "<title>" in body
