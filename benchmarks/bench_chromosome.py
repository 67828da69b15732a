"""Memory and time of imputing one whole chromosome and exporting it genome-wide as bigWig.

A synthetic genome model (the layout of ``avocado assemble-genome`` / ``import-original
--genome``) of one chromosome of ``--bins`` 25 bp bins (default 50 M, i.e. 1.25 Gb) with the
original-avocado fixtures' widths (6 / 8 biosample / assay factors, 5 / 7 / 9 genome factors,
2 x 64 hidden units) is written once; then, each in a fresh process whose peak RSS
(``getrusage``) is reported:

1. ``GenomeModel.predict(b, a, chrom)``: the whole chromosome's imputation in memory;
2. ``GenomeModel.export_bigwigs`` (``avocado export-genome``): imputation and bigWig writing,
   chunk by chunk;
3. pyBigWig alone: the same values, already computed (memory-mapped from disk), written with
   the fastest pyBigWig call (fixed-step ``addEntries`` of numpy chunks): the export's target;
4. avocado_core's own writer alone (``write_bigwigs`` over the same precomputed values, same
   chunks): what the writing adds to the imputation where no core is free to overlap them;
5. the bare interpreter with torch and avocado_core imported (the RSS floor).

The memory bound: one chromosome's genome factors (4 bytes x (n_25bp + n_250bp / 10 +
n_5kbp / 200) per bin), one prediction chunk (``_PREDICT_BUDGET``, a few copies) and one export
chunk (``_EXPORT_BUDGET`` of float32) and the writer's compression queue. How far the export
overlaps imputing and writing depends on the free cores: the table's first line says how much
faster two threads ran than one, before and after the steps.

Full run (the README's numbers; a few minutes and ~2.5 GB of disk under ``--workdir``)::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_chromosome.py --workdir /tmp/bench-chrom
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from machine import cpu_model

CONFIG = {"n_layers": 2, "n_nodes": 64, "n_biosample_factors": 6, "n_assay_factors": 8,
          "n_25bp_factors": 5, "n_250bp_factors": 7, "n_5kbp_factors": 9, "batch_size": 40000}
CHROM = "chrS"
EXPERIMENT = ("B1", "A2")


def _peak_rss_gb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited from the
    parent across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20




def parallel_speedup() -> float:
    """How many cores two threads get now: zlib (which releases the GIL) on 8 MiB, once on
    one thread and once on each of two; 2.0 on two idle cores, ~1 when others hold one."""
    import threading
    import zlib

    data = np.random.default_rng(0).integers(0, 16, 8 << 20, dtype=np.uint8).tobytes()

    def work() -> None:
        for k in range(0, len(data), 1 << 15):
            zlib.compress(data[k:k + (1 << 15)])

    t0 = time.perf_counter()
    work()
    one = time.perf_counter() - t0
    threads = [threading.Thread(target=work) for _ in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 2 * one / (time.perf_counter() - t0)


def build(workdir: Path, n_bins: int) -> Path:
    """Write the synthetic one-chromosome genome model (once; reused when present)."""
    from avocado_core import Avocado
    from avocado_core.genome_wide import frozen_fingerprint, write_genome_model
    from avocado_core.regions import RegionSet

    out = workdir / f"genome-{n_bins}"
    if (out / "genome.json").is_file():
        return out
    model = Avocado(["B1", "B2", "B3"], ["A1", "A2"], n_bins, seed=0, device="cpu", **CONFIG)
    regions = RegionSet.from_chrom_sizes({CHROM: n_bins * 25})
    write_genome_model(model, regions, [(CHROM, model)], out,
                       fingerprint=frozen_fingerprint(model), progress=False)
    return out


def child(step: str, genome_dir: Path, workdir: Path, chunk_bins: int) -> dict:
    """One measured step, run in a fresh process."""
    if step == "build":
        t0 = time.perf_counter()
        build(workdir, int(genome_dir.name.split("-")[1]))
        return {"seconds": time.perf_counter() - t0}
    if step == "floor":
        import torch  # noqa: F401

        import avocado_core.genome_wide  # noqa: F401
        return {"seconds": 0.0}
    if step == "pybigwig":
        import pyBigWig

        values = np.load(workdir / "values.npy", mmap_mode="r")
        t0 = time.perf_counter()
        bw = pyBigWig.open(str(workdir / "pybigwig-alone.bigWig"), "w")
        bw.addHeader([(CHROM, len(values) * 25)], maxZooms=10)
        for lo in range(0, len(values), chunk_bins):
            chunk = np.asarray(values[lo:lo + chunk_bins], dtype=np.float64)
            bw.addEntries(CHROM, lo * 25, values=chunk, span=25, step=25)
        bw.close()
        return {"seconds": time.perf_counter() - t0}
    if step == "writer":
        from avocado_core.bigwig import write_bigwigs
        from avocado_core.regions import RegionSet

        values = np.load(workdir / "values.npy", mmap_mode="r")
        regions = RegionSet.from_chrom_sizes({CHROM: len(values) * 25})
        t0 = time.perf_counter()
        write_bigwigs([workdir / "writer-alone.bigWig"], regions, {CHROM: len(values) * 25},
                      lambda lo, hi: values[None, lo:hi], chunk_bins=chunk_bins)
        return {"seconds": time.perf_counter() - t0}
    from avocado_core.genome_wide import GenomeModel

    genome = GenomeModel.load(genome_dir, device="cpu")
    t0 = time.perf_counter()
    if step == "predict":
        values = genome.predict(*EXPERIMENT, CHROM)
        seconds = time.perf_counter() - t0
        np.save(workdir / "values.npy", values)
        return {"seconds": seconds, "n": len(values)}
    [path] = genome.export_bigwigs([EXPERIMENT], workdir / "export", progress=False)
    return {"seconds": time.perf_counter() - t0, "path": str(path)}


def run_child(step: str, genome_dir: Path, workdir: Path, chunk_bins: int) -> dict:
    cmd = [sys.executable, __file__, "--child", step, "--genome-dir", str(genome_dir),
           "--workdir", str(workdir), "--chunk-bins", str(chunk_bins)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def same_values(a: Path, b: Path, n_bins: int) -> bool:
    """The exported and the pyBigWig-only files hold the same values (a sample of windows)."""
    import pyBigWig

    with pyBigWig.open(str(a)) as x, pyBigWig.open(str(b)) as y:
        for lo in np.linspace(0, n_bins - 1000, 7).astype(int):
            if not np.allclose(x.values(CHROM, lo * 25, (lo + 1000) * 25, numpy=True),
                               y.values(CHROM, lo * 25, (lo + 1000) * 25, numpy=True)):
                return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bins", type=int, default=50_000_000, help="25 bp bins of the chromosome")
    p.add_argument("--workdir", type=Path, default=Path("bench-chromosome"))
    p.add_argument("--chunk-bins", type=int, default=None,
                   help="bins per pyBigWig call of the pyBigWig-only writer [default: the "
                        "export's chunk]")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--genome-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    from avocado_core.genome_wide import _EXPORT_BUDGET

    chunk = args.chunk_bins or _EXPORT_BUDGET // 4
    if args.child:
        result = child(args.child, args.genome_dir, args.workdir, chunk)
        print(json.dumps({**result, "peak_rss_gb": _peak_rss_gb()}))
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    genome_dir = args.workdir / f"genome-{args.bins}"
    built = run_child("build", genome_dir, args.workdir, chunk)["seconds"]
    size = sum(f.stat().st_size for f in genome_dir.rglob("*") if f.is_file()) / 2**30
    speedup = parallel_speedup()
    rows = {step: run_child(step, genome_dir, args.workdir, chunk)
            for step in ("floor", "predict", "export", "pybigwig", "writer")}
    speedup = (speedup + parallel_speedup()) / 2
    ok = same_values(Path(rows["export"]["path"]), args.workdir / "pybigwig-alone.bigWig",
                     args.bins)
    ok_writer = same_values(args.workdir / "writer-alone.bigWig",
                            args.workdir / "pybigwig-alone.bigWig", args.bins)
    mib = {k: (args.workdir / f).stat().st_size / 2**20 for k, f in
           (("pybigwig", "pybigwig-alone.bigWig"), ("writer", "writer-alone.bigWig"))}

    print(f"CPU: {cpu_model()} ({os.cpu_count()} CPUs); one chromosome of {args.bins:,} bins "
          f"({args.bins * 25 / 1e9:.2f} Gb); genome model {size:.2f} GiB on disk (written in "
          f"{built:.0f} s); export chunk {chunk:,} bins; two threads ran {speedup:.2f}x one "
          "(zlib, before and after the steps: the cores the export's threads could share)")
    print()
    print("| step | seconds | peak RSS (GB) |")
    print("|---|---:|---:|")
    names = {"floor": "python + torch + avocado_core imported",
             "predict": "impute the whole chromosome (GenomeModel.predict)",
             "export": "export-genome to bigWig (impute + write, chunked)",
             "pybigwig": "pyBigWig alone, same values precomputed",
             "writer": "avocado_core's writer alone, same values precomputed"}
    for step, name in names.items():
        r = rows[step]
        print(f"| {name} | {r['seconds']:.1f} | {r['peak_rss_gb']:.2f} |")
    export, alone = rows["export"]["seconds"], rows["pybigwig"]["seconds"]
    writer = rows["writer"]["seconds"]
    serial = rows["predict"]["seconds"] + alone
    print()
    print(f"export / pyBigWig alone: {export / alone:.2f}; writer alone / pyBigWig alone: "
          f"{writer / alone:.2f}; export / (imputation + pyBigWig alone, one after the other): "
          f"{export / serial:.2f}; export / (imputation + our writer alone): "
          f"{export / (rows['predict']['seconds'] + writer):.2f}")
    print(f"exported values equal the pyBigWig-only file's: {ok}; the writer-only file's: "
          f"{ok_writer}; file sizes: pyBigWig {mib['pybigwig']:.1f} MiB, ours "
          f"{mib['writer']:.1f} MiB")


if __name__ == "__main__":
    main()
