"""Time in the browser from Enter in the locus box to the repainted plot: 10 tracks, 100 kb.

The app is served on 127.0.0.1 (werkzeug, in this process); Debian's Chromium, driven by
Playwright, opens the locus page with 10 experiments, then types a new 100 kb window into the
coordinate box and presses Enter, again and again over windows spread across a pilot region.
Each time is measured inside the page: from the Enter keydown (``performance.now()``) to the
second animation frame after plotly has taken the new figure (its ``layout.meta.start`` is the
new window's), i.e. after the browser has painted it. It includes the request, the server's
callback, the transfer and plotly's drawing.

Target: p95 under 300 ms.

Usage::

    python benchmarks/bench_browser.py WORKSPACE [--repeats 30]

WORKSPACE is a workspace built by ``build_workspace`` (e.g. ``avocado demo``'s).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bench_locus import windows  # noqa: E402
from machine import cpu_model  # noqa: E402

from avocado_core.regions import parse_locus  # noqa: E402
from avocado_core.workspace import Workspace  # noqa: E402
from dashboard.app import create_app  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]

#: Sets window.__painted to a promise that resolves, once plotly holds the figure of the
#: window starting at START, with the time of the second animation frame after it (the first
#: paint that shows it).
PAINTED = """
(start) => { window.__painted = new Promise(resolve => {
    const check = () => {
        const gd = document.querySelector('#locus-graph .js-plotly-plot');
        const meta = gd && gd.layout && gd.layout.meta;
        if (meta && meta.start === start) {
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
        } else {
            requestAnimationFrame(check);
        }
    };
    check();
}); }
"""
ENTER_TIME = """
() => document.querySelector('#locus-input').addEventListener('keydown', e => {
    if (e.key === 'Enter') { window.__enter = performance.now(); }
}, {capture: true})
"""




def ten_tracks(ws: Workspace) -> list[str]:
    """Ten experiments: every assay of the two best-covered biosamples (held-out ones too)."""
    status = ws.status()
    observed = status.isin(["observed", "held out"]).sum(axis=1)
    best = observed.sort_values(ascending=False, kind="stable").index[:2]
    return [f"{b}|{a}" for b in best for a in list(status.columns)[:5]]


def measure(url: str, tracks: list[str], loci: list[str]) -> list[float]:
    """Seconds from Enter to the painted plot, one per locus after the first."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        sys.exit("chromium is not installed (apt-get install -y chromium)")
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS,
                                    headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/locus?locus={loci[0]}&tracks={','.join(tracks)}")
        page.evaluate(PAINTED, parse_locus(loci[0])[1])
        page.evaluate("window.__painted")
        page.wait_for_load_state("networkidle")
        page.evaluate(ENTER_TIME)
        box = page.locator("#locus-input")
        for locus in loci[1:]:
            box.fill(locus)
            page.evaluate(PAINTED, parse_locus(locus)[1])
            box.press("Enter")
            t1 = page.evaluate("window.__painted")
            times.append((t1 - page.evaluate("window.__enter")) / 1000)
            page.wait_for_load_state("networkidle")  # the URL update after the draw
        browser.close()
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    ws = Workspace(args.workspace)
    app = create_app(ws)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tracks = ten_tracks(ws)
        times = np.array(measure(f"http://127.0.0.1:{server.server_port}", tracks,
                                 windows(ws, args.repeats + 1)))
    finally:
        server.shutdown()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores)")
    print(f"Enter -> repainted plot, {len(tracks)} tracks, 100 kb windows, {len(times)} "
          f"windows, Chromium (headless) on 127.0.0.1:")
    print("| p50 (ms) | p95 (ms) | max (ms) |")
    print("|---:|---:|---:|")
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    print(f"| {p50:.0f} | {p95:.0f} | {times.max() * 1000:.0f} |")


if __name__ == "__main__":
    main()
