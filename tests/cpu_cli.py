"""``avocado`` arguments for the CPU tests: a command that takes ``--device`` runs on the CPU.

Without it the command would choose CUDA where a GPU is present (and the suite's guard of the
default device, ``conftest.py``, fails the test); ``--device`` given by the test is kept.
"""

from __future__ import annotations

import click

from avocado_core.cli import main

__all__ = ["on_cpu"]


def on_cpu(args: list[str]) -> list[str]:
    """``args`` plus ``--device cpu`` when their (sub)command has a ``--device`` option that
    ``args`` do not set.

    Parameters
    ----------
    args: list of str
        The arguments of ``avocado``, e.g. ``["train", "store/", "model/"]``.

    Returns
    -------
    list of str
    """
    command: click.Command = main
    for arg in args:
        if not isinstance(command, click.Group) or arg not in command.commands:
            break
        command = command.commands[arg]
    takes_device = any(p.name == "device" for p in command.params)
    if not takes_device or any(a == "--device" or a.startswith("--device=") for a in args):
        return list(args)
    return [*args, "--device", "cpu"]
