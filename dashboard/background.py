"""Background callbacks: one job store that every server worker shares, jobs run under a
clean launcher.

**One job store.** Dash's diskcache protocol (results, progress, ``set_props``, the secret that
signs the page's job handles) lives in one diskcache folder that every worker of the server
opens: the server's runtime folder for ``avocado serve`` (made by the serve command before the
workers start), the workspace's ``.cache/background`` for ``dashboard.wsgi``. A job started
through one worker is polled, cancelled and read through any other, and a worker that restarts
finds the store as it was.

**A clean launcher.** Dash's ``DiskcacheManager`` forks the web server for every job. A server
that has already used OpenMP (numba's UMAP threads, torch) must not fork: numba then kills the
child ("fork() called from a process already using GNU OpenMP, this is unsafe") and libgomp may
hang it. :class:`JobManager` starts jobs differently:

- each worker starts a **launcher** process fresh (``python -m dashboard.background``, never
  forked from the server) on its first job. The launcher builds the same app through the app
  factory named in its spec (a dotted name: this module never imports the app) without opening
  the workspace's data, so it never runs OpenMP, and forks one child per job: the child has the
  callbacks and imports it needs, and a clean OpenMP state;
- each job is recorded in the store with its launcher, so that any worker can tell a running
  job from one whose process is gone;
- a job that dies (a signal, a crash in a native library) is turned into an error result, so
  the page shows an alert instead of waiting forever; so is a job whose launcher is gone
  without a word (``kill -9``);
- a job that nobody polls any more (its tab was closed) stops after ``orphan_after`` seconds,
  and one whose store was removed (the server stopped) stops at once;
- a job cancelled on purpose (the Cancel button) is not reported as an error.

A launcher stops its jobs and exits when its worker closes the app (the server stops) or on
SIGTERM / SIGINT (Ctrl+C reaches the whole process group). When its worker dies without
closing (``kill -9``, a crash), the launcher lets its running jobs finish, their results read
through the other workers, and then exits.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import psutil
from dash import DiskcacheManager

__all__ = ["JobManager", "ORPHAN_AFTER_S", "MANAGER_CONFIG_KEY", "stop_signals_ignored"]

log = logging.getLogger("dashboard")

#: A job whose page has not asked for it for this long (its tab was closed) is stopped.
ORPHAN_AFTER_S = 30.0
#: Where the app's Flask config holds its :class:`JobManager` (the launcher finds it there).
MANAGER_CONFIG_KEY = "AVOCADO_JOB_MANAGER"
#: Tries to stop a job whose processes exit while they are being listed.
_TERMINATE_ATTEMPTS = 3
#: Seconds a launcher waits for the jobs it killed to be reaped before it exits.
_STOP_WAIT_S = 5.0


def _heartbeat_key(key: str) -> str:
    return f"avocado-heartbeat-{key}"


def _cancelled_key(pid: int | str) -> str:
    return f"avocado-cancelled-{int(pid)}"


def _job_key(pid: int | str) -> str:
    """The record of a running job: its launcher's pid and its own start time."""
    return f"avocado-job-{int(pid)}"


def _died(cause: str) -> dict:
    """The error result of a job that ended without one (what the page's alert says)."""
    return {"background_callback_error": {
        "msg": f"the background job stopped unexpectedly ({cause}); try again, or see the "
               "server log",
        "tb": ""}}


def _describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"killed by {name}"
    return f"exit code {os.WEXITSTATUS(status)}"


def _running(pid: int, started: float | None = None) -> bool:
    """Whether process ``pid`` runs (not a zombie) and, when given, started at ``started``
    (a recycled pid is another process)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 1e-3
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: not one of our jobs
        return False


def _ignore(signum, frame) -> None:
    """A stop signal while stopping: nothing to do."""


@contextlib.contextmanager
def stop_signals_ignored() -> Iterator[None]:
    """Run a clean-up that a second stop signal must not cut short.

    A terminal's Ctrl+C reaches every process of the server, and gunicorn's master then
    signals its workers again: SIGINT, SIGTERM and SIGQUIT do nothing inside the block (in the
    main thread, where Python runs signal handlers; elsewhere the block runs unshielded).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
    # a handler that does nothing rather than SIG_IGN: a signal that has just arrived runs it,
    # instead of being reported as "ignored due to race condition"
    handlers = [signal.signal(sig, _ignore) for sig in stops]
    try:
        yield
    finally:
        for sig, handler in zip(stops, handlers):
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def _resolve(dotted: str) -> Any:
    """``"package.module:attribute"`` -> the attribute."""
    module, _, attribute = dotted.partition(":")
    return getattr(importlib.import_module(module), attribute)


class JobManager(DiskcacheManager):
    """A diskcache background-callback manager whose jobs run under a clean launcher.

    Parameters
    ----------
    cache: diskcache.Cache
        The job store: results, progress, heartbeats and job records, shared by every worker
        of the server and by the jobs.
    app_spec: dict or None
        How the launcher builds the same app: ``{"factory": "module:function", "kwargs":
        {...}}``, the factory called with the keyword arguments (JSON values). None in the
        launcher itself.
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

    def job_running(self, job):
        """Whether the page should keep polling: the job runs, or it has just ended and its
        launcher (alive) is about to record how."""
        if job is None:
            return False
        record = self.handle.get(_job_key(job))
        if record is None:  # not recorded (yet) or already reaped: its process tells
            return _running(int(job))
        return _running(int(job), record["started"]) or _running(*record["launcher"])

    def get_progress(self, key):
        self.handle.set(_heartbeat_key(key), time.time())
        return super().get_progress(key)

    def get_result(self, key, job):
        self.handle.set(_heartbeat_key(key), time.time())
        result = super().get_result(key, job)
        if result is not self.UNDEFINED or job is None or self.job_running(job) \
                or self.handle.get(_cancelled_key(job)):
            return result
        # gone without a result: it may have written one since the first look
        result = super().get_result(key, job)
        if result is self.UNDEFINED:
            log.error("job %s: its process and its launcher are gone without a result", job)
            result = _died("the server process that ran it stopped")
        return result

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
                self._launcher.wait(_STOP_WAIT_S + 5)
            except subprocess.TimeoutExpired:
                self._launcher.kill()
        self._launcher = None

    def close(self) -> None:
        """Stop the launcher and wait for it (its running jobs stop with it)."""
        with self._lock:
            self._stop_launcher()


# ---------------------------------------------------------------------- in the launcher
def _run_job(manager: JobManager, name: str, key: str, progress_key: str, args: Any,
             context: dict, orphan_after: float) -> None:
    """The forked child: watch the heartbeat and the store in a thread, run the job, leave."""
    cache = manager.handle

    def watch() -> None:
        while True:
            time.sleep(min(1.0, orphan_after / 4))
            if not os.path.isdir(cache.directory):
                os._exit(0)  # the server stopped and removed the store: nobody is waiting
            beat = cache.get(_heartbeat_key(key), 0.0)
            if time.time() - float(beat) > orphan_after:
                cache.set(_cancelled_key(os.getpid()), True, expire=3600)
                os._exit(0)  # nobody is waiting for the result (the tab was closed)

    threading.Thread(target=watch, daemon=True).start()
    manager.func_registry[name](key, progress_key, args, context)


def _fork_job(manager: JobManager, conn: Connection, request: tuple) -> int:
    """Fork the child that runs one job; returns its pid (in the launcher)."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        conn.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C: its launcher stops it
        _run_job(manager, *request)
    except BaseException:  # noqa: BLE001 - the job wrote its own error result
        code = 1
    finally:
        os._exit(code)


def _stop(signum, frame) -> None:
    raise SystemExit(0)


def _exit_now(signum, frame) -> None:
    """A stop signal once the launcher has cleaned up: end without the interpreter's own
    clean-up (a SystemExit raised inside an atexit finalizer prints a traceback)."""
    os._exit(0)


def _launcher_main(fd: int, spec: dict) -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # Ctrl+C reaches the whole process group
    conn = Connection(fd)
    app = _resolve(spec["factory"])(**spec["kwargs"])
    manager: JobManager = app.server.config[MANAGER_CONFIG_KEY]
    cache = manager.handle
    launcher = (os.getpid(), psutil.Process().create_time())
    jobs: dict[int, str] = {}
    jobs_lock = threading.Lock()
    stopping = threading.Event()

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(0.2)
                continue
            with jobs_lock:
                key = jobs.pop(pid, None)
            if key is None:
                continue
            abnormal = os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0
            if abnormal and not stopping.is_set() and not cache.get(_cancelled_key(pid)) \
                    and cache.get(key) is None:  # died without a result: tell the page
                cache.set(key, _died(_describe_exit(status)))
            cache.delete(_job_key(pid))  # reaped: its record has told what it had to

    threading.Thread(target=reap, daemon=True).start()
    try:
        conn.send("ready")
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                break  # the worker is gone without closing: let the running jobs finish
            with jobs_lock:  # the reaper records nothing of this job before it is listed
                pid = _fork_job(manager, conn, request)
                jobs[pid] = request[1]
                try:
                    started = psutil.Process(pid).create_time()
                except psutil.NoSuchProcess:  # it ended at once (and was waited for)
                    started = None
                cache.set(_job_key(pid), {"launcher": launcher, "started": started})
            conn.send(pid)
        while jobs:
            time.sleep(0.2)
    finally:
        # stopped (SIGTERM from the closing worker, Ctrl+C) or done: the jobs go first, so
        # that nothing writes to a store that is being removed
        with stop_signals_ignored():
            stopping.set()
            with jobs_lock:
                running = list(jobs)
            for pid in running:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + _STOP_WAIT_S
            while jobs and time.monotonic() < deadline:
                time.sleep(0.05)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_now)


if __name__ == "__main__":
    _launcher_main(int(sys.argv[1]), json.loads(sys.argv[2]))
