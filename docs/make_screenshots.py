"""Screenshots of the app's pages for the README and the docs, taken in headless Chromium.

Usage::

    python docs/make_screenshots.py WORKSPACE [--out docs/screenshots]
    python docs/make_screenshots.py ENCODE_WORKSPACE --views encode

WORKSPACE is a built workspace (``avocado demo`` makes one). The pilot's views write
embeddings.png, locus.png and design.png; the ENCODE layout's (a workspace of
``avocado demo WS --source encode-layout``) write encode-embeddings.png (the 400 biosamples by
type), encode-assays.png (the 84 assays by kind), encode-locus.png (the track picker's matrix
above ten tracks), encode-locus-tracks.png (24 tracks grouped by assay, compact, the matrix
folded) and encode-design.png. Needs Debian's ``chromium`` (see the project's TESTING notes).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run"]
#: The demo's held-out (E003 H3K27me3, E116 H3K4me3), trained-on and never-observed
#: (E003 H3K36me3, E116 H3K9me3) experiments, with the uncertainty band.
LOCUS = ("/locus?locus=chr1:151,200,000-151,300,000&tracks="
         "E003|H3K27me3,E003|H3K4me3,E003|H3K36me3,E116|H3K4me3,E116|H3K27me3,E116|H3K9me3")
#: Six biosamples of the ENCODE layout (cell lines, a tissue, primary cells) at four assays.
ENCODE_TRACKS = ",".join(f"{b}|{a}" for a in ("ChIP-seq_H3K4me3_signal_p-value",
                                               "ChIP-seq_H3K27ac_signal_p-value",
                                               "ChIP-seq_CTCF_signal_p-value",
                                               "DNase-seq_read-depth_normalized_signal")
                         for b in ("J004", "J010", "J040", "J041", "J061", "J200"))


def design_run(page) -> None:
    """Pick biosamples, then positions, on the design page."""
    page.click("#design-run")
    page.wait_for_selector("#design-summary b", timeout=120_000)
    page.fill("#design-pos-k", "15")
    page.click("#design-pos-run")
    page.wait_for_selector("#design-pos-summary b", timeout=120_000)


def design_biosamples(page) -> None:
    """Pick biosamples on the design page."""
    page.click("#design-run")
    page.wait_for_selector("#design-summary b", timeout=120_000)


def computed_projection(page) -> None:
    """Compute the map when the workspace has not yet (a fresh ``make demo`` computes the
    genome's UMAP on demand), then wait for it to be drawn."""
    button = page.locator("#emb-compute")
    if button.is_visible():
        button.click()
    page.wait_for_selector("#emb-graph .legendtext", timeout=1_800_000)


def fold_matrix(page) -> None:
    """Fold the track matrix away (the tracks take the page)."""
    page.click("#picker-details > summary")


#: name -> (address, what to wait for, what to do then, whole page)
VIEWS = {
    "pilot": {
        "embeddings": ("/?axis=genome&method=umap&res=all&color=class",
                       "#emb-graph .legendtext, #emb-compute:not([hidden])", computed_projection,
                       False),
        "locus": (LOCUS, "#locus-metrics tbody tr", None, False),
        "design": ("/design?assay=H3K27me3&k=1", "#design-run", design_run, True),
    },
    "encode": {
        "encode-embeddings": ("/?axis=biosamples&method=umap&color=type",
                              "#emb-graph .legendtext", None, False),
        "encode-assays": ("/?axis=assays&method=umap&color=kind", "#emb-graph .legendtext",
                          None, False),
        "encode-locus": ("/locus?locus=chr1:1,000,000-1,100,000", "#locus-metrics tbody tr", None,
                         False),
        "encode-locus-tracks": (f"/locus?locus=chr1:1,000,000-1,100,000&tracks={ENCODE_TRACKS}"
                                "&height=compact&order=assay", "#locus-metrics tbody tr",
                                fold_matrix, True),
        "encode-design": ("/design?assay=ChIP-seq_H3K27ac_signal_p-value&k=8", "#design-run",
                          design_biosamples, True),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace")
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--views", choices=sorted(VIEWS), default="pilot",
                        help="the pilot's pages, or the ENCODE layout's")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from dashboard.app import close_app, create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = create_app(args.workspace)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for name, (path, ready, then, whole) in VIEWS[args.views].items():
                page.goto(url + path)
                page.wait_for_selector(ready, timeout=120_000)
                page.wait_for_load_state("networkidle")
                if then is not None:
                    then(page)
                    page.wait_for_load_state("networkidle")
                if whole:
                    page.add_style_tag(content=".topbar { position: static; }")
                page.screenshot(path=str(out / f"{name}.png"), full_page=whole)
                print(out / f"{name}.png")
            browser.close()
    finally:
        server.shutdown()
        close_app(app)  # its job launcher, before the interpreter's own clean-up


if __name__ == "__main__":
    main()
