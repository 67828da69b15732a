"""``python -m avocado_core``: the same as the ``avocado`` command."""

from avocado_core.cli import main

if __name__ == "__main__":
    main(prog_name="avocado")
