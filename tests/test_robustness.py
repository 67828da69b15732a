"""Bad inputs and faults against the library and the CLI (issue #14's catalog, fast cases).

Each case must end in a one-line error naming the bad thing (the library: an AvocadoError;
the CLI: ``Error: ...`` and exit 1 or 2) with nothing written where it should not be. Cases
that crashed the process (a segmentation fault inside libBigWig) run in a child process, so
that a crash fails the test instead of killing the test run.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from avocado_core import kernels
from avocado_core.bigwig import read_manifest
from avocado_core.errors import AvocadoValueError
from avocado_core.model import Avocado
from avocado_core.regions import parse_locus
from avocado_core.store import TrackStore
from avocado_core.workspace import Workspace
from cpu_cli import on_cpu
from test_cli import (
    BIOSAMPLES,
    N_BINS,
    TINY,
    _pilot,
    _pilot_store,
    assert_one_line_error,
    run,
)

REPO = Path(__file__).resolve().parents[1]
REAL_BW = "bigwig_chrx_2e6_5e6.bw"


def child(code: str, *args: str | os.PathLike) -> subprocess.CompletedProcess:
    """Run Python code in a fresh process (a crash there is a return code, not our crash)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), *sys.path]),
               AVOCADO_DEBUG="0")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          check=False, capture_output=True, text=True, env=env,
                          timeout=600)


def cli_child(*args: str | os.PathLike) -> subprocess.CompletedProcess:
    """``avocado ARGS`` in a fresh process."""
    return child("from avocado_core.cli import main; main(prog_name='avocado')",
                 *on_cpu([str(a) for a in args]))


def assert_child_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode in (1, 2), (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """An existing folder this process cannot write into (root ignores file modes: /sys)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        yield folder
        folder.chmod(stat.S_IRWXU)
        return
    folder = Path("/sys/kernel")
    try:
        (folder / ".avocado-probe").open("wb").close()
    except OSError:
        yield folder
        return
    pytest.skip("no unwritable folder on this machine")


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("robust")


@pytest.fixture(scope="module")
def pwn_store(work, pilot_dir) -> Path:
    """Real pilot tracks of E003 and of a biosample named ``../../pwn``."""
    (work / "ws").mkdir()
    store = _pilot_store(work / "ws" / "store", pilot_dir,
                         [(b, a) for b in BIOSAMPLES[:2] for a in ("H3K4me3", "H3K27me3")])
    store.add_track("../../pwn", "H3K4me3", _pilot(pilot_dir, "E116", "H3K4me3"))
    return store.path


@pytest.fixture(scope="module")
def pwn_model(work, pwn_store) -> Path:
    path = work / "ws" / "model"
    run("train", pwn_store, path, *TINY, "--epochs", "1", "-q")
    return path


# ---------------------------------------------------------------------- 1. truncated bigWigs
def test_truncated_bigwigs_raise_at_every_length(work, data_mirror):
    """The first N bytes of a real bigWig, for N over the whole file: never a crash."""
    result = child("""
        import sys
        from pathlib import Path
        import pandas as pd
        from avocado_core.bigwig import bin_bigwig
        from avocado_core.errors import AvocadoValueError
        from avocado_core.regions import RegionSet
        source, out = Path(sys.argv[1]), Path(sys.argv[2])
        data = source.read_bytes()
        regions = RegionSet(pd.DataFrame({"chrom": ["chrX"], "start": [2_600_000],
                                          "end": [2_700_000]}))
        lengths = sorted({*range(0, 400, 7), 128, *range(400, len(data), len(data) // 150),
                          len(data) - 1, len(data) - 4})
        refused = 0
        for n in lengths:
            path = out / f"truncated-{n}.bw"
            path.write_bytes(data[:n])
            try:
                bin_bigwig(path, regions, progress=False)
            except AvocadoValueError as exc:
                assert str(path) in str(exc) and "\\n" not in str(exc), exc
                refused += 1
            path.unlink()
        assert bin_bigwig(source, regions, progress=False).any()  # the whole file reads
        print(f"refused {refused} of {len(lengths)}")
    """, data_mirror / "bigwig-real" / REAL_BW, work)
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    refused, total = map(int, result.stdout.split()[1::2])
    assert refused == total > 200


def test_cli_ingest_of_a_truncated_bigwig_is_one_line(work, data_mirror):
    truncated = work / "first128.bw"
    truncated.write_bytes((data_mirror / "bigwig-real" / REAL_BW).read_bytes()[:128])
    bed = work / "fly.bed"
    bed.write_text("chrX\t2600000\t2700000\n")
    result = cli_child("ingest", work / "fly-store", truncated, "-b", "fly", "-a", "signal",
                       "--regions", bed, "-q")
    assert_child_one_line_error(result, str(truncated), "not a readable bigWig")
    assert not (work / "fly-store").exists()  # nothing half-written: not even an empty store


# ---------------------------------------------------------------------- 2. unwritable folders
def test_bigwig_writes_into_an_unwritable_folder(unwritable, hg19_sizes):
    result = child("""
        import sys
        import numpy as np
        import pandas as pd
        from avocado_core.bigwig import write_bigwig
        from avocado_core.errors import AvocadoValueError
        from avocado_core.regions import RegionSet
        regions = RegionSet(pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [2500]}))
        try:
            write_bigwig(np.ones(100), regions, sys.argv[1] + "/x.bw", sys.argv[2])
        except AvocadoValueError as exc:
            print(exc)
    """, unwritable, hg19_sizes)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert f"cannot write the bigWig {unwritable}/x.bw" in result.stdout
    assert "cannot be written" in result.stdout


def test_cli_export_and_impute_into_an_unwritable_folder(work, pwn_store, pwn_model,
                                                         unwritable, hg19_sizes):
    result = cli_child("export", pwn_store, "E003", "H3K4me3", unwritable / "E003.bw",
                       "--chrom-sizes", hg19_sizes)
    assert_child_one_line_error(result, f"{unwritable}/E003.bw")
    result = cli_child("impute", pwn_store, pwn_model, "--all", "--no-store", "--bigwig-dir",
                       unwritable, "--chrom-sizes", hg19_sizes, "-q")
    assert_child_one_line_error(result, str(unwritable), "cannot be written")


def test_impute_of_an_overflowing_model_writes_no_empty_bigwig(work, pwn_store, pwn_model,
                                                              hg19_sizes):
    # A model whose (finite) weights overflow float32 predicts inf / NaN; `impute
    # --bigwig-dir` wrote bigWigs covering 0 bases and exited 0.
    from avocado_core import model_format

    meta, tensors = model_format.read_tensors_dir(pwn_model, "config.json")
    tensors["output.bias"] = torch.full_like(tensors["output.bias"], 3.4e38)
    tensors["output.weight"] = torch.full_like(tensors["output.weight"], 1e38)
    model_format.write_tensors_dir(work / "overflowing", meta, tensors, "config.json")
    result = cli_child("impute", pwn_store, work / "overflowing", "--all", "--no-store",
                       "--bigwig-dir", work / "overflow-bw", "--chrom-sizes", hg19_sizes, "-q")
    assert_child_one_line_error(result, "non-finite value", "the track is not written")
    assert list((work / "overflow-bw").iterdir()) == []


def test_train_into_an_unwritable_model_folder_fails_before_loading(work, pwn_store,
                                                                    unwritable, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded before the model folder was checked")

    monkeypatch.setattr(TrackStore, "tracks", no_loading)
    result = run("train", pwn_store, unwritable / "model", *TINY, ok=False)
    assert_one_line_error(result, f"{unwritable}/model", "cannot be written")


# ---------------------------------------------------------------------- 3. path traversal
def test_impute_bigwig_names_cannot_leave_the_folder(work, pwn_store, pwn_model, hg19_sizes):
    out = work / "deep" / "out"
    run("impute", pwn_store, pwn_model, "--all", "--no-store", "--bigwig-dir", out,
        "--chrom-sizes", hg19_sizes, "-q")
    written = sorted(p.name for p in out.iterdir())
    assert "%2E%2E%2F%2E%2E%2Fpwn.H3K4me3.imputed.bw" in written and len(written) == 6
    assert not list(work.rglob("pwn*")), "a file was written outside the bigWig folder"


def test_a_catalog_file_outside_the_store_is_refused(work, pilot_dir):
    store = _pilot_store(work / "cat-store", pilot_dir, [("E003", "H3K4me3")])
    outside = work / "outside.npy"
    np.save(outside, np.full(N_BINS, 7.0, dtype=np.float32))
    catalog = store.path / "catalog.tsv"
    text = catalog.read_text()
    catalog.write_text(text.replace("tracks/observed/E003.H3K4me3.npy", "../outside.npy"))
    with pytest.raises(AvocadoValueError, match=r"'\.\./outside\.npy'.*outside .*cat-store"):
        TrackStore(store.path).track("E003", "H3K4me3")
    with pytest.raises(AvocadoValueError, match="outside"):
        TrackStore(store.path).remove_track("E003", "H3K4me3")
    assert outside.is_file()  # not read, not deleted
    assert_one_line_error(run("info", store.path, "--tracks", ok=False), "../outside.npy")


def test_a_weights_file_outside_the_model_folder_is_refused(work, pwn_model):
    model = work / "escaped-model"
    shutil.copytree(pwn_model, model)
    config = json.loads((model / "config.json").read_text())
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(model / config["weights_file"], elsewhere / "w.safetensors")
    config["weights_file"] = "../elsewhere/w.safetensors"
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(AvocadoValueError, match=r"weights_file .*'\.\./elsewhere/w\.safetensors'"
                                                r".*outside"):
        Avocado.load(model, device="cpu")
    assert_one_line_error(run("info", model, ok=False), "../elsewhere/w.safetensors")


# ---------------------------------------------------------------------- 4. kernel cache
def test_code_added_to_the_cached_kernel_never_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("AVOCADO_CACHE", str(tmp_path / "cache"))
    kernels._one_layer_kernel.cache_clear()
    kernels._one_layer_kernel(6, 3)
    folder = tmp_path / "cache" / "kernels"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (cached,) = folder.glob("avocado_one_layer_6_3_*.py")
    clean = cached.read_text()
    marker = tmp_path / "pwned"
    cached.write_text(clean + f"\nopen({str(marker)!r}, 'w').close()\n")
    folder.chmod(0o777)
    kernels._one_layer_kernel.cache_clear()
    try:
        kernel = kernels._one_layer_kernel(6, 3)
    finally:
        kernels._one_layer_kernel.cache_clear()
    assert not marker.exists(), "code appended to the cached kernel ran"
    assert cached.read_text() == clean  # rewritten with the expected text
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert callable(kernel)


# ---------------------------------------------------------------------- 5. model vs store
def test_a_workspace_whose_model_is_of_another_region_set(work, pilot_dir, pwn_model):
    ws = work / "mismatch"
    ws.mkdir()
    _pilot_store(ws / "store", pilot_dir, [("E003", "H3K4me3")])
    shutil.copytree(pwn_model, ws / "model")
    short = TrackStore(ws / "store")
    assert short.n_bins == N_BINS
    # the same names over a region set of another length
    shutil.rmtree(ws / "store")
    bed = work / "shorter.bed"
    bed.write_text("chr1\t151158025\t151183025\n")
    from avocado_core.regions import RegionSet

    store = TrackStore.create(ws / "store", RegionSet.from_bed(bed))
    store.add_track("E003", "H3K4me3", _pilot(pilot_dir, "E003", "H3K4me3")[:1000])
    Workspace.create(ws, genome="hg19")
    with pytest.raises(AvocadoValueError, match=r"2,000 positions .* 1,000 bins"):
        Workspace(ws).warm_up()
    assert_one_line_error(run("serve", ws, "--port", "0", ok=False), "2,000 positions",
                          "1,000 bins")


# ---------------------------------------------------------------------- 10. small ones
def test_epochs_zero_and_negative_checkpoints_are_refused(work, pwn_store):
    for bad in (["--epochs", "0"], ["--checkpoint-every", "-1"], ["--epoch-size", "0"]):
        result = run("train", pwn_store, work / "m0", *TINY, *bad, ok=False)
        assert result.exit_code == 2 and bad[0] in result.stderr, result.stderr
    assert not (work / "m0" / "config.json").exists()
    model = Avocado.small(["E003"], ["H3K4me3"], 100, n_nodes=8, device="cpu")
    data = {("E003", "H3K4me3"): np.ones(100, np.float32)}
    with pytest.raises(AvocadoValueError, match="n_epochs must be a positive integer, got 0"):
        model.fit(data, n_epochs=0, progress=False, choose_settings=False)
    with pytest.raises(AvocadoValueError, match="checkpoint_every .* got -1"):
        model.fit(data, n_epochs=1, checkpoint_dir=work / "ck", checkpoint_every=-1,
                  progress=False, choose_settings=False)


def test_a_config_field_of_the_wrong_type_is_a_corrupted_model(work, pwn_model):
    model = work / "wrong-type"
    shutil.copytree(pwn_model, model)
    config = json.loads((model / "config.json").read_text())
    config["config"]["n_layers"] = "two"
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(AvocadoValueError) as info:
        Avocado.load(model, device="cpu")
    assert str(model / "config.json") in str(info.value) and "corrupted" in str(info.value)


def test_a_5000_digit_coordinate_is_a_one_line_error():
    with pytest.raises(AvocadoValueError, match=r"position 9{19}… \(5,000 characters\) is too"):
        parse_locus("chr1:" + "9" * 5000 + "-" + "9" * 5001)
    with pytest.raises(AvocadoValueError, match="too large"):
        parse_locus("chr1:1-2000000000000")
    assert parse_locus("chr1:999,999,999,000-999,999,999,999")[2] == 999_999_999_999


def test_a_manifest_path_with_a_hash_is_kept(work, data_mirror):
    folder = work / "run#1"
    folder.mkdir()
    shutil.copy(data_mirror / "bigwig-real" / REAL_BW, folder / "a#b.bw")
    manifest = work / "manifest#.tsv"
    manifest.write_text("# a comment line\nfly\tsignal\trun#1/a#b.bw\n")
    df = read_manifest(manifest)
    assert list(df["path"]) == [str(folder / "a#b.bw")]
    bed = work / "fly-hash.bed"
    bed.write_text("chrX\t2600000\t2700000\n")
    out = run("ingest", work / "hash-store", "--regions", bed, "-m", manifest, "-q").output
    assert "1 tracks ingested" in out


def test_stopping_a_job_survives_a_process_that_exits_while_listed(tmp_path, monkeypatch):
    import subprocess
    import sys

    import diskcache
    import psutil
    from dash import DiskcacheManager

    from dashboard.background import JobManager

    manager = JobManager(diskcache.Cache(str(tmp_path / "cache")), app_spec=None)
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    original = DiskcacheManager.terminate_job
    calls = []

    def racing(self, pid):
        calls.append(pid)
        if len(calls) == 1:  # as psutil's children() does when a child exits meanwhile
            raise psutil.NoSuchProcess(pid)
        return original(self, pid)

    monkeypatch.setattr(DiskcacheManager, "terminate_job", racing)
    manager.terminate_job(job.pid)
    job.wait(5)  # listed again, and stopped (Dash's psutil reaps it, so no exit code here)
    assert not psutil.pid_exists(job.pid) and calls == [job.pid, job.pid]
