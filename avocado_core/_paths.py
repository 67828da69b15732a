"""File names built from user data, and paths read from catalogs and configs.

Two rules keep every read and write inside the folder it belongs to:

- a file name built from a name the user chose (a biosample, an assay) goes through
  :func:`file_stem`, which escapes every character that could leave the folder or collide;
- a relative path read from a file (a store's catalog, a model's config) goes through
  :func:`inside`, which refuses one that leads outside its folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from .errors import AvocadoValueError

__all__ = ["file_stem", "inside", "writable_dir"]


def _escape(name: str) -> str:
    # "/" and "\" and "." are escaped, so ".." and "a/b" cannot name another folder.
    return quote(str(name), safe="-_+@=,()[]").replace(".", "%2E")


def file_stem(*names: str) -> str:
    """A file-system-safe, collision-free stem: the escaped names joined by ``.``.

    Parameters
    ----------
    *names: str
        E.g. a biosample and an assay.

    Returns
    -------
    str
        ``"E003.H3K4me3"`` for plain names; ``"%2E%2E%2Fpwn.H3K4me3"`` for ``"../pwn"``.
    """
    return ".".join(_escape(n) for n in names)


def inside(folder: str | os.PathLike, relative: object, what: str) -> Path:
    """``folder / relative``, refusing a path that leads outside ``folder`` (``..``, absolute).

    Parameters
    ----------
    folder: path-like
        The folder the file must be in (a store, a model directory).
    relative: object
        The path as read from a catalog or config.
    what: str
        What names the path, for the error (e.g. ``"file of catalog.tsv row E003/H3K4me3"``).

    Returns
    -------
    pathlib.Path
        The normalised path within ``folder``.

    Raises
    ------
    AvocadoValueError
        When ``relative`` is not a non-empty relative path inside ``folder``.
    """
    folder = Path(folder)
    if not isinstance(relative, str) or not relative.strip():
        raise AvocadoValueError(f"{what} must be a file name, got {relative!r}")
    # Checked on the name itself, not on resolved links: a folder the owner links elsewhere
    # (tracks/ on another disk) stays usable; "..", "/" and "\0" tricks do not.
    normal = os.path.normpath(relative)
    if "\0" in relative or os.path.isabs(normal) or normal == ".." \
            or normal.startswith(".." + os.sep) or normal == ".":
        raise AvocadoValueError(
            f"{what} is {relative!r}, which is outside {folder}; refusing to read it"
        )
    return folder / normal


def writable_dir(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` if missing and check that a file can be written into it.

    Call it before long work whose result goes there (training, imputation, export), so that
    an unwritable folder fails at once instead of after the work.

    Parameters
    ----------
    folder: path-like
    what: str
        What the folder is for, for the error (e.g. ``"model folder"``).

    Returns
    -------
    pathlib.Path
        The folder, ready for writing.

    Raises
    ------
    AvocadoValueError
        When the folder cannot be created or written.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".avocado-write-check-"):
            pass
    except OSError as exc:
        raise AvocadoValueError(
            f"the {what} {folder} cannot be written ({exc.strerror or exc})") from None
    return folder
