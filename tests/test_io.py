"""Every write goes through ``avocado_core._io``: permissions follow the umask, a full disk
says so, and the temporary files of killed saves are removed by the next write."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from avocado_core import _io
from avocado_core.cli._common import error_message
from avocado_core.errors import AvocadoDiskFullError
from avocado_core.model import Avocado
from avocado_core.regions import RegionSet
from avocado_core.store import TrackStore
from avocado_core.workspace import Workspace

N_BINS = 10_000  # 40,000 bytes of float32: numpy's "40000 requested" message
TINY = dict(n_nodes=8, n_biosample_factors=2, n_assay_factors=2, n_25bp_factors=2,
            n_250bp_factors=2, n_5kbp_factors=2, device="cpu", seed=0)
ROOT = Path(__file__).resolve().parents[1]


def _regions() -> RegionSet:
    return RegionSet.from_chrom_sizes({"chr1": N_BINS * 25})


def _values(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(N_BINS, dtype=np.float32)


def _temps(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if _io.TEMP_MARK in p.name)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_and_folders_follow_the_umask(tmp_path, umask):
    """Under umask 022 another user of a shared server can read (serve) what was written."""
    previous = os.umask(umask)
    try:
        store = TrackStore.create(tmp_path / "store", _regions())
        store.add_track("b1", "a1", _values())
        model = Avocado.small(["b1"], ["a1"], N_BINS, **TINY)
        model.save(tmp_path / "model")
        Workspace.create(tmp_path / "ws", annotations=None).update_info(note="x")
        with _io.atomic_dir(tmp_path / "parts") as tmp:
            _io.write_text(tmp / "a.txt", "a")
    finally:
        os.umask(previous)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    folders = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert {"catalog.tsv", "regions.tsv", "store.json", "config.json", "workspace.json",
            "a.txt"} <= {p.name for p in files}
    assert any(p.suffix == ".npy" for p in files) and any(p.suffix == ".safetensors"
                                                          for p in files)
    assert {p.name for p in folders} >= {"store", "tracks", "observed", "model", "parts"}
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in files} == {
        str(p.relative_to(tmp_path)): oct(0o666 & ~umask) for p in files}
    assert {str(p.relative_to(tmp_path)): oct(_mode(p)) for p in folders} == {
        str(p.relative_to(tmp_path)): oct(0o777 & ~umask) for p in folders}
    assert _temps(tmp_path) == []


# ---------------------------------------------------------------------------------- full disk
Usage = namedtuple("Usage", "total used free")


def test_a_full_disk_is_named_before_anything_is_written(tmp_path, monkeypatch):
    store = TrackStore.create(tmp_path / "store", _regions())
    store.add_track("b1", "a1", _values())
    catalog = (tmp_path / "store" / "catalog.tsv").read_text()
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 4064, 4064))
    with pytest.raises(AvocadoDiskFullError) as info:
        store.add_track("b2", "a1", _values(1))
    exc = info.value
    assert exc.errno == errno.ENOSPC and isinstance(exc, OSError)
    assert exc.needed == N_BINS * 4 + 128 and exc.free == 4064
    text = error_message(exc)  # what the command line prints after "Error: "
    assert text.startswith("no space left on device writing ")
    assert "39.2 KiB needed, 4.0 KiB free in " in text, text
    assert (tmp_path / "store" / "catalog.tsv").read_text() == catalog
    assert _temps(tmp_path) == [] and len(list((tmp_path / "store/tracks/observed").iterdir())) == 1


def test_a_short_write_says_no_space_left_not_requested_and_written(tmp_path, monkeypatch):
    store = TrackStore.create(tmp_path / "store", _regions())
    real_save = np.save

    def short_save(handle, arr, **kwargs):  # what numpy does when the disk fills up
        handle.write(b"\0" * 4064)
        raise OSError(f"{arr.nbytes} requested and 4064 written")

    monkeypatch.setattr(np, "save", short_save)
    with pytest.raises(AvocadoDiskFullError) as info:
        store.add_track("b1", "a1", _values())
    monkeypatch.setattr(np, "save", real_save)
    text = str(info.value)
    assert "no space left on device" in text and "requested" not in text
    assert info.value.needed == N_BINS * 4 + 128
    assert f"{_io.format_bytes(info.value.free)} free" in text
    assert store.experiments() == [] and _temps(tmp_path) == []
    # the same through the weights file of a model
    model = Avocado.small(["b1"], ["a1"], N_BINS, **TINY)
    model.save(tmp_path / "model")
    before = sorted(p.name for p in (tmp_path / "model").iterdir())

    def full(handle, tensors):
        handle.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("avocado_core.model_format._serialize", full)
    with pytest.raises(AvocadoDiskFullError, match="no space left on device writing .*weights-"):
        model.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == before
    Avocado.load(tmp_path / "model", device="cpu")  # the previous save is intact


# ---------------------------------------------------------------------------------- leftovers
_KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from avocado_core.store import TrackStore
    from avocado_core.model import Avocado
    import avocado_core.model_format as fmt

    def die(*args, **kwargs):
        handle = args[0] if not isinstance(args[0], dict) else open(args[1], "wb")
        handle.write(b"x" * 4096)
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    store_path, model_path = sys.argv[1:]
    if store_path != "-":
        np.save = die
        TrackStore(store_path).add_track("b9", "a1", np.zeros({n}, np.float32))
    else:
        fmt._serialize = die
        Avocado.small(["b1"], ["a1"], {n}, n_nodes=8, device="cpu").save(model_path)
""").format(n=N_BINS)


def _killed_save(*args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _KILLED_SAVE, *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr


def _live_temp(folder: Path, name: str) -> Path:
    """A temporary file of a writer that is still running (this process)."""
    path = _io.temp_path(folder / name)
    path.write_bytes(b"in progress")
    return path


def test_the_temp_files_of_killed_saves_are_removed_by_the_next_write(tmp_path):
    store = TrackStore.create(tmp_path / "store", _regions())
    store.add_track("b1", "a1", _values())
    _killed_save(str(tmp_path / "store"), "-")
    tracks = tmp_path / "store" / "tracks" / "observed"
    [dead] = _temps(tmp_path / "store")
    assert dead.parent == tracks and dead.stat().st_size == 4096
    live = _live_temp(tracks, "b2.a1.npy")
    assert TrackStore(tmp_path / "store").experiments() == [("b1", "a1")]  # reading cleans nothing
    assert dead.exists()
    store.add_track("b2", "a2", _values(2))  # the next write
    assert not dead.exists() and live.exists()  # a live writer's file is never touched
    live.unlink()

    model = Avocado.small(["b1"], ["a1"], N_BINS, **TINY)
    model.save(tmp_path / "model")
    _killed_save("-", str(tmp_path / "model"))
    [dead] = _temps(tmp_path / "model")
    live = _live_temp(tmp_path / "model", "weights-0.safetensors")
    model.save(tmp_path / "model")
    assert _temps(tmp_path / "model") == [live]
    assert json.loads((tmp_path / "model" / "config.json").read_text())["weights_file"] in {
        p.name for p in (tmp_path / "model").iterdir()}


_SAVING = textwrap.dedent("""
    import sys
    from avocado_core.model import Avocado

    model = Avocado.small(["b1", "b2"], ["a1"], 1_000_000, device="cpu", seed=0)
    model.save(sys.argv[1])
    print("saved", flush=True)
    while True:  # saves until it is killed
        model.save(sys.argv[1])
""")


def _writing(folder: Path) -> list[Path]:
    """Files in ``folder`` being written now: not config.json nor a weights file, not empty."""
    found = []
    for entry in os.scandir(folder):
        if entry.name == "config.json" or entry.name.startswith("weights-"):
            continue
        try:
            if entry.stat().st_size > 0:
                found.append(Path(entry.path))
        except FileNotFoundError:  # renamed into place meanwhile
            continue
    return found


def test_a_save_killed_mid_write_leaves_nothing_after_the_next_save(tmp_path):
    # kill -9 while the weights (48 MB) are being written, from outside: safetensors' own
    # writer left its ".tmpXXXXXX" there for good (164 MB in the issue); every file is now
    # written under _io's temporary names, which the next save removes.
    folder = tmp_path / "model"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    saver = subprocess.Popen([sys.executable, "-c", _SAVING, str(folder)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert saver.stdout.readline().strip() == "saved"
        deadline = time.monotonic() + 120
        while not _writing(folder) and time.monotonic() < deadline:
            pass  # polls the folder until a write is under way
        assert _writing(folder), "no write in progress was seen"
    finally:
        saver.kill()
        saver.wait()
    assert _writing(folder)  # what the killed save left behind
    model = Avocado.load(folder, device="cpu")  # the last complete save, intact
    model.save(folder)
    kept = sorted(p.name for p in folder.iterdir())
    assert kept[0] == "config.json" and len(kept) == 2 and kept[1].startswith("weights-"), kept


def test_remove_stale_keeps_other_hosts_and_other_names(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(done.stdout)
    mine = _io.temp_path(tmp_path / "x.npy")
    dead = tmp_path / f".x.npy{_io.TEMP_MARK}{_io._HOST}-{dead_pid}-01234567"
    other_host = tmp_path / f".x.npy{_io.TEMP_MARK}another.host-{dead_pid}-0123abcd"
    plain = tmp_path / "notes.tmp"
    dead_dir = tmp_path / f".y{_io.TEMP_MARK}{_io._HOST}-{dead_pid}-89abcdef"
    for path in (mine, dead, other_host, plain):
        path.write_text("x")
    dead_dir.mkdir()
    (dead_dir / "part").write_text("x")
    assert _io.remove_stale(tmp_path, "y") == [dead_dir]
    assert sorted(_io.remove_stale(tmp_path)) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (mine, other_host, plain))
