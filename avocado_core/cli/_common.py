"""What every command shares: error handling, common options and small parsers.

Commands stay thin: they parse options, call one library function and print a short summary.
Expected failures (a bad name, a missing file, a malformed value) are raised by the library as
``ValueError`` / ``KeyError`` / ``OSError`` subclasses; :class:`AvocadoGroup` turns them into a
one-line ``Error: ...`` on stderr and exit code 1, never a traceback. Anything else (a bug, out
of memory) is also one line, prefixed by the exception's type. ``avocado --debug`` (or
``AVOCADO_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable

import click

from ..errors import AvocadoError

__all__ = [
    "AvocadoGroup",
    "EXPECTED_ERRORS",
    "error_message",
    "quiet_option",
    "EXISTING_FILE",
    "EXISTING_DIR",
    "NEW_FILE",
    "NEW_DIR",
    "parse_experiment",
    "parse_experiments",
    "read_experiment_list",
    "experiments_options",
    "named_experiments",
    "write_table",
    "echo_table",
]

#: Exceptions that mean "the user asked for something that cannot be done", not "a bug".
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    AvocadoError,
    ValueError,
    KeyError,
    OSError,
    ImportError,
)


def error_message(exc: BaseException) -> str:
    """One line describing ``exc`` for a person.

    ``KeyError`` keeps its message rather than its repr, ``OSError`` reads as
    "No such file or directory: path", and line breaks inside the message are folded so that
    the whole message fits on one line.
    """
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.strerror}: {exc.filename}"
    elif isinstance(exc, KeyError) and not isinstance(exc, AvocadoError) and len(exc.args) == 1:
        text = str(exc.args[0])
    else:
        text = str(exc)
    text = " ".join(text.split())
    return text or type(exc).__name__


def _debug(ctx: click.Context | None) -> bool:
    if os.environ.get("AVOCADO_DEBUG", "").strip() not in ("", "0"):
        return True
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and isinstance(root.obj, dict) and root.obj.get("debug"))


class AvocadoGroup(click.Group):
    """A click group whose commands report expected errors as one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # click would print the usage line and a hint above the error; keep one line.
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            raise click.UsageError(" ".join(exc.format_message().split()) + hint) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # `avocado info ... | head`: the reader left, nothing is wrong
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (silence the flush at exit)
            ctx.exit(0)
        except EXPECTED_ERRORS as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(error_message(exc)) from None
        except Exception as exc:  # a bug or an environment failure (e.g. out of GPU memory)
            if _debug(ctx):
                raise
            raise click.ClickException(
                f"{type(exc).__name__}: {error_message(exc)} "
                "(run `avocado --debug ...` for the traceback)"
            ) from None


#: click parameter types: an existing file / folder, and a path to write (file / folder).
EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
NEW_FILE = click.Path(dir_okay=False, path_type=Path)
NEW_DIR = click.Path(file_okay=False, path_type=Path)

quiet_option = click.option(
    "-q", "--quiet", is_flag=True, help="No progress bars, only the final summary."
)


def parse_experiment(text: str) -> tuple[str, str]:
    """``"E003:H3K4me3"`` (or ``"E003.H3K4me3"``, ``"E003,H3K4me3"``) -> ``("E003", "H3K4me3")``."""
    for sep in (":", ",", "\t", "."):
        if sep in text:
            biosample, _, assay = text.strip().partition(sep)
            if biosample and assay:
                return biosample.strip(), assay.strip()
    raise click.BadParameter(
        f"{text!r} is not an experiment; expected BIOSAMPLE:ASSAY, e.g. E003:H3K4me3"
    )


def parse_experiments(values: Iterable[str]) -> list[tuple[str, str]]:
    """Parse repeated ``-e BIOSAMPLE:ASSAY`` options (each may hold several, comma-free)."""
    return [parse_experiment(v) for v in values]


def read_experiment_list(path: str | Path) -> list[tuple[str, str]]:
    """Experiments from a file: one ``BIOSAMPLE ASSAY`` (tab / colon separated) per line.

    A header line starting with ``biosample`` and lines starting with ``#`` are skipped.
    """
    out: list[tuple[str, str]] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.lower().startswith("biosample"):
            continue
        fields = line.split("\t") if "\t" in line else line.replace(":", " ").split()
        if len(fields) < 2:
            raise click.BadParameter(
                f"line {line!r} of {path} has no assay; expected BIOSAMPLE<TAB>ASSAY",
                param_hint="--experiments-file",
            )
        out.append((fields[0].strip(), fields[1].strip()))
    return out


def experiments_options(func):
    """Decorate an imputing command with ``-e/--experiment BIOSAMPLE:ASSAY`` (repeatable) and
    ``--experiments-file``; :func:`named_experiments` reads what they name."""
    func = click.option(
        "--experiments-file", type=EXISTING_FILE,
        help="File of experiments, one BIOSAMPLE<TAB>ASSAY per line.",
    )(func)
    return click.option(
        "-e", "--experiment", "experiments", multiple=True, metavar="BIOSAMPLE:ASSAY",
        help="An experiment to impute (repeatable).",
    )(func)


def named_experiments(experiments: Iterable[str], experiments_file: Path | None
                      ) -> list[tuple[str, str]]:
    """The experiments of :func:`experiments_options`: those of ``-e``, then the file's."""
    chosen = parse_experiments(experiments)
    if experiments_file is not None:
        chosen += read_experiment_list(experiments_file)
    return chosen


def write_table(df: Any, path: str | Path, index: bool = False) -> Path:
    """Write a DataFrame as TSV atomically (temporary file in the same folder + rename)."""
    from .._io import write_text

    return write_text(path, df.to_csv(sep="\t", index=index))


def echo_table(rows: list[tuple[str, Any]], indent: int = 0) -> None:
    """Print ``name: value`` rows with the values aligned."""
    if not rows:
        return
    width = max(len(str(k)) for k, _ in rows)
    pad = " " * indent
    for key, value in rows:
        click.echo(f"{pad}{str(key) + ':':<{width + 1}} {value}")
