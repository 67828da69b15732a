"""Browser tests: Debian's Chromium driven by Playwright, the app served by werkzeug in a thread."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from app_workspaces import (  # noqa: F401  (fixtures)
    encode_layout_workspace,
    pilot_workspace,
    synthetic_workspace,
)

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Launch Debian's Chromium (Playwright cannot download browsers on these machines)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_FLAGS,
            "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900},
            "accept_downloads": True}


@contextmanager
def serving(app):
    """Serve a Dash app on 127.0.0.1:<free port> in a daemon thread; yields the base URL."""
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving_workspace(workspace, tmp_path_factory, name: str):
    """The app of a workspace served as :func:`serving` does, its job store in a temp dir."""
    from dashboard.app import create_app

    app = create_app(workspace, background_dir=str(tmp_path_factory.mktemp(f"bg-{name}")))
    with serving(app) as url:
        yield url


@pytest.fixture(scope="session")
def pilot_url(pilot_workspace, tmp_path_factory):  # noqa: F811
    with serving_workspace(pilot_workspace, tmp_path_factory, "pilot") as url:
        yield url


@pytest.fixture(scope="session")
def synthetic_url(synthetic_workspace, tmp_path_factory):  # noqa: F811
    with serving_workspace(synthetic_workspace, tmp_path_factory, "synthetic") as url:
        yield url


@pytest.fixture(scope="session")
def encode_url(encode_layout_workspace, tmp_path_factory):  # noqa: F811
    with serving_workspace(encode_layout_workspace, tmp_path_factory, "encode") as url:
        yield url


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    """Where the tests save page screenshots: a temp dir, or AVOCADO_SCREENSHOTS (e.g.
    docs/screenshots; the README's come from docs/make_screenshots.py on a demo workspace)."""
    wanted = os.environ.get("AVOCADO_SCREENSHOTS")
    path = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
