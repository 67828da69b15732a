"""Atomic file writes: every file and folder the library writes goes through here.

A file is written to a temporary name beside its target and renamed over it (``os.replace``)
once complete and flushed to disk, so a reader sees the old content or the new, never half of
it, and a crash or a full disk leaves the target as it was. Three guarantees hold for every
write:

* **Permissions as ``open()`` gives them.** Temporary files are created with mode ``0o666`` and
  folders with ``0o777``, both masked by the process's umask, so a workspace built under umask
  022 is readable by the other users of a shared server (``tempfile.mkstemp`` would make them
  0600 / 0700 whatever the umask).
* **A full disk says so.** A write that runs out of space raises
  :class:`~avocado_core.errors.AvocadoDiskFullError` naming the target, the bytes it needed and
  the bytes free, instead of numpy's "40000 requested and 4064 written"; when the size is known
  beforehand, the check comes before anything is written.
* **No leftovers.** Temporary names carry the host and process id of their writer
  (``.<name>.avocado-tmp-<host>-<pid>-<random>``); a write that fails removes its own, and
  :func:`remove_stale` removes those of writers that were killed (a dead process on this host)
  when a store or model folder is next written. A live writer's file is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import AvocadoDiskFullError

__all__ = [
    "TEMP_MARK",
    "temp_path",
    "atomic_file",
    "atomic_path",
    "atomic_dir",
    "write_text",
    "write_bytes",
    "write_png",
    "make_dir",
    "replace_dir",
    "check_space",
    "format_bytes",
    "remove_stale",
]

#: What every temporary name contains (and nothing else the library writes).
TEMP_MARK = ".avocado-tmp-"
_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname() or "localhost")
_TEMP_RE = re.compile(
    r"^\.(?P<name>.+)" + re.escape(TEMP_MARK)
    + r"(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[0-9a-f]{8}$"
)
#: numpy's message for a short write (``ndarray.tofile``, ``np.save``) has no errno.
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


def temp_path(target: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``target``: ``.<name>.avocado-tmp-<host>-<pid>-<random>``."""
    target = Path(target)
    return target.with_name(
        f".{target.name}{TEMP_MARK}{_HOST}-{os.getpid()}-{os.urandom(4).hex()}"
    )


def format_bytes(n: int | float) -> str:
    """``123456789`` -> ``"117.7 MiB"``."""
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n):,} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _free(directory: Path) -> int:
    return int(shutil.disk_usage(directory).free)


def _disk_full(target: Path, needed: int | None) -> AvocadoDiskFullError:
    free = _free(target.parent)
    need = f"{format_bytes(needed)} needed, " if needed is not None else ""
    return AvocadoDiskFullError(
        f"no space left on device writing {target}: {need}{format_bytes(free)} free in "
        f"{target.parent}; free some space or write elsewhere",
        needed=needed, free=free, path=target,
    )


def check_space(target: str | os.PathLike, needed: int) -> None:
    """Raise :class:`AvocadoDiskFullError` now when ``needed`` bytes do not fit beside ``target``.

    Parameters
    ----------
    target: path-like
        The file to be written (its folder must exist).
    needed: int
        Bytes the write will take.
    """
    target = Path(target)
    if needed > _free(target.parent):
        raise _disk_full(target, needed)


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return bool(_SHORT_WRITE.search(text)) or "No space left on device" in text \
        or "StorageFull" in text


def _needed(exc: BaseException, size: int | None, tmp: Path) -> int | None:
    """Bytes the failed write needed: the size given, else the most the error shows."""
    if size is not None:
        return int(size)
    match = _SHORT_WRITE.search(str(exc))
    written = tmp.stat().st_size if tmp.exists() else 0
    if match:
        return written - int(match.group(2)) + int(match.group(1))
    return None


def _create(path: Path) -> int:
    """Create a new file as ``open(path, "x")`` would: mode 0o666 less the umask."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, size: int | None = None) -> Iterator[Path]:
    """A temporary file beside ``target`` to write by name; renamed over ``target`` on success.

    For writers that take a file name (safetensors, pyBigWig, matplotlib). The file exists
    (empty, with the umask's permissions) when the block starts; at its end it gets those
    permissions back if the writer replaced it (safetensors writes 0600), is fsync'ed and
    renamed over ``target``. On any error it is removed and ``target`` is left as it was.

    Parameters
    ----------
    target: path-like
        The file to write; its folder is created if missing.
    size: int or None, optional
        Bytes the write will take, when known: checked against the free space first, and
        named in the error if the disk fills up. Default is None.

    Yields
    ------
    pathlib.Path
        The temporary file.

    Raises
    ------
    AvocadoDiskFullError
        When the disk is (or would be) full.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if size is not None:
        check_space(target, size)
    tmp = temp_path(target)
    os.close(_create(tmp))
    mode = os.stat(tmp).st_mode & 0o7777  # what the umask gives a new file
    try:
        try:
            yield tmp
            if os.stat(tmp).st_mode & 0o7777 != mode:  # a writer that made its own (safetensors)
                os.chmod(tmp, mode)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except Exception as exc:
            if _is_disk_full(exc):
                raise _disk_full(target, _needed(exc, size, tmp)) from exc
            raise
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_file(
    target: str | os.PathLike, mode: str = "wb", *, size: int | None = None,
    encoding: str | None = None,
) -> Iterator[IO[Any]]:
    """An open temporary file beside ``target``, renamed over it when the block ends.

    Parameters
    ----------
    target: path-like
        The file to write; its folder is created if missing.
    mode: {"wb", "w"}, optional
        Binary or text. Default is "wb".
    size: int or None, optional
        Bytes the write will take, when known (see :func:`atomic_path`). Default is None.
    encoding: str or None, optional
        Of a text file. Default is None: UTF-8.

    Yields
    ------
    file object

    Raises
    ------
    AvocadoDiskFullError
        When the disk is (or would be) full.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode {mode!r}; expected 'wb' or 'w'")
    with atomic_path(target, size=size) as tmp:
        kwargs = {} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": ""}
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically; returns ``target`` as a Path."""
    data = text.encode("utf-8")
    return write_bytes(target, data)


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target`` as a Path."""
    with atomic_file(target, "wb", size=len(data)) as handle:
        handle.write(data)
    return Path(target)


def write_png(fig: Any, target: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure to ``target`` as PNG atomically, and close it (also when the
    write fails); returns ``target`` as a Path."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return Path(target)


def make_dir(path: str | os.PathLike) -> Path:
    """Create a folder (and its parents) as ``os.makedirs`` does: 0o777 less the umask."""
    path = Path(path)
    path.mkdir(mode=0o777, parents=True, exist_ok=True)
    return path


def replace_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move the finished folder ``tmp`` to ``target``; an existing ``target`` is replaced.

    The old folder is first renamed to a temporary name (removed afterwards, or by
    :func:`remove_stale` if this process dies in between), so ``target`` is never half made.
    """
    tmp, target = Path(tmp), Path(target)
    if target.exists():
        old = temp_path(target)
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """A temporary folder beside ``target``, moved to ``target`` when the block ends.

    The folder is made with mode 0o777 less the umask. On success it replaces ``target``
    (:func:`replace_dir`); on any error it is removed and ``target`` is left as it was.

    Parameters
    ----------
    target: path-like
    replace: bool, optional
        Replace an existing ``target``. Default is True. With False, an empty ``target``
        folder is taken over and any other raises ``OSError`` (another process made it first).

    Yields
    ------
    pathlib.Path
        The temporary folder.

    Raises
    ------
    AvocadoDiskFullError
        When the disk fills up while the folder is written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    tmp.mkdir(mode=0o777)
    try:
        try:
            yield tmp
        except Exception as exc:
            if _is_disk_full(exc):
                raise _disk_full(target, None) from exc
            raise
        if replace:
            replace_dir(tmp, target)
        else:
            os.rename(tmp, target)  # over an empty folder only, on POSIX
            _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale(directory: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporary files and folders of killed writers in ``directory``.

    Only names made by :func:`temp_path` whose writer ran on this host and is no longer
    running are removed; a live writer's file, another host's (whose process cannot be
    checked from here) and every other file are kept.

    Parameters
    ----------
    directory: path-like
    name: str or None, optional
        Only the temporaries of this target name. Default is None: all.

    Returns
    -------
    list of pathlib.Path
        What was removed.
    """
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = _TEMP_RE.match(entry.name) if TEMP_MARK in entry.name else None
        if match is None or match["host"] != _HOST or (name is not None and match["name"] != name):
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or _alive(pid):
            continue
        path = Path(entry.path)
        _remove(path)
        removed.append(path)
    return removed
