"""Background callbacks run in processes forked from a clean job launcher.

Dash's ``DiskcacheManager`` forks the web server for every background job. A server that has
already used OpenMP (numba's UMAP threads, torch) must not fork: numba then kills the child
("fork() called from a process already using GNU OpenMP, this is unsafe") and libgomp may hang
it, and Dash shows nothing: the job just vanishes. :class:`JobManager` keeps Dash's diskcache
protocol (results, progress and ``set_props`` go through the same cache) but starts jobs
differently:

- a **launcher** process is started fresh (``python -m dashboard.background``, never forked
  from the server) on the first job. It builds the same app without opening the workspace's
  data, so it never runs OpenMP, and forks one child per job: the child has the callbacks and
  imports it needs, and a clean OpenMP state;
- a job that dies (a signal, a crash in a native library) is turned into an error result, so
  the page shows an alert instead of waiting forever;
- a job that nobody polls any more (its tab was closed) stops after ``orphan_after`` seconds;
- a job cancelled on purpose (the Cancel button) is not reported as an error.

The launcher exits when the server that started it goes away.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import psutil
from dash import DiskcacheManager

__all__ = ["JobManager", "ORPHAN_AFTER_S"]

log = logging.getLogger("dashboard")

#: A job whose page has not asked for it for this long (its tab was closed) is stopped.
ORPHAN_AFTER_S = 30.0
#: Tries to stop a job whose processes exit while they are being listed.
_TERMINATE_ATTEMPTS = 3


def _heartbeat_key(key: str) -> str:
    return f"avocado-heartbeat-{key}"


def _cancelled_key(pid: int | str) -> str:
    return f"avocado-cancelled-{int(pid)}"


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by {name}"
    return f"exit code {os.WEXITSTATUS(status)}"


class JobManager(DiskcacheManager):
    """A diskcache background-callback manager whose jobs run under a clean launcher.

    Parameters
    ----------
    cache: diskcache.Cache
        Results, progress and heartbeats (shared by the server's workers and the jobs).
    app_spec: dict or None
        Keyword arguments of :func:`dashboard.app.create_app` with which the launcher builds
        the same app (``workspace`` as a path). None in the launcher itself.
    orphan_after: float
        Seconds without a poll after which a job stops. Default is :data:`ORPHAN_AFTER_S`.
    """

    def __init__(self, cache, app_spec: dict | None, orphan_after: float = ORPHAN_AFTER_S):
        super().__init__(cache)
        self.app_spec = app_spec
        self.orphan_after = float(orphan_after)
        self._launcher: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ in the server
    def call_job_fn(self, key, job_fn, args, context):
        if self.app_spec is None:
            raise RuntimeError("the job launcher does not start jobs itself")
        name = next((k for k, fn in self.func_registry.items() if fn is job_fn), None)
        if name is None:
            raise RuntimeError("background callback not registered")
        self.handle.delete(key)  # a stale result of an earlier job with the same inputs
        request = (name, key, self._make_progress_key(key), args, dict(context),
                   self.orphan_after)
        with self._lock:
            for attempt in (0, 1):  # a launcher that died is started again once
                try:
                    conn = self._connection()  # the first job waits for the launcher
                    self.handle.set(_heartbeat_key(key), time.time())
                    conn.send(request)
                    return conn.recv()
                except (EOFError, OSError):
                    self._stop_launcher()
                    if attempt:
                        raise

    def get_progress(self, key):
        self.handle.set(_heartbeat_key(key), time.time())
        return super().get_progress(key)

    def get_result(self, key, job):
        self.handle.set(_heartbeat_key(key), time.time())
        return super().get_result(key, job)

    def terminate_job(self, job):
        if job is not None:
            # on purpose (Cancel, a newer request, a result already read): not an error
            self.handle.set(_cancelled_key(job), True, expire=3600)
        for attempt in range(_TERMINATE_ATTEMPTS):
            try:
                return super().terminate_job(job)
            except psutil.NoSuchProcess:
                # the job, or a child of it, exited between being listed and being looked
                # at (psutil's children()): list again; a job that is gone is done
                if attempt == _TERMINATE_ATTEMPTS - 1:
                    log.warning("job %s: its processes kept exiting while being stopped", job)

    def _connection(self) -> Connection:
        if self._conn is not None and self._launcher is not None \
                and self._launcher.poll() is None:
            return self._conn
        ours, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._launcher = subprocess.Popen(
            [sys.executable, "-m", "dashboard.background", str(theirs.fileno()),
             json.dumps(self.app_spec)],
            pass_fds=[theirs.fileno()], env=env, close_fds=True,
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        if self._conn.recv() != "ready":
            raise OSError("the job launcher did not start")
        return self._conn

    def _stop_launcher(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        if self._launcher is not None and self._launcher.poll() is None:
            self._launcher.terminate()
            try:
                self._launcher.wait(5)
            except subprocess.TimeoutExpired:
                self._launcher.kill()
        self._launcher = None

    def close(self) -> None:
        """Stop the launcher (its running jobs stop with it)."""
        with self._lock:
            self._stop_launcher()


# ---------------------------------------------------------------------- in the launcher
def _run_job(manager: JobManager, name: str, key: str, progress_key: str, args: Any,
             context: dict, orphan_after: float) -> None:
    """The forked child: watch the heartbeat in a thread, run the job, leave."""
    cache = manager.handle

    def watch() -> None:
        while True:
            time.sleep(min(1.0, orphan_after / 4))
            beat = cache.get(_heartbeat_key(key), 0.0)
            if time.time() - float(beat) > orphan_after:
                cache.set(_cancelled_key(os.getpid()), True, expire=3600)
                os._exit(0)  # nobody is waiting for the result (the tab was closed)

    threading.Thread(target=watch, daemon=True).start()
    manager.func_registry[name](key, progress_key, args, context)


def _launcher_main(fd: int, spec: dict) -> None:
    from .app import create_app

    conn = Connection(fd)
    app = create_app(**spec, _launcher=True)
    manager: JobManager = app.server.config["AVOCADO_JOB_MANAGER"]
    cache = manager.handle
    jobs: dict[int, str] = {}
    jobs_lock = threading.Lock()

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(0.2)
                continue
            with jobs_lock:
                key = jobs.pop(pid, None)
            abnormal = os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0
            if key is None or not abnormal or cache.get(_cancelled_key(pid)):
                continue
            if cache.get(key) is None:  # died without a result: tell the page
                cache.set(key, {"background_callback_error": {
                    "msg": f"the background job stopped unexpectedly ({_describe_exit(status)})"
                           "; try again, or see the server log",
                    "tb": ""}})

    threading.Thread(target=reap, daemon=True).start()
    conn.send("ready")
    while True:
        try:
            name, key, progress_key, args, context, orphan_after = conn.recv()
        except (EOFError, OSError):
            break  # the server is gone
        with jobs_lock:
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    conn.close()
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    _run_job(manager, name, key, progress_key, args, context, orphan_after)
                except BaseException:  # noqa: BLE001 - the job wrote its own error result
                    code = 1
                finally:
                    os._exit(code)
            jobs[pid] = key
        conn.send(pid)
    with jobs_lock:
        for pid in jobs:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    _launcher_main(int(sys.argv[1]), json.loads(sys.argv[2]))
