"""WSGI entry point for gunicorn: ``AVOCADO_WORKSPACE=path gunicorn dashboard.wsgi:server``.

The workspace folder comes from the environment variable ``AVOCADO_WORKSPACE``. The job store
of the background callbacks, which every worker must share, is ``AVOCADO_CACHE_DIR`` when set,
else the workspace's ``.cache/background`` folder: each worker derives the same folder. Each
worker keeps its uploads in a temporary folder of its own, removed when it exits. The app never
runs in debug mode.
"""

from __future__ import annotations

import os
from pathlib import Path

from avocado_core.errors import AvocadoValueError

from .app import create_app

__all__ = ["app", "server"]


def _workspace_path() -> Path:
    path = os.environ.get("AVOCADO_WORKSPACE")
    if not path:
        raise AvocadoValueError(
            "set AVOCADO_WORKSPACE to a workspace folder (one made by `avocado demo`), e.g. "
            "AVOCADO_WORKSPACE=workspace gunicorn dashboard.wsgi:server")
    return Path(path)


_path = _workspace_path()
_cache = os.environ.get("AVOCADO_CACHE_DIR") or str(_path / ".cache" / "background")
Path(_cache).mkdir(parents=True, exist_ok=True)
app = create_app(_path, background_dir=_cache)
server = app.server
