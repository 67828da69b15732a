"""Load on the served app: the locus callback under 1 and 20 concurrent users.

Starts ``avocado serve WORKSPACE --port 0 --workers N`` for one worker (werkzeug's threaded
server in one process) and for the default (gunicorn, one worker per core, at most 4); each
user sends the locus page's "Go" callback (POST /_dash-update-component: a random 100 kb
window of the region set, 10 experiments, observed + imputed) again and again, with no pause,
over a keep-alive connection to 127.0.0.1, for ``--seconds`` per row. Prints requests/s,
p50 / p95 latency, errors, and the memory of the server processes before and after the load
(RSS, and PSS, which splits the shared memory maps of the store between the processes).

Usage::

    python benchmarks/bench_serve.py WORKSPACE [--seconds 20] [--users 1 20]

WORKSPACE defaults to a pilot workspace built with the tests' tiny model in a temporary folder
(as benchmarks/bench_locus.py does).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_locus import WINDOW, locus_payload, open_or_build_workspace  # noqa: E402
from machine import cpu_model  # noqa: E402

from avocado_core.cli.serve import default_workers  # noqa: E402
from avocado_core.regions import format_locus  # noqa: E402
from avocado_core.workspace import Workspace  # noqa: E402


def random_windows(ws: Workspace, n: int, seed: int = 0) -> list[str]:
    """n random 100 kb windows, each inside one region of the region set (25 bp aligned)."""
    regions = ws.store.regions
    rows = regions.intervals
    rows = rows[rows["n_bins"] * regions.bin_size >= WINDOW]
    rng = np.random.default_rng(seed)
    picked = rows.iloc[rng.integers(0, len(rows), n)]
    lo = picked["first_bin_start"].to_numpy()
    room = picked["n_bins"].to_numpy() * regions.bin_size - WINDOW
    starts = (lo + (rng.random(n) * (room + 1)).astype(np.int64)) // 25 * 25
    return [format_locus(str(c), int(s), int(s) + WINDOW)
            for c, s in zip(picked["chrom"], starts)]


class Server:
    """``avocado serve`` in a child process, on a free port of 127.0.0.1."""

    def __init__(self, workspace: Path, workers: int):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "avocado_core", "serve", str(workspace), "--port", "0",
             "--workers", str(workers)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        line = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not match:
            raise RuntimeError(f"the server did not start: {line}{self.process.stdout.read()}")
        self.port = int(match.group(1))
        self.workers = workers
        threading.Thread(target=self.process.stdout.read, daemon=True).start()  # drain logs

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        workers = [p for p in root.children() if "dashboard.background" not in
                   " ".join(p.cmdline())]
        return workers if self.workers > 1 else [root]

    def wait_for_workers(self) -> None:
        deadline = time.monotonic() + 120
        while len(self.processes()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.2)

    def memory_mb(self) -> tuple[list[float], list[float]]:
        """RSS and PSS of each serving process, in MB."""
        procs = self.processes()
        rss = [p.memory_info().rss / 2**20 for p in procs]
        pss = [p.memory_full_info().pss / 2**20 for p in procs]
        return rss, pss

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def load(port: int, bodies: list[bytes], users: int, seconds: float
         ) -> tuple[list[float], int, float]:
    """``users`` closed-loop clients for ``seconds``: latencies, errors, wall time."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def user(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = k
        while time.monotonic() < stop_at:
            body = bodies[i % len(bodies)]
            i += users
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/_dash-update-component", body,
                             {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                ok = response.status == 200 and b'"locus-metrics"' in data
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            took = time.perf_counter() - t0
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=user, args=(k,)) for k in range(users)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", nargs="?", help="workspace folder (default: build one)")
    parser.add_argument("--seconds", type=float, default=20.0, help="load per row")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="server processes to compare [default: 1 and the default]")
    args = parser.parse_args()
    ws = open_or_build_workspace(args.workspace, "bench-serve-")
    experiments = [[b, a] for b in ws.biosamples[:2] for a in ws.assays[:5]][:10]
    bodies = [json.dumps(locus_payload(text, experiments)).encode()
              for text in random_windows(ws, 2000)]
    workers = args.workers or sorted({1, default_workers()})

    print(f"CPU: {cpu_model()} · {os.cpu_count()} cores · load average "
          f"{os.getloadavg()[0]:.1f} (other jobs) · workspace {ws.path}")
    print(f"locus callback: random {WINDOW // 1000} kb windows, {len(experiments)} experiments "
          f"(observed + imputed), {args.seconds:.0f} s per row, no pause between requests")
    print(f"{'workers':>7} {'users':>5} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6} "
          f"{'RSS MB per worker (before -> after)':>38} {'PSS MB total':>13}")
    for n in workers:
        server = Server(ws.path, n)
        try:
            server.wait_for_workers()
            load(server.port, bodies[:20], n * 2, 5.0)  # warm-up: every worker, every map
            for users in args.users:
                rss0, _ = server.memory_mb()
                lat, errors, wall = load(server.port, bodies, users, args.seconds)
                rss1, pss1 = server.memory_mb()
                ms = np.asarray(lat) * 1000 if lat else np.array([np.nan])
                mem = " ".join(f"{a:.0f}->{b:.0f}" for a, b in zip(rss0, rss1))
                print(f"{n:>7} {users:>5} {len(lat) / wall:>7.1f} {np.percentile(ms, 50):>8.0f} "
                      f"{np.percentile(ms, 95):>8.0f} {errors:>6} {mem:>38} {sum(pss1):>13.0f}",
                      flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
