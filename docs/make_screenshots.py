"""Screenshots of the app's three pages for the README, taken in headless Chromium.

Usage::

    python docs/make_screenshots.py WORKSPACE [--out docs/screenshots]

WORKSPACE is a built workspace (``avocado demo`` makes one). Writes embeddings.png, locus.png
and design.png. Needs Debian's ``chromium`` (see the project's TESTING notes).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace")
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from dashboard.app import create_app

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
            page.goto(f"{url}/?axis=genome&method=umap&res=all&color=class")
            page.wait_for_selector("#emb-graph .legendtext", timeout=120_000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / "embeddings.png"))
            page.goto(url + LOCUS)
            page.wait_for_selector("#locus-metrics tr", timeout=60_000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / "locus.png"))
            page.goto(f"{url}/design?assay=H3K27me3&k=1")
            page.wait_for_load_state("networkidle")
            page.click("#design-run")
            page.wait_for_selector("#design-summary b", timeout=120_000)
            page.fill("#design-pos-k", "15")
            page.click("#design-pos-run")
            page.wait_for_selector("#design-pos-summary b", timeout=120_000)
            page.wait_for_load_state("networkidle")
            page.add_style_tag(content=".topbar { position: static; }")  # full-page capture
            page.screenshot(path=str(out / "design.png"), full_page=True)
            browser.close()
    finally:
        server.shutdown()
    for name in ("embeddings", "locus", "design"):
        print(out / f"{name}.png")


if __name__ == "__main__":
    main()
