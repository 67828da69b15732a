"""``avocado fit-biosamples`` / ``fit-assays``: add new rows to a trained model, the rest frozen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import EXISTING_DIR, NEW_DIR, quiet_option
from .train import (
    device_option,
    fit_options,
    max_memory_option,
    memory_limit,
    precision_option,
)

__all__ = ["fit_biosamples", "fit_assays"]


def _fit_new_rows(
    kind: str,
    store_path: Path,
    model_path: Path,
    names: tuple[str, ...],
    output: Path | None,
    loop: dict[str, Any],
    device: str | None,
    precision: str | None,
    max_memory: str | None,
    quiet: bool,
) -> None:
    from .._paths import writable_dir
    from ..model import Avocado
    from ..store import TrackStore

    writable_dir(output or model_path, "model folder")  # now, not after fitting
    store = TrackStore(store_path)
    model = Avocado.load(model_path, device=device)
    if precision is not None:
        model.precision = precision
    if int(model.n_positions) != int(store.n_bins):
        raise click.UsageError(
            f"the model covers {model.n_positions:,} positions but {store_path} has "
            f"{store.n_bins:,} bins"
        )
    before = list(model.biosamples if kind == "biosample" else model.assays)
    pos = 0 if kind == "biosample" else 1
    new = sorted({k[pos] for k in store.experiments()} - set(before))
    if not names and not new:
        raise click.UsageError(
            f"{store_path} has no observed tracks of {kind}s that the model does not know "
            f"(it knows {', '.join(before)})"
        )
    fit = model.fit_biosamples if kind == "biosample" else model.fit_assays
    with memory_limit(max_memory):
        history = fit(store, **loop, progress=not quiet, **{f"{kind}s": list(names) or None})
    after = model.biosamples if kind == "biosample" else model.assays
    added = [n for n in after if n not in before]
    target = output or model_path
    model.save(target)
    loss = history.get("loss", [])
    tail = f", final loss {loss[-1]:.4f}" if loss else ""
    click.echo(f"Added {len(added)} {kind}s ({', '.join(added)}){tail}; saved to {target}")


def _make(kind: str) -> click.Command:
    flag = f"--{kind}"
    example = "E999" if kind == "biosample" else "H3K9ac"

    @click.command(
        name=f"fit-{kind}s",
        help=f"""Add new {kind}s of STORE to MODEL, training only their embedding rows.

    Everything else in the model (network, genome factors, the other {kind}s) stays as it was,
    so existing imputations do not change. By default every {kind} of STORE with observed tracks
    that the model does not know is added; MODEL is updated in place unless --output.

    \b
    Examples:
      avocado fit-{kind}s store/ model/ --epochs 5
      avocado fit-{kind}s store/ model/ {flag} {example} --output model-plus/
    """,
    )
    @click.argument("store_path", metavar="STORE", type=EXISTING_DIR)
    @click.argument("model_path", metavar="MODEL", type=EXISTING_DIR)
    @click.option(
        flag, "names", multiple=True,
        help=f"A new {kind} to add (repeatable) [default: all new ones].",
    )
    @click.option(
        "-o", "--output", type=NEW_DIR,
        help="Save the grown model here instead of over MODEL.",
    )
    @fit_options(epochs=10, choose=False)
    @device_option
    @precision_option
    @max_memory_option
    @quiet_option
    def command(**kwargs) -> None:
        _fit_new_rows(kind, **kwargs)

    return command


fit_biosamples = _make("biosample")
fit_assays = _make("assay")
