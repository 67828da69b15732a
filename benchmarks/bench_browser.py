"""Time in the browser from a user's action to the repainted page, in Chromium.

The app is served on 127.0.0.1 (werkzeug, in this process); Debian's Chromium, driven by
Playwright, acts as a user. Every time is measured inside the page, from the action's event
(``performance.now()`` in a capturing listener) to the second animation frame after the page
shows its result, i.e. after the browser has painted it: the request, the server's callback,
the transfer and plotly's drawing.

By default one measure: the locus page with 10 experiments, a new 100 kb window typed into the
coordinate box and Enter, again and again over windows spread across a region.

With ``--all`` (for a compendium of ENCODE's size: ``avocado demo WS --source encode-layout``):

* first paint of each page: from the navigation's start to the painted map / tracks and track
  matrix / design form (the app's scripts come from the browser's cache after the first);
* picker filter: a click on a biosample-type facet to the repainted matrix (types checked and
  unchecked in turn, so every click changes the rows);
* map recolour: the biosample map's colour changed between type and number of experiments;
* lasso: the release of a lasso around the middle of the biosample map to the selection's
  count and links (the selection cleared between lassos);
* locus redraw with 10 and with 40 tracks (compact rows);
* the 40 tracks with heights of their own (``--only locus-40-heights``: every fifth tall,
  every fifth a strip, the others compact: the hover's cells are then 21 px, 104 rows of
  them instead of 40).

Target: p95 under 300 ms for every action, first paints under 2 s.

Usage::

    python benchmarks/bench_browser.py WORKSPACE [--repeats 30] [--all | --only MEASURE ...]

``--only`` runs the named measures alone (``--only locus-40`` the 40-track redraw), e.g. to
alternate runs of two checkouts while the machine's load changes.

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
from dashboard.pages.locus import MAX_TRACKS  # noqa: E402
from dashboard.track_heights import format_heights  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]

#: In every page from its start: ``window.__when(test)`` resolves, once ``test()`` holds, with
#: the time of the second animation frame after it (the first paint that shows it);
#: ``window.__t0`` is the time of the last click, mouse release or Enter.
TIMING = """
window.__when = (test) => new Promise(resolve => {
    const check = () => {
        let ok = false;
        try { ok = test(); } catch (e) { ok = false; }
        if (ok) {
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
        } else {
            requestAnimationFrame(check);
        }
    };
    check();
});
const mark = () => { window.__t0 = performance.now(); };
document.addEventListener('click', mark, {capture: true});
document.addEventListener('mouseup', mark, {capture: true});
document.addEventListener('keydown', e => { if (e.key === 'Enter') { mark(); } },
                          {capture: true});
"""
#: The plotly figure inside a dcc.Graph.
GRAPH = "document.querySelector('#{} .js-plotly-plot')"
#: Whether no callback is pending (Dash marks what a callback will update).
IDLE = ("!document.querySelector('._dash-loading-callback') && "
        "!document.querySelector('[data-dash-is-loading=\"true\"]')")
READY = {
    "embeddings": f"{GRAPH.format('emb-graph')}.data.length > 0 && "
                  "document.querySelectorAll('#emb-graph .scatterlayer .trace').length > 0",
    "locus": f"{GRAPH.format('locus-graph')}.layout.meta.n_tracks > 0 && "
             f"{GRAPH.format('locus-picker')}.data.length > 0",
    "design": f"document.querySelector('#design-run') && {IDLE}",
}


def ten_tracks(ws: Workspace) -> list[str]:
    """Ten experiments: every assay of the two best-covered biosamples (held-out ones too)."""
    return best_covered(ws, 2, 5)


def best_covered(ws: Workspace, n_biosamples: int, n_assays: int) -> list[str]:
    """The first ``n_assays`` assays of the ``n_biosamples`` best-covered biosamples."""
    status = ws.status()
    observed = status.isin(["observed", "held out"]).sum(axis=1)
    best = observed.sort_values(ascending=False, kind="stable").index[:n_biosamples]
    return [f"{b}|{a}" for b in best for a in list(status.columns)[:n_assays]]


def wait(page, test: str) -> float:
    """The time (ms) of the first paint after ``test`` holds."""
    return page.evaluate(f"window.__when(() => {test})")


def since_action(page, test: str) -> float:
    """Seconds from the last action (``__t0``) to the first paint after ``test`` holds."""
    return (wait(page, test) - page.evaluate("window.__t0")) / 1000


def locus_redraw(page, url: str, tracks: list[str], loci: list[str],
                 query: str = "") -> list[float]:
    """Seconds from Enter to the painted plot, one per locus after the first."""
    page.goto(f"{url}/locus?locus={loci[0]}&tracks={','.join(tracks)}{query}")
    wait(page, f"{GRAPH.format('locus-graph')}.layout.meta.start === {parse_locus(loci[0])[1]}")
    page.wait_for_load_state("networkidle")
    box = page.locator("#locus-input")
    times = []
    for locus in loci[1:]:
        box.fill(locus)
        box.press("Enter")
        start = parse_locus(locus)[1]
        times.append(since_action(page, f"{GRAPH.format('locus-graph')}.layout.meta.start "
                                        f"=== {start}"))
        page.wait_for_load_state("networkidle")  # the URL update after the draw
    return times


def first_paints(page, url: str, tracks: list[str], repeats: int) -> dict[str, list[float]]:
    """Seconds from each page's navigation start to its first painted content."""
    paths = {"embeddings": "/?axis=biosamples&method=umap&color=type",
             "locus": f"/locus?tracks={','.join(tracks)}", "design": "/design"}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, path in paths.items():
            page.goto(url + path, wait_until="commit")
            times[name].append(wait(page, READY[name]) / 1000)
            page.wait_for_load_state("networkidle")
    return times


def picker_filter(page, url: str, tracks: list[str], repeats: int) -> list[float]:
    """Seconds from a click on a biosample-type facet to the repainted matrix."""
    page.goto(f"{url}/locus?tracks={','.join(tracks)}")
    wait(page, READY["locus"])
    page.wait_for_load_state("networkidle")
    facets = page.locator("#picker-row-values input")
    n = facets.count()
    times = []
    for i in range(repeats):
        rows = page.evaluate(f"{GRAPH.format('locus-picker')}.layout.meta.n_rows")
        facets.nth((i // 2) % n).click()  # check a type, uncheck it, check the next, ...
        times.append(since_action(
            page, f"{GRAPH.format('locus-picker')}.layout.meta.n_rows !== {rows}"))
        page.wait_for_load_state("networkidle")
    return times


def map_recolour(page, url: str, repeats: int) -> list[float]:
    """Seconds from choosing a colour for the biosample map to the repainted map."""
    page.goto(f"{url}/?axis=biosamples&method=umap&color=type")
    wait(page, READY["embeddings"])
    page.wait_for_load_state("networkidle")
    times = []
    for i in range(repeats):
        label, name = (("n observed", "n_observed") if i % 2 == 0 else ("type", "type"))
        page.click("#emb-color")
        page.locator(".dash-dropdown-content").get_by_text(label, exact=True).click()
        times.append(since_action(
            page, f"{GRAPH.format('emb-graph')}.layout.legend.title.text === '{name}' || "
                  f"{GRAPH.format('emb-graph')}.data[0].name === '{name}'"))
        page.wait_for_load_state("networkidle")
    return times


def lasso(page, url: str, n_points: int, repeats: int) -> list[float]:
    """Seconds from the release of a lasso to the painted selection count and links."""
    page.goto(f"{url}/?axis=biosamples&method=umap&color=type")
    wait(page, READY["embeddings"])
    page.wait_for_load_state("networkidle")
    count = "document.querySelector('#emb-selection-count').textContent"
    times = []
    for i in range(repeats):
        area = page.locator("#emb-graph .nsewdrag").first.bounding_box()
        # a different polygon each time, around the middle
        f = 0.15 + 0.1 * (i % 3)
        cx, cy = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
        w, h = area["width"] * f, area["height"] * f
        page.mouse.move(cx - w, cy - h)
        page.mouse.down()
        for x, y in ((cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h), (cx - w, cy - h)):
            page.mouse.move(x, y, steps=4)
        page.mouse.up()
        times.append(since_action(page, f"/ of {n_points:,} selected$/.test({count}) && "
                                        "document.querySelector('#emb-to-locus')"))
        page.wait_for_load_state("networkidle")
        page.mouse.dblclick(cx, area["y"] + 5)  # clears the selection
        wait(page, f"/none selected$/.test({count})")
        page.wait_for_load_state("networkidle")
    return times


#: The measures by name, in the order they run (``--only``).
MEASURES = ("first-paints", "picker", "recolour", "lasso", "locus", "locus-40",
            "locus-40-heights")
#: The own heights of ``locus-40-heights``, by a track's place (the others compact).
MIXED = {0: "tall", 2: "collapsed"}


def measure(url: str, ws: Workspace, repeats: int, which: set[str]) -> list[tuple[str, list]]:
    """(what, seconds) of each measure named in ``which`` (of :data:`MEASURES`)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        sys.exit("chromium is not installed (apt-get install -y chromium)")
    loci = windows(ws, repeats + 1)
    ten = ten_tracks(ws)
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS,
                                    headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.add_init_script(TIMING)
        if "first-paints" in which:
            for name, times in first_paints(page, url, ten, max(repeats // 3, 3)).items():
                rows.append((f"first paint: {name}", times))
        if "picker" in which:
            rows.append(("picker filter (facet click)", picker_filter(page, url, ten, repeats)))
        if "recolour" in which:
            rows.append(("map recolour (biosamples)", map_recolour(page, url, repeats)))
        if "lasso" in which:
            rows.append(("lasso (biosamples)", lasso(page, url, len(ws.biosamples), repeats)))
        if "locus" in which:
            rows.append((f"locus redraw, {len(ten)} tracks (Enter)",
                         locus_redraw(page, url, ten, loci)))
        if "locus-40" in which:
            many = best_covered(ws, MAX_TRACKS // 4, 4)
            rows.append((f"locus redraw, {len(many)} tracks, compact (Enter)",
                         locus_redraw(page, url, many, loci, "&height=compact")))
        if "locus-40-heights" in which:
            many = best_covered(ws, MAX_TRACKS // 4, 4)
            own = {t: MIXED[i % 5] for i, t in enumerate(many) if i % 5 in MIXED}
            rows.append((f"locus redraw, {len(many)} tracks, compact, {len(own)} of their own "
                         "height (Enter)",
                         locus_redraw(page, url, many, loci, "&height=compact&heights="
                                      + ",".join(format_heights(own, many)))))
        browser.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--repeats", type=int, default=30)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", dest="everything",
                       help="first paints, picker filter, map recolour, lasso and 40 tracks")
    which.add_argument("--only", nargs="+", choices=MEASURES, metavar="MEASURE",
                       help=f"only these measures, of {', '.join(MEASURES)}")
    args = parser.parse_args(argv)
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    ws = Workspace(args.workspace)
    app = create_app(ws)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    load = os.getloadavg()[0]
    try:
        rows = measure(f"http://127.0.0.1:{server.server_port}", ws, args.repeats,
                       set(MEASURES if args.everything else args.only or ["locus"]))
    finally:
        server.shutdown()
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); 1-minute load average "
          f"{load:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"{ws.title}: {len(ws.biosamples):,} biosamples x {len(ws.assays):,} assays; "
          f"the app from {REPO}; Chromium (headless) on 127.0.0.1, 100 kb windows:")
    print("| measure | n | p50 (ms) | p95 (ms) | max (ms) |")
    print("|---|---:|---:|---:|---:|")
    for what, times in rows:
        t = np.asarray(times) * 1000
        p50, p95 = np.percentile(t, [50, 95])
        print(f"| {what} | {len(t)} | {p50:.0f} | {p95:.0f} | {t.max():.0f} |")


if __name__ == "__main__":
    main()
