"""Server-side time of moving a track on the locus page: 40 tracks on a 100 kb window.

One window drawn once (the page's default, 100 kb), then repeated moves of a random track (to
the top, up or down), each timed as the browser calls the page's callbacks (POST
/_dash-update-component through Flask's test client):

* ``move``: the track list's button (``dashboard.pages.locus_order``): the new chosen order;
* ``list``: the track list drawn again in that order;
* ``draw, rows moved``: the plot's callback for the new order: the figure's rows move by
  their domains (a Patch), nothing is read again;
* ``draw anew``: the same callback drawing the figure from the tracks (what a change of the
  tracks did before rows could move, and still does when tracks are added or removed).

The ratio of the two draws' medians is the point; the milliseconds depend on the CPU (named).

Usage::

    python benchmarks/bench_reorder.py WORKSPACE [--tracks 40] [--repeats 30]

WORKSPACE is a workspace built by ``build_workspace`` (e.g. the ENCODE layout's,
``avocado demo --source encode-layout``); without one, the script builds the pilot workspace
with the tests' tiny model into a temporary folder (25 tracks at most).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_locus import locus_payload, open_or_build_workspace  # noqa: E402
from machine import cpu_model  # noqa: E402

from dashboard.app import create_app  # noqa: E402
from dashboard.pages.locus import default_locus  # noqa: E402
from dashboard.pages.locus_order import BUTTON, BUTTONS  # noqa: E402
from dashboard.track_order import MOVES, move_track  # noqa: E402


def send(client, payload: dict) -> tuple[dict, int]:
    """A callback's response and its size in bytes (an error raises)."""
    r = client.post("/_dash-update-component", json=payload)
    if r.status_code != 200:
        raise RuntimeError(f"callback failed: HTTP {r.status_code} {r.data[:300]!r}")
    body = json.loads(r.data)["response"]
    if body.get("locus-alert", {}).get("children"):
        raise RuntimeError(f"callback alerted: {body['locus-alert']['children']}")
    return body, len(r.data)


def callback_key(app, *outputs: str) -> str:
    """The registered callback whose outputs include ``outputs`` ("id.prop")."""
    return next(k for k in app.callback_map if all(o in k for o in outputs))


def payload(key: str, inputs: list, state: list, changed: list[str]) -> dict:
    outputs = [part.rsplit(".", 1) for part in key.strip(".").split("...")]
    return {"output": key, "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": inputs, "state": state, "changedPropIds": changed}


def move_payload(key: str, tracks: list[str], track: str, where: str) -> dict:
    """The track list's buttons, ``where`` of ``track`` pressed."""
    buttons = [{"id": {"type": BUTTON, "track": t, "where": w}, "property": "n_clicks",
                "value": 1 if (t, w) == (track, where) else None}
               for t in tracks for w in BUTTONS]
    pressed = json.dumps({"type": BUTTON, "track": track, "where": where}, sort_keys=True,
                         separators=(",", ":"))
    state = [{"id": "locus-tracks", "property": "data", "value": [t.split("|") for t in tracks]},
             {"id": "locus-order", "property": "value", "value": "chosen"}]
    return payload(key, [buttons], state, [f"{pressed}.n_clicks"])


def list_payload(key: str, tracks: list[str], focus: dict | None) -> dict:
    """The track list drawn for ``tracks`` after a move (``focus``: the button pressed)."""
    inputs = [{"id": "locus-tracks", "property": "data", "value": [t.split("|") for t in tracks]},
              {"id": "locus-order", "property": "value", "value": "chosen"}]
    state = [{"id": "locus-order-focus", "property": "data", "value": focus}]
    return payload(key, inputs, state, ["locus-tracks.data", "locus-order.value"])


def row(name: str, seconds: list[float], sizes: list[int]) -> str:
    ms = np.asarray(seconds) * 1000
    return (f"| {name} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f} | "
            f"{ms.max():.1f} | {np.median(sizes) / 1024:,.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace", nargs="?", help="workspace folder (default: build one)")
    parser.add_argument("--tracks", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    ws = open_or_build_workspace(args.workspace, "bench-reorder-")
    # the best-covered biosamples' most measured assays: observed and imputed tracks
    status = ws.status()
    measured = status.isin(["observed", "held out"])
    bios = measured.sum(axis=1).sort_values(ascending=False, kind="stable").index
    assays = measured.sum(axis=0).sort_values(ascending=False, kind="stable").index[:5]
    tracks = [f"{b}|{a}" for b in bios for a in assays][:args.tracks]
    text = default_locus(ws)
    app = create_app(ws)
    client = app.server.test_client()
    move_key = callback_key(app, "locus-order-focus.data", "locus-tracks.data")
    list_key = callback_key(app, "locus-order-list.children")

    def draw(order: list[str], changed: tuple[str, ...], current: dict | None):
        return send(client, locus_payload(text, [t.split("|") for t in order], changed,
                                          current, height="compact"))

    first, _ = draw(tracks, ("locus-go.n_clicks",), None)  # also the warm-up
    current = first["locus-current"]["data"]
    draw(tracks, ("locus-go.n_clicks",), None)
    send(client, move_payload(move_key, tracks, tracks[1], "up"))
    send(client, list_payload(list_key, tracks, None))
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {k: [] for k in ("move", "list", "moved", "anew")}
    sizes: dict[str, list[int]] = {k: [] for k in times}
    order = list(tracks)
    for _ in range(args.repeats):
        track = order[int(rng.integers(1, len(order) - 1))]  # every move changes the order
        where = str(rng.choice(list(MOVES)))
        t0 = time.perf_counter()
        body, n = send(client, move_payload(move_key, order, track, where))
        times["move"].append(time.perf_counter() - t0)
        sizes["move"].append(n)
        moved = [f"{b}|{a}" for b, a in body["locus-tracks"]["data"]]
        assert moved == move_track(order, order.index(track), where)
        order = moved
        t0 = time.perf_counter()
        _, n = send(client, list_payload(list_key, order, {"track": track, "where": where}))
        times["list"].append(time.perf_counter() - t0)
        sizes["list"].append(n)
        changed = ("locus-tracks.data", "locus-order.value")
        for kind, state in (("moved", current), ("anew", None)):
            t0 = time.perf_counter()
            body, n = draw(order, changed, state)
            times[kind].append(time.perf_counter() - t0)
            sizes[kind].append(n)
            patched = "__dash_patch_update" in body["locus-graph"]["figure"]
            assert patched == (kind == "moved"), kind
    print(f"workspace {ws.path} · {len(tracks)} tracks · {text} (compact rows) · "
          f"{args.repeats} moves · {cpu_model()} ({platform.machine()})")
    print("| callback | p50 (ms) | p95 (ms) | max (ms) | response (KB) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(row("move (track list button)", times["move"], sizes["move"]))
    print(row("track list drawn again", times["list"], sizes["list"]))
    print(row("plot: rows moved (Patch)", times["moved"], sizes["moved"]))
    print(row("plot: drawn anew (before)", times["anew"], sizes["anew"]))
    ratio = np.median(times["anew"]) / np.median(times["moved"])
    print(f"rows moved vs drawn anew: {ratio:.0f}x faster at the median, "
          f"{np.median(sizes['anew']) / np.median(sizes['moved']):.0f}x smaller response")


if __name__ == "__main__":
    main()
