"""``avocado info``: what a track store, a model or a workspace holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import AvocadoValueError
from ._common import EXISTING_DIR, echo_table

__all__ = ["info", "describe_store", "describe_model", "describe_genome_model", "detect_kind"]


def _names(names: list[str], limit: int = 8) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names) - limit} more)" if len(names) > limit else shown


def detect_kind(path: Path) -> str:
    """The kind of ``path``, from its files.

    One of ``"workspace"``, ``"store"``, ``"model"`` or ``"genome model"``.
    """
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if (path / "workspace.json").is_file():
        return "workspace"
    if (path / "catalog.tsv").is_file():
        return "store"
    if (path / "config.json").is_file():
        return "model"
    if (path / "genome.json").is_file():
        return "genome model"
    raise AvocadoValueError(
        f"{path} is not a track store (no catalog.tsv), a model (no config.json), a genome "
        "model (no genome.json) or a workspace (no workspace.json)"
    )


def describe_store(store: Any) -> dict[str, Any]:
    """A JSON-able summary of a TrackStore."""
    regions = store.regions
    catalog = store.catalog
    biosamples = list(store.biosamples.index)
    assays = list(store.assays.index)
    kinds = catalog["kind"].value_counts().to_dict() if len(catalog) else {}
    observed = catalog[catalog["kind"] == "observed"] if len(catalog) else catalog
    return {
        "kind": "store",
        "path": str(store.path) if hasattr(store, "path") else None,
        "n_bins": int(store.n_bins),
        "bin_size": int(regions.bin_size),
        "n_intervals": int(len(regions.intervals)),
        "chroms": [str(c) for c in regions.chroms],
        "biosamples": [str(b) for b in biosamples],
        "assays": [str(a) for a in assays],
        "tracks": {str(k): int(v) for k, v in kinds.items()},
        "observed_biosamples": (
            sorted(map(str, set(observed["biosample"]))) if len(observed) else []
        ),
        "observed_assays": sorted(map(str, set(observed["assay"]))) if len(observed) else [],
        "synthetic": store.info.get("synthetic"),
    }


def describe_model(model: Any) -> dict[str, Any]:
    """A JSON-able summary of an Avocado model."""
    history = dict(getattr(model, "history", {}) or {})
    config = {
        k: (v if isinstance(v, (int, float, str, bool, dict, type(None))) else str(v))
        for k, v in dict(getattr(model, "config", {}) or {}).items()
        if k not in ("biosamples", "assays", "celltypes")
    }
    return {
        "kind": "model",
        "biosamples": [str(b) for b in model.biosamples],
        "assays": [str(a) for a in model.assays],
        "n_positions": int(model.n_positions),
        "config": config,
        "epochs_trained": len(history.get("loss", [])),
        "history": {k: [float(x) for x in v][-5:] for k, v in history.items() if len(v)},
        "choice": getattr(model, "choice", None),
    }


def describe_genome_model(genome: Any) -> dict[str, Any]:
    """A JSON-able summary of an assembled genome model (``genome_wide.GenomeModel``)."""
    config = {k: v for k, v in genome.config.items() if k not in ("biosamples", "assays")}
    return {
        "kind": "genome model",
        "biosamples": [str(b) for b in genome.biosamples],
        "assays": [str(a) for a in genome.assays],
        "n_positions": int(genome.regions.n_bins),
        "chroms": [str(c) for c in genome.chroms],
        "config": config,
        "epochs_trained": 0,
        "history": {},
    }


def _print_store(d: dict[str, Any]) -> None:
    n_b, n_a = len(d["biosamples"]), len(d["assays"])
    observed = d["tracks"].get("observed", 0)
    tensor = f" of {n_b * n_a} ({observed / (n_b * n_a):.0%} of the tensor)" if n_b * n_a else ""
    rows = [
        ("Regions", f"{d['n_intervals']:,} intervals on {len(d['chroms'])} chromosomes, "
                    f"{d['n_bins']:,} bins of {d['bin_size']} bp"),
        ("Chromosomes", _names(d["chroms"], 12)),
        ("Biosamples", f"{n_b} ({_names(d['biosamples'])})" if n_b else "0"),
        ("Assays", f"{n_a} ({_names(d['assays'])})" if n_a else "0"),
        ("Observed tracks", f"{observed}{tensor}"),
    ]
    if d.get("synthetic"):
        rows.append(("Signal", f"SYNTHETIC: {d['synthetic'].get('description', 'generated')}"))
    rows += [(f"{k.capitalize()} tracks", v) for k, v in d["tracks"].items() if k != "observed"]
    echo_table(rows)


def _print_model(d: dict[str, Any]) -> None:
    rows = [
        ("Biosamples", f"{len(d['biosamples'])} ({_names(d['biosamples'])})"),
        ("Assays", f"{len(d['assays'])} ({_names(d['assays'])})"),
        ("Positions", f"{d['n_positions']:,}"),
    ]
    if d.get("models", 1) > 1:
        rows.append(("Models", f"{d['models']}: an ensemble (the others in members/); "
                               "the rest of this summary is the first's"))
    if "chroms" in d:
        rows.append(("Chromosomes", f"{len(d['chroms'])} ({_names(d['chroms'], 12)})"))
    else:
        rows.append(("Epochs trained", d["epochs_trained"]))
    for key, values in d["history"].items():
        rows.append((f"Last {key}", f"{values[-1]:.4g}"))
    if d.get("choice"):
        from ..choice import describe_choice

        rows.append(("Settings", f"chosen on validation tracks: {describe_choice(d['choice'])}"))
    echo_table(rows)
    if d["config"]:
        click.echo("Config:")
        echo_table(sorted(d["config"].items()), indent=2)


@click.command()
@click.argument("path", type=EXISTING_DIR)
@click.option("--tracks", "show_tracks", is_flag=True, help="Also list every track (stores only).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(path: Path, show_tracks: bool, as_json: bool) -> None:
    """Show what a track store, a model, a genome model or a workspace holds.

    \b
    Examples:
      avocado info store/
      avocado info model/ --json
      avocado info store/ --tracks
      avocado info genome-model/
    """
    kind = detect_kind(path)
    out: dict[str, Any] = {"path": str(path), "kind": kind}
    store = None
    if kind == "workspace":
        from ..workspace import Workspace

        ws = Workspace(path)
        store = ws.store
        out["store"] = describe_store(store)
        out["model"] = describe_model(ws.model) if ws.has_model else None
    elif kind == "store":
        from ..store import TrackStore

        store = TrackStore(path)
        out.update(describe_store(store))
    elif kind == "genome model":
        from ..genome_wide import GenomeModel

        out.update(describe_genome_model(GenomeModel.load(path, device="cpu")))
    else:
        from ..ensemble import member_paths
        from ..model import Avocado

        out.update(describe_model(Avocado.load(path, device="cpu")))
        out["models"] = len(member_paths(path))
    out["path"], out["kind"] = str(path), kind

    if as_json:
        if show_tracks and store is not None:
            out["catalog"] = store.catalog.to_dict(orient="records")
        click.echo(json.dumps(out, indent=2, default=str))
        return

    click.echo(f"{kind.capitalize()}: {path}")
    if kind == "store":
        _print_store(out)
    elif kind in ("model", "genome model"):
        _print_model(out)
    else:
        click.echo("Store:")
        _print_store(out["store"])
        click.echo("Model:" if out["model"] else "Model: none (run `avocado train`)")
        if out["model"]:
            _print_model(out["model"])
    if show_tracks and store is not None:
        click.echo(store.catalog.to_csv(sep="\t", index=False), nl=False)
