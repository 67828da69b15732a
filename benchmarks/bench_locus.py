"""Server-side time of the locus page's draw callback: a 100 kb window with 10 tracks.

Two timings over repeated calls on windows spread across a pilot region (so no call reads the
same bins as the one before):

* ``view``: ``dashboard.pages.locus.locus_view`` (read 10 observed + 10 imputed windows,
  per-window MSE / Pearson, gene look-up, re-binning, figure building);
* ``http``: the whole callback as the browser calls it (POST /_dash-update-component through
  Flask's test client): the above plus the metrics table and JSON serialisation.

Target: p95 of ``http`` below 300 ms.

Usage::

    python benchmarks/bench_locus.py WORKSPACE [--repeats 40]

WORKSPACE is a workspace built by ``build_workspace`` (e.g. ``avocado demo``'s); without one,
the script builds the pilot workspace with the tests' tiny model into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avocado_core.regions import format_locus  # noqa: E402
from avocado_core.workspace import Workspace  # noqa: E402
from avocado_core.workspace_build import build_workspace  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.pages import locus  # noqa: E402

WINDOW = 100_000


def windows(ws: Workspace, n: int) -> list[str]:
    """n 100 kb windows spread over the first region that is long enough."""
    regions = ws.store.regions
    rows = regions.intervals
    row = rows[rows["n_bins"] * regions.bin_size >= 2 * WINDOW].iloc[0]
    lo = int(row["first_bin_start"])
    hi = lo + int(row["n_bins"]) * regions.bin_size - WINDOW
    starts = np.linspace(lo, hi, n).astype(int) // 25 * 25
    return [format_locus(str(row["chrom"]), s, s + WINDOW) for s in starts]


def locus_payload(text: str, tracks: list[list[str]]) -> dict:
    """The body of the POST /_dash-update-component the browser sends for "Go" on a locus."""
    outputs = ["locus-graph.figure", "locus-current.data", "locus-input.value",
               "locus-span.children", "locus-metrics.children", "locus-url.data",
               "locus-alert.children"]
    inputs = [("locus-go", "n_clicks", 1), ("locus-input", "n_submit", None),
              ("locus-in", "n_clicks", None), ("locus-out", "n_clicks", None),
              ("locus-left", "n_clicks", None), ("locus-right", "n_clicks", None),
              ("locus-gene-click", "data", None), ("locus-drag", "data", None),
              ("locus-tracks", "data", tracks), ("locus-sel-region", "value", None),
              ("locus-height", "value", "normal"), ("locus-order", "value", "chosen"),
              ("locus-scale", "value", "assay"), ("locus-heights", "data", {})]
    payload = {
        "output": ".." + "...".join(outputs) + "..",
        "outputs": [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in outputs],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": "locus-input", "property": "value", "value": text},
                  {"id": "locus-current", "property": "data", "value": None},
                  {"id": "locus-selection", "property": "data", "value": None}],
        "changedPropIds": ["locus-go.n_clicks"],
    }
    return payload


def post(client, text: str, tracks: list[list[str]]) -> dict:
    r = client.post("/_dash-update-component", json=locus_payload(text, tracks))
    if r.status_code != 200:
        raise RuntimeError(f"callback failed: HTTP {r.status_code} {r.data[:300]!r}")
    body = json.loads(r.data)["response"]
    if body.get("locus-alert", {}).get("children"):
        raise RuntimeError(f"callback alerted: {body['locus-alert']['children']}")
    return body


def open_or_build_workspace(path: str | None, prefix: str) -> Workspace:
    """The workspace at ``path``, or a pilot workspace with a tiny model built in a temp dir."""
    if path:
        return Workspace(path)
    sys.path.insert(0, str(REPO / "tests"))
    from app_workspaces import PILOT_TEST_BUILD

    built = Path(tempfile.mkdtemp(prefix=prefix)) / "pilot"
    print(f"building a pilot workspace with a tiny model in {built} ...", flush=True)
    return build_workspace(built, "roadmap-pilot", progress=False, **PILOT_TEST_BUILD)


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return (f"p50 {np.percentile(ms, 50):7.1f} ms   p95 {np.percentile(ms, 95):7.1f} ms   "
            f"max {ms.max():7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", nargs="?", help="workspace folder (default: build one)")
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    ws = open_or_build_workspace(args.workspace, "bench-locus-")
    experiments = [(b, a) for b in ws.biosamples[:2] for a in ws.assays[:5]]
    if len(experiments) < 10:
        experiments = [(b, a) for b in ws.biosamples for a in ws.assays][:10]
    loci = windows(ws, args.repeats)
    app = create_app(ws)
    client = app.server.test_client()

    # warm-up: imports, memory maps, annotations, first figure
    locus.locus_view(ws, loci[0], experiments)
    post(client, loci[0], [list(e) for e in experiments])

    view, http = [], []
    for text in loci:
        t0 = time.perf_counter()
        fig, tracks, _ = locus.locus_view(ws, text, experiments)
        view.append(time.perf_counter() - t0)
        assert len(tracks) == 10 and fig["layout"]["meta"]["n_tracks"] == 10
    for text in loci:
        t0 = time.perf_counter()
        body = post(client, text, [list(e) for e in experiments])
        http.append(time.perf_counter() - t0)
        assert body["locus-metrics"]["children"].count("<tr><td>") == 10
    print(f"workspace {ws.path} · {len(experiments)} tracks (observed + imputed each) · "
          f"{WINDOW // 1000} kb windows · {len(loci)} calls each")
    print(f"view  {percentiles(view)}")
    print(f"http  {percentiles(http)}")
    target = np.percentile(np.asarray(http) * 1000, 95) < 300
    print(f"target p95 < 300 ms: {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
