"""The benchmark scripts the README names still run and print their tables.

Smoke runs with tiny sizes: the numbers in the README come from the full runs, by hand (see
each script's docstring); here only that every script runs end to end and prints its table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app_workspaces import encode_layout_workspace, pilot_workspace  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: int = 300) -> str:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-6000:]}"
    return result.stdout


def test_bench_training_prints_its_table():
    out = _run("benchmarks/bench_training.py", "--quick", "--configs", "small",
               "--small-steps", "3")
    assert "| plain port" in out and "| avocado_core fp32" in out


def test_bench_scale_prints_its_tables(tmp_path):
    out = _run("benchmarks/bench_scale.py", "--workdir", str(tmp_path), "--positions", "20000",
               "--tracks", "8", "--sizes", "1", "--steps", "3")
    assert "streamed" in out and "torchrun data-parallel, 2 processes" in out


def test_bench_locus_prints_percentiles(pilot_workspace):  # noqa: F811
    out = _run("benchmarks/bench_locus.py", str(pilot_workspace.path), "--repeats", "3")
    assert "p95" in out



def test_bench_imputation_serving_prints_both_ways(encode_layout_workspace):  # noqa: F811
    out = _run("benchmarks/bench_imputation_serving.py", str(encode_layout_workspace.path),
               "--tracks", "6", "--repeats", "3")
    assert "| on the fly p50 / p95 | stored p50 / p95 |" in out
    assert "| 50 kb (2,000 bins) |" in out and "storing every imputation:" in out


def test_bench_band_prints_held_out_coverage(pilot_workspace):  # noqa: F811
    out = _run("benchmarks/bench_band.py", str(pilot_workspace.path))
    assert "| **all 5 tracks** (" in out and "coverage of the 90% band" in out
    assert "average activity's MSE" in out


def test_bench_ensemble_prints_its_table():
    out = _run("benchmarks/bench_ensemble.py", "--seeds", "2", "--epochs", "2",
               "--average-from", "1", "--positions", "3000")
    assert "Average activity: mean MSE" in out
    assert "| 1 | 2 |" in out and "| 2 | 1 |" in out


def test_bench_peaks_prints_its_tables():
    out = _run("benchmarks/bench_peaks.py", "--epochs", "2", "--average-from", "1",
               "--positions", "3000")
    assert "100 out-of-fold imputations of validation tracks" in out
    assert "| average activity | " in out and "chosen by mse1obs |" in out
    assert "| shared (in average activity's top 5%) | " in out and "| 99.9-100 | " in out


def test_bench_continue_prints_its_table():
    out = _run("benchmarks/bench_continue.py", "--epochs", "2", "--epoch-size", "1",
               "--positions", "20000")
    assert "| 2 calls of 1 epoch | " in out and "reset_optimizer=True |" in out


def test_bench_chromosome_prints_time_and_memory(tmp_path):
    out = _run("benchmarks/bench_chromosome.py", "--bins", "300000", "--workdir", str(tmp_path))
    assert "| export-genome to bigWig (impute + write, chunked) |" in out
    assert "| pyBigWig alone, same values precomputed |" in out
    assert "| avocado_core's writer alone, same values precomputed |" in out
    assert "exported values equal the pyBigWig-only file's: True; the writer-only file's: True" \
        in out and "writer alone / pyBigWig alone: " in out


def _cells(out: str, start: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()
            if line.startswith(start)]


def test_bench_vs_original_runs_without_the_original_over_seeds_and_tracks():
    out = _run("benchmarks/bench_vs_original.py", "--ours-only", "--configs", "small",
               "--reps", "1", "--small-steps", "3", "--small-epochs", "1",
               "--small-epoch-size", "3", "--held-out", "E065:H3K4me3,E116:H3K27me3",
               "--seeds", "0,1")
    assert "CPU: " in out and "fp32" in out.split("matrix product")[1].splitlines()[0]
    assert "precision='auto' (the default) picks here: small fp32" in out
    label = "avocado_core fp32 (auto)"
    assert f"| small | {label} |" in out  # speed row
    for track in ("E065 H3K4me3", "E116 H3K27me3"):
        runs = _cells(out, f"| small | {track} | {label} | 1 x 3 batches |")
        assert [r[4] for r in runs] == ["0", "1"]  # a run per seed on every held-out track
        mse = [float(r[-2]) for r in runs]
        (row,) = _cells(out, f"| small | {track} | {label} | 0.")  # the table over seeds
        assert [float(x) for x in row[3].split(", ")] == mse
        assert float(row[4]) == pytest.approx(sum(mse) / 2, abs=1e-4)  # 4 decimals printed
        # max/min - 1 of the unrounded values: 4-decimal MSEs near 0.1 move it by < 0.2 points
        assert float(row[5].rstrip("%")) == pytest.approx(100 * (max(mse) / min(mse) - 1),
                                                         abs=0.2)
        assert row[6] == row[7] == "-"  # no original to compare with


def test_bench_vs_original_table_over_seeds_known_answer(monkeypatch, capsys):
    """Original MSEs 0.1 and 0.3 against ours 0.2 and 0.2: equal means, a seed spread of
    200%, per seed +100% and -33.33%, and the gap's standard error sqrt(0 / 2 + 0.02 / 2)
    = 0.1 over the original's mean 0.2: 50%."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from bench_vs_original import Row, _seeds_table

    track = ("E065", "H3K4me3")
    rows = [Row("small", label, track, seed, "10 x 113 batches", {"mse": mse, "r": 0.5})
            for label, values in (("original", (0.1, 0.3)), ("ours", (0.2, 0.2)))
            for seed, mse in zip((0, 1), values)]
    _seeds_table(rows, [0, 1])
    table = _cells(capsys.readouterr().out, "| small | E065 H3K4me3 |")
    assert table[0][3:7] == ["0.1000, 0.3000", "0.2000", "200.0%", "-"]
    assert table[1][3:9] == ["0.2000, 0.2000", "0.2000", "0.0%", "+0.00% ± 50.00%",
                             "+100.00%, -33.33%", "0.500"]


def test_bench_vs_original_accuracy_only_runs_no_speed_row():
    out = _run("benchmarks/bench_vs_original.py", "--ours-only", "--accuracy-only",
               "--small-epochs", "0")
    assert "CPU: " in out and "matrix product" not in out and "samples/s per round" not in out


def test_bench_vs_original_names_a_bad_held_out_track():
    result = subprocess.run([sys.executable, "benchmarks/bench_vs_original.py", "--ours-only",
                             "--held-out", "E065:H3K4me3,E999:H3K4me3"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "'E999:H3K4me3' is not a pilot track" in result.stderr


def test_replay_sampler_draws_the_original_generators_batches(monkeypatch):
    """original_start.ReplaySampler gives the batches of the original's
    ``sequential_data_generator`` (avocado/io.py of avocado-epigenome 0.4.0): positions scanned
    from 0, each sample's experiment ``numpy.random.randint(len(data), size=batch_size)`` on
    numpy's global generator, here mapped to another order of the experiments."""
    import numpy as np

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from original_runner import generator_state
    from original_start import ReplaySampler

    experiments = [("E003", "H3K4me3"), ("E017", "H3K27me3"), ("E065", "H3K9me3")]
    saved = np.random.get_state()  # (the global generator is the original's; restored below)
    try:
        np.random.seed(3)
        np.random.random(5)  # a state part-way through the generator's stream
        state = generator_state(experiments)
        order = np.array([2, 0, 1])  # the trainer's index of the original's experiment i
        sampler = ReplaySampler(25, 3, 10, state=state, order=order)
        for start in (0, 10, 20, 30):  # the original's scan goes on past the end (modulo)
            drawn = np.random.randint(len(experiments), size=10)  # as the original draws
            e, p = sampler.next_batch()
            np.testing.assert_array_equal(p, np.arange(start, start + 10) % 25)
            np.testing.assert_array_equal(e, order[drawn])
    finally:
        np.random.set_state(saved)


def test_bench_average_activity_prints_its_table():
    out = _run("benchmarks/bench_average_activity.py", "--epochs", "1", "--reps", "1",
               "--positions", "100000")
    assert "| input |" in out and "| residual |" in out and "CPU:" in out


def test_bench_predict_prints_its_tables():
    out = _run("benchmarks/bench_predict.py", "--scale", "0.01", "--reps", "1", "--shapes",
               "2,1", "--gil-seconds", "0.2")
    assert "| 2 x 64 (bench_chromosome) | 10,000 |" in out and "| 1 x 128 (small) |" in out
    assert "| kernel |" in out and "| torch |" in out and "CPU:" in out
    row = next(line for line in out.splitlines() if line.startswith("| 9 settings |"))
    assert row.startswith("| 9 settings | 10,000 |") and row.endswith("| True |")


def test_bench_defaults_prints_what_the_defaults_cost():
    out = _run("benchmarks/bench_defaults.py", "--positions", "20000", "--epochs", "2",
               "--sizes", "20", "--synthetic-positions", "5000")
    assert "CPU:" in out and "| `avocado train` defaults" in out and "3 models" in out
    assert "| 20 | " in out and "held-out MSE" in out


def test_bench_gpu_runs_on_the_cpu_in_smoke_mode():
    # (the GPU rows need a GPU; the same code runs tiny on the CPU, so it is known to work)
    out = _run("benchmarks/bench_gpu.py", "--smoke", "--device", "cpu", "--steps", "2")
    assert "# matrix product 512^3 on the device:" in out
    for config in ("small", "paper"):
        for precision in ("fp32", "tf32", "bf16"):
            assert f"| cpu | {config} | {precision} | " in out


def test_bench_step_prints_its_tables():
    out = _run("benchmarks/bench_step.py", "--configs", "small", "--rounds", "1",
               "--positions", "20000", "--speed-steps", "2")
    assert "| after | small | torch | 0.0 | 0.0 | " in out  # (no syncs: a structural count)
    assert "| after | kernels | " in out


def test_compare_versions_prints_both_checkouts():
    out = _run("benchmarks/compare_versions.py", str(REPO), str(REPO), "--rounds", "1",
               "--epochs", "1", "--positions", "20000")
    row = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == cells[5]  # one checkout twice: the same held-out MSE, to the last bit
