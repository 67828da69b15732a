"""A real server in a child process, as a user starts it: ``avocado serve`` or gunicorn by hand.

The server runs in its own process group (as a command in a terminal does) with its own
temporary folder (``TMPDIR``), so that a test can press "Ctrl+C" (SIGINT to the group) and then
look for what the server left behind.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
#: What the app's and the server's temporary folders are called (see dashboard/app.py and
#: avocado_core/cli/serve.py); torch and others may leave their own caches beside them.
LEFTOVER = re.compile(r"avocado")


class ServerProcess:
    """A server command started in its own process group and temporary folder.

    Parameters
    ----------
    command: list of str
        Arguments after ``python -m``, e.g. ``["avocado_core", "serve", ws, "--port", "0"]``.
    tmpdir: Path
        The server's ``TMPDIR``.
    url: str or None
        The server's address when the command does not print it (gunicorn by hand); None:
        read from the first line it prints (``avocado serve``).
    env: dict
        More environment variables.
    """

    def __init__(self, command: list[str], tmpdir: Path, url: str | None = None,
                 env: dict[str, str] | None = None):
        tmpdir.mkdir(parents=True, exist_ok=True)
        self.tmpdir = tmpdir
        full_env = {**os.environ, **(env or {}), "TMPDIR": str(tmpdir),
                    "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", *command], env=full_env, cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: list[str] = []
        while url is None:  # the line with its address (warnings may come first)
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the server did not start: {self.output}")
            self.lines.append(line)
            if match := re.search(r"http://127\.0\.0\.1:\d+", line):
                url = match.group(0)
        self.url = url
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until_serving(self, workers: int, timeout: float = 180) -> None:
        """Until the server answers its page and, with ``workers`` > 1, that many worker
        processes run (with one, the server's own process serves)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.output}")
            if workers == 1 or len(self.workers()) >= workers:
                try:
                    with urllib.request.urlopen(f"{self.url}/", timeout=30) as response:
                        if response.status == 200:
                            return
                except OSError:
                    pass
            time.sleep(0.3)
        raise TimeoutError(f"the server did not serve within {timeout} s: {self.output}")

    def _children(self, process: psutil.Process) -> list[psutil.Process]:
        try:
            return [p for p in process.children() if p.status() != psutil.STATUS_ZOMBIE]
        except psutil.NoSuchProcess:
            return []

    def workers(self) -> list[psutil.Process]:
        """The server's worker processes (gunicorn's; not the job launchers)."""
        return [p for p in self._children(psutil.Process(self.process.pid))
                if "dashboard.background" not in " ".join(p.cmdline())]

    def launchers(self) -> list[psutil.Process]:
        """The job launchers (one per worker that has started a job)."""
        return [p for w in self.workers() for p in self._children(w)
                if "dashboard.background" in " ".join(p.cmdline())]

    def jobs(self, timeout: float = 60) -> list[psutil.Process]:
        """The running jobs, waiting up to ``timeout`` s for one to start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [j for launcher in self.launchers() for j in self._children(launcher)]
            if found:
                return found
            time.sleep(0.1)
        return []

    def group_alive(self) -> list[int]:
        """The processes of the server's group still running."""
        alive = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(p.pid) == self.process.pid and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p.pid)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        return alive

    def stop(self, sig: int = signal.SIGINT, group: bool = True, timeout: float = 60) -> int:
        """Signal the whole group (SIGINT: a terminal's Ctrl+C), or with ``group=False`` the
        server's process alone (``kill PID``); the server's exit status."""
        if self.process.poll() is None:
            if group:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait(10)
        self._reader.join(10)
        return code

    def leftovers(self) -> list[str]:
        """The server's files and folders left in its temporary folder."""
        return sorted(p.name for p in self.tmpdir.iterdir() if LEFTOVER.search(p.name))


def serve_command(workspace: Path | str, workers: int) -> list[str]:
    """``avocado serve WORKSPACE`` on a free port of 127.0.0.1."""
    return ["avocado_core", "serve", str(workspace), "--port", "0", "--workers", str(workers)]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
