"""The background jobs of the apps that this test process serves (``serving`` in conftest)."""

from __future__ import annotations

import time

import psutil


def job_processes() -> list[psutil.Process]:
    """The running jobs: children of this process's job launchers."""
    jobs = []
    for child in psutil.Process().children():
        if "dashboard.background" in " ".join(child.cmdline()):
            jobs += [p for p in child.children() if p.status() != psutil.STATUS_ZOMBIE]
    return jobs


def wait_for_jobs(n: int = 1, timeout: float = 60) -> list[psutil.Process]:
    """The running jobs once there are ``n`` of them (asserted within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while len(jobs := job_processes()) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(jobs) == n, jobs
    return jobs
