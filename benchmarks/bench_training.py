"""Training speed and accuracy of avocado_core on the real Roadmap pilot tracks.

Protocol: train on 24 of the 25 pilot tracks (5 biosamples x 5 marks,
1,126,469 bins each), hold out E065 / H3K4me3, sequential sampling. For each contender the
script measures training samples/s, seconds per epoch (113 batches), peak RSS of its own
process, and (in the accuracy rows) the held-out MSE and Pearson r after 10 epochs of
113 x 10,000 samples. Every contender runs in its own subprocess, all in this one run, so that
ratios are taken under the same load. It also measures the machine's matmul GFLOP/s
(40000 x 2048 x 2048, fp32 and bf16) and the paper configuration's achieved fraction of it.

Contenders:
- ``plain port``: a straightforward PyTorch port (dense ``nn.Embedding`` tables, full
  autograd, ``torch.optim.Adam`` over every parameter), written out in this file.
- ``avocado_core``: ``Avocado.fit`` (catch-up dense Adam, decomposed first layer, fused Adam,
  the compiled kernels of ``avocado_core.kernels``); ``no kernels``: the same in torch
  operations only (``Trainer(kernel=False)``), to show what the kernels add.
- The original (avocado-epigenome 0.4.0 on TensorFlow-CPU 2.15.1) is not here:
  ``bench_vs_original.py`` trains it in its own environment beside avocado_core.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_training.py            # speed + accuracy
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_training.py --quick    # speed only

Set AVOCADO_DATA_MIRROR to the data mirror (default: ../shared/data beside the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
HELD_OUT = ("E065", "H3K4me3")
SMALL = dict(n_layers=1, n_nodes=128, n_biosample_factors=32, n_assay_factors=24,
             n_25bp_factors=10, n_250bp_factors=20, n_5kbp_factors=30, batch_size=10_000)
PAPER = dict(n_layers=2, n_nodes=2048, n_biosample_factors=32, n_assay_factors=256,
             n_25bp_factors=25, n_250bp_factors=40, n_5kbp_factors=45, batch_size=40_000)
EPOCH_BATCHES = 113


def _mirror() -> Path:
    return Path(os.environ.get("AVOCADO_DATA_MIRROR", REPO.parent / "shared" / "data"))


def pilot_files() -> dict[tuple[str, str], Path]:
    """The pilot's 25 track files, ``(biosample, assay) -> path``, in the order of their names."""
    paths = sorted((_mirror() / "roadmap-pilot").glob("*.pilot.arcsinh.npz"))
    if len(paths) != 25:
        raise SystemExit(f"expected 25 pilot tracks under {_mirror()}, found {len(paths)}")
    return {tuple(path.name.split(".")[:2]): path for path in paths}


def load_pilot(held_out: tuple[str, str] = HELD_OUT):
    """Training tracks (dict: the other 24) and the held-out track ``held_out`` of the pilot."""
    import numpy as np

    tracks = {}
    for key, path in pilot_files().items():
        with np.load(path) as npz:
            tracks[key] = np.ascontiguousarray(npz["arr_0"], dtype=np.float32)
    held = tracks.pop(tuple(held_out))
    return tracks, held


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _score(pred, truth) -> tuple[float, float]:
    import numpy as np

    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    return float(np.mean((pred - truth) ** 2)), float(np.corrcoef(pred, truth)[0, 1])


# ------------------------------------------------------------------------------ plain port
def plain_port(spec: dict) -> dict:
    """The straightforward port: dense embeddings, full autograd, torch.optim.Adam."""
    import numpy as np
    import torch
    from torch import nn

    tracks, held = load_pilot()
    keys = list(tracks)
    biosamples = sorted({b for b, _ in keys} | {HELD_OUT[0]})
    assays = sorted({a for _, a in keys} | {HELD_OUT[1]})
    cfg = SMALL if spec["config"] == "small" else PAPER
    n = len(held)
    x = np.stack([tracks[k] for k in keys])
    exp_b = torch.tensor([biosamples.index(b) for b, _ in keys])
    exp_a = torch.tensor([assays.index(a) for _, a in keys])
    torch.manual_seed(0)

    class Port(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Embedding(len(biosamples), cfg["n_biosample_factors"])
            self.a = nn.Embedding(len(assays), cfg["n_assay_factors"])
            self.g25 = nn.Embedding(n, cfg["n_25bp_factors"])
            self.g250 = nn.Embedding(n // 10 + 1, cfg["n_250bp_factors"])
            self.g5k = nn.Embedding(n // 200 + 1, cfg["n_5kbp_factors"])
            for emb in (self.b, self.a, self.g25, self.g250, self.g5k):
                nn.init.uniform_(emb.weight, -0.05, 0.05)
            width = sum(cfg[k] for k in cfg if k.endswith("factors"))
            layers = []
            for _ in range(cfg["n_layers"]):
                layers += [nn.Linear(width, cfg["n_nodes"]), nn.ReLU()]
                width = cfg["n_nodes"]
            self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

        def forward(self, b, a, p):
            z = torch.cat([self.b(b), self.a(a), self.g25(p), self.g250(p // 10),
                           self.g5k(p // 200)], 1)
            return self.mlp(z).squeeze(1)

    model = Port()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    rng = np.random.default_rng(0)
    bs = cfg["batch_size"]
    cursor = 0

    def step():
        nonlocal cursor
        pos = (cursor + np.arange(bs)) % n
        cursor = (cursor + bs) % n
        e = rng.integers(0, len(keys), bs)
        y = torch.from_numpy(x[e, pos])
        e_t, p_t = torch.from_numpy(e), torch.from_numpy(pos)
        loss = torch.mean((model(exp_b[e_t], exp_a[e_t], p_t) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)

    result = {}
    for _ in range(spec["warmup"]):
        step()
    if spec["epochs"]:
        t0 = time.perf_counter()
        for _ in range(spec["epochs"] * EPOCH_BATCHES):
            step()
        elapsed = time.perf_counter() - t0
        n_steps = spec["epochs"] * EPOCH_BATCHES
        with torch.no_grad():
            b_i, a_i = biosamples.index(HELD_OUT[0]), assays.index(HELD_OUT[1])
            pred = np.concatenate([
                model(torch.full((len(c),), b_i), torch.full((len(c),), a_i), c).numpy()
                for c in torch.arange(n).split(200_000)
            ])
        result["mse"], result["r"] = _score(pred, held)
    else:
        t0 = time.perf_counter()
        for _ in range(spec["steps"]):
            step()
        elapsed = time.perf_counter() - t0
        n_steps = spec["steps"]
    result["samples_per_s"] = n_steps * bs / elapsed
    return result


# ------------------------------------------------------------------------------ avocado_core
def avocado(spec: dict) -> dict:
    """avocado_core's Avocado.fit."""
    sys.path.insert(0, str(REPO))
    import numpy as np  # noqa: F401

    from avocado_core import Avocado

    fit_options = {}
    if not spec.get("kernels", True):  # torch operations only (the kernels' contribution)
        import functools

        from avocado_core.training import Trainer

        fit_options["trainer"] = functools.partial(Trainer, kernel=False)
    held_out = tuple(spec.get("held_out", HELD_OUT))
    tracks, held = load_pilot(held_out)
    biosamples = sorted({b for b, _ in tracks} | {held_out[0]})
    assays = sorted({a for _, a in tracks} | {held_out[1]})
    cfg = dict(SMALL if spec["config"] == "small" else PAPER)
    model = Avocado(biosamples, assays, len(held), device="cpu", seed=spec.get("seed", 0),
                    precision=spec["precision"], **cfg)
    return fit_and_score(model, tracks, held, held_out, spec, **fit_options)


def fit_and_score(model, tracks: dict, held, held_out: tuple[str, str], spec: dict,
                  **fit_options) -> dict:
    """Train ``model`` as ``spec`` says (plain training: ``choose_settings=False``): its
    ``warmup`` batches untimed, then ``epochs`` x ``epoch_size`` batches and the held-out
    scores, or (``epochs`` 0) one timed epoch of ``steps`` batches; samples/s of the timed part."""
    fit_options = dict(fit_options, progress=False, choose_settings=False)
    result = {}
    if spec["warmup"]:
        model.fit(tracks, n_epochs=1, epoch_size=spec["warmup"], **fit_options)
    if spec["epochs"]:
        n_epochs, epoch_size = spec["epochs"], spec.get("epoch_size", EPOCH_BATCHES)
    else:
        n_epochs, epoch_size = 1, spec["steps"]
    t0 = time.perf_counter()
    model.fit(tracks, n_epochs=n_epochs, epoch_size=epoch_size, **fit_options)
    elapsed = time.perf_counter() - t0
    if spec["epochs"]:
        result["mse"], result["r"] = _score(model.predict(*held_out), held)
        result["loss"] = model.history["loss"][-n_epochs:]
    result["samples_per_s"] = n_epochs * epoch_size * model.batch_size / elapsed
    result["precision"] = model.train_precision
    return result


def _gemm(dtype_name: str, reps: int = 3) -> float:
    """GFLOP/s of a 40000 x 2048 x 2048 matrix product right now."""
    import torch

    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    a = torch.randn(40_000, 2048).to(dtype)
    b = torch.randn(2048, 2048).to(dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return reps * 2 * 40_000 * 2048 * 2048 / (time.perf_counter() - t0) / 1e9


def matmul_gflops(spec: dict) -> dict:
    """GFLOP/s of a 40000 x 2048 x 2048 matrix product, fp32 and bf16."""
    return {name: _gemm(name) for name in ("fp32", "bf16")}


WORKERS = {"plain": plain_port, "avocado": avocado, "matmul": matmul_gflops}


def worker(spec: dict) -> None:
    import torch

    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    paper = spec.get("config") == "paper" and spec.get("gemm", True)
    # The machine is shared: the GEMM peak is measured in the same process just before and
    # after the timed steps, so that the achieved fraction compares like with like.
    before = _gemm(spec.get("precision", "fp32"), reps=1) if paper else None
    result = WORKERS[spec["impl"]](spec)
    if paper:
        result["gemm_gflops"] = (before + _gemm(spec.get("precision", "fp32"), reps=1)) / 2
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result))


def run(spec: dict, command: list[str] | None = None) -> dict:
    """Run one contender in its own process; ``command`` (default: this file's worker) gets
    the spec as its last argument and prints ``RESULT {json}``."""
    env = dict(os.environ)
    proc = subprocess.run(
        [*(command or [sys.executable, __file__, "--worker"]), json.dumps(spec)],
        capture_output=True, text=True, env=env, check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")


def paper_flops_per_sample() -> float:
    """Training FLOPs of one paper-config sample (forward x 3, the usual estimate)."""
    width = PAPER["n_biosample_factors"] + PAPER["n_assay_factors"] + 110
    n = PAPER["n_nodes"]
    return 3 * 2 * (width * n + n * n + n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="speed only, no accuracy runs")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the accuracy runs")
    parser.add_argument("--plain-accuracy", action="store_true",
                        help="also train the plain port for the accuracy comparison (~3 min)")
    parser.add_argument("--small-steps", type=int, default=113,
                        help="batches of the small speed rows (one fit() call incl. setup)")
    parser.add_argument("--paper-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--configs", default="small,paper", help="which speed rows to run")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    import torch

    threads = args.threads or torch.get_num_threads()
    print(f"# torch {torch.__version__}, {threads} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, {os.cpu_count()} CPUs")
    gflops = run({"impl": "matmul", "threads": threads})
    print(f"# matmul 40000x2048x2048: fp32 {gflops['fp32']:.0f} GFLOP/s, "
          f"bf16 {gflops['bf16']:.0f} GFLOP/s")

    rows = []

    def add(label, config, spec):
        t0 = time.perf_counter()
        res = run(dict(spec, config=config, threads=threads))
        res["wall"] = time.perf_counter() - t0
        rows.append((label, config, res))
        print(f"#   done {label} [{config}] in {res['wall']:.0f} s", flush=True)

    speed = {"epochs": 0, "warmup": 3}
    configs = [c for c in args.configs.split(",") if c]
    if "small" in configs:
        add("plain port", "small", dict(speed, impl="plain", steps=args.small_steps))
        add("avocado_core fp32", "small", dict(speed, impl="avocado", precision="fp32",
                                               steps=args.small_steps))
        add("avocado_core fp32, no kernels", "small",
            dict(speed, impl="avocado", precision="fp32", kernels=False,
                 steps=args.small_steps))
        add("avocado_core bf16", "small", dict(speed, impl="avocado", precision="bf16",
                                               steps=args.small_steps))
    paper = {"epochs": 0, "warmup": 1, "steps": args.paper_steps}
    if "paper" in configs:
        add("plain port", "paper", dict(paper, impl="plain"))
        add("avocado_core fp32", "paper", dict(paper, impl="avocado", precision="fp32"))
        add("avocado_core bf16", "paper", dict(paper, impl="avocado", precision="bf16"))
    if not args.quick:
        acc = {"epochs": args.epochs, "warmup": 0}
        if args.plain_accuracy:
            add(f"plain port, {args.epochs} ep", "small", dict(acc, impl="plain"))
        add(f"avocado_core fp32, {args.epochs} ep", "small",
            dict(acc, impl="avocado", precision="fp32"))
        add(f"avocado_core bf16, {args.epochs} ep", "small",
            dict(acc, impl="avocado", precision="bf16"))

    base = {cc: r["samples_per_s"] for lab, cc, r in rows if lab == "plain port"}
    head = (f"| {'contender':34s} | config | samples/s | s/epoch | vs plain | peak RSS MB "
            f"| held-out MSE | r     | achieved / GEMM GFLOP/s |")
    print()
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for label, config, res in rows:
        sps = res["samples_per_s"]
        bs = SMALL["batch_size"] if config == "small" else PAPER["batch_size"]
        rel = sps / base.get(config, float("nan"))
        mse = f"{res['mse']:.4f}" if "mse" in res else "-"
        r = f"{res['r']:.3f}" if "r" in res else "-"
        peak = "-"
        if config == "paper":
            prec = "bf16" if "bf16" in label else "fp32"
            peak = (f"{100 * sps * paper_flops_per_sample() / 1e9 / res['gemm_gflops']:.0f}% "
                    f"of {res['gemm_gflops']:.0f} {prec}")
        print(f"| {label:34s} | {config:6s} | {sps:9,.0f} | {EPOCH_BATCHES * bs / sps:7.1f} "
              f"| {rel:7.1f}x | {res['peak_rss_mb']:11.0f} | {mse:12s} | {r:5s} | {peak:23s} |")
    print("# the original (avocado-epigenome 0.4.0): benchmarks/bench_vs_original.py runs it "
          "beside avocado_core")
    for label, config, res in rows:
        if "loss" in res:
            print(f"# {label} loss per epoch: " + " ".join(f"{v:.4f}" for v in res["loss"]))


if __name__ == "__main__":
    main()
