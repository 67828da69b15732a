"""The ``avocado`` command line: one small command per module, each a thin wrapper over the library.

Run ``avocado --help`` for the list of commands and ``avocado COMMAND --help`` for each one's
options and an example. The library is imported inside each command, so ``--help`` is quick.
"""

from __future__ import annotations

import importlib
import warnings

import click

from .. import __version__
from ._common import AvocadoGroup

__all__ = ["main"]

#: command name -> (module, attribute); loaded when the group is built.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "info"),
    "ingest": ("ingest", "ingest"),
    "export": ("export", "export"),
    "train": ("train", "train"),
    "fit-biosamples": ("fit_biosamples", "fit_biosamples"),
    "fit-assays": ("fit_biosamples", "fit_assays"),
    "fit-genome": ("fit_genome", "fit_genome"),
    "assemble-genome": ("genome", "assemble_genome"),
    "export-genome": ("genome", "export_genome"),
    "import-original": ("original", "import_original"),
    "export-original": ("original", "export_original"),
    "impute": ("impute", "impute"),
    "embed": ("embed", "embed"),
    "evaluate": ("evaluate", "evaluate"),
    "select": ("select", "select"),
    "serve": ("serve", "serve"),
    "demo": ("demo", "demo"),
    "features": ("features", "features"),
    "fetch": ("fetch", "fetch"),
}


@click.group(
    cls=AvocadoGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="avocado")
@click.option(
    "--debug",
    is_flag=True,
    help="Show the full traceback on errors (also AVOCADO_DEBUG=1).",
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Avocado: impute epigenomic tracks by deep tensor factorization.

    \b
    A typical session:
      avocado ingest store/ --regions regions.bed --manifest bigwigs.tsv
      avocado train store/ model/ --config small --epochs 10
      avocado impute store/ model/ --missing --bigwig-dir imputed/
      avocado serve workspace/
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if not debug:
        # Library warnings (e.g. "UMAP needs at least 8 points ... using PCA") as one line each,
        # for this command only (the embedding process, e.g. a test runner, gets its own back).
        previous = warnings.showwarning
        warnings.showwarning = _one_line_warning
        ctx.call_on_close(lambda: setattr(warnings, "showwarning", previous))


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"Warning: {' '.join(str(message).split())}", err=True)


for _name, (_module, _attr) in COMMANDS.items():
    try:
        _mod = importlib.import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"{__name__}.{_module}":
            raise
        continue
    main.add_command(getattr(_mod, _attr), _name)

#: Other names of commands (the original package's and the contract's names).
ALIASES = {"fit-positions": "fit-genome"}
for _alias, _target in ALIASES.items():
    if _target in main.commands:
        _cmd = main.commands[_target]
        main.add_command(
            click.Command(
                _alias, callback=_cmd.callback, params=_cmd.params, help=_cmd.help,
                short_help=f"Alias of {_target}.", context_settings=_cmd.context_settings,
            )
        )
