"""Ten one-epoch ``fit`` calls against one ten-epoch call, on the real pilot tracks (issue #19).

The small configuration trains on 24 pilot tracks with E065 H3K4me3 held out, ``seed=0``:
once with ``n_epochs=10``, once as ten calls of ``n_epochs=1`` (which continue the optimizer),
and once as ten calls with ``reset_optimizer=True`` (a fresh Adam optimizer per call, the
former behaviour). The table gives the held-out MSE and Pearson r of each, and the largest
relative difference between the loss curves of the first two. Accuracy, not speed: the
machine only sets how long it takes (about 2 minutes on one core)::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_continue.py
"""

from __future__ import annotations

import argparse

import numpy as np
from pilot import add_positions_option, pilot_tracks

from avocado_core import Avocado

HELD_OUT = ("E065", "H3K4me3")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--epoch-size", type=int, default=113, help="batches per epoch")
    add_positions_option(p)
    args = p.parse_args()

    tracks = pilot_tracks(args.positions)
    n = len(next(iter(tracks.values())))
    train = {k: v for k, v in tracks.items() if k != HELD_OUT}
    truth = np.asarray(tracks[HELD_OUT], dtype=np.float64)
    fit = {"epoch_size": args.epoch_size, "seed": 0, "progress": False, "choose_settings": False}

    def model() -> Avocado:  # the original tutorial's configuration, as documented
        return Avocado.from_preset("original-small", tracks, n, seed=0, device="cpu")

    one = model()
    one.fit(train, n_epochs=args.epochs, **fit)
    loop, fresh = model(), model()
    for _ in range(args.epochs):
        loop.fit(train, n_epochs=1, **fit)
        fresh.fit(train, n_epochs=1, reset_optimizer=True, **fit)

    print(f"{len(train)} training tracks, {n:,} bins, held out {':'.join(HELD_OUT)}, "
          f"small config, {args.epochs} epochs of {args.epoch_size} batches, seed 0\n")
    print("| training | held-out MSE | Pearson r |")
    print("|---|---|---|")
    for name, m in ((f"one call, {args.epochs} epochs", one),
                    (f"{args.epochs} calls of 1 epoch", loop),
                    (f"{args.epochs} calls of 1 epoch, reset_optimizer=True", fresh)):
        pred = m.predict(*HELD_OUT).astype(np.float64)
        print(f"| {name} | {np.mean((pred - truth) ** 2):.4f} | "
              f"{np.corrcoef(pred, truth)[0, 1]:.4f} |")
    a, b = np.array(one.history["loss"]), np.array(loop.history["loss"])
    print(f"\nlargest relative difference of the epoch losses (one call vs calls): "
          f"{np.max(np.abs(a - b) / a):.1e}")


if __name__ == "__main__":
    main()
