"""Where things live: every command in ``avocado_core/cli/``, which the library never imports;
no module takes another's private names; no import loop, not even through an import inside a
function; no module longer than a newcomer can read (``MAX_LINES``); one preset constructor, one
resolution table and one home for atomic writes (``_io``). Checked on the source's syntax
trees."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "avocado_core"
APP = PACKAGE.parent / "dashboard"
#: Modules whose names start with an underscore but are meant to be imported within the package.
PRIVATE_MODULES = {p.stem for p in PACKAGE.glob("_*.py") if not p.stem.startswith("__")}


def _modules(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _library() -> list[Path]:
    """The library: every module but the command line (``cli/``) and ``python -m`` itself."""
    return [p for p in _modules(PACKAGE)
            if "cli" not in p.relative_to(PACKAGE).parts and p.name != "__main__.py"]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_modules(path: Path) -> list[str]:
    """Absolute dotted names of every module ``path`` imports (relative imports resolved), at
    the top of the module or inside a function alike."""
    root = PACKAGE if path.is_relative_to(PACKAGE) else APP
    package = [root.name, *path.relative_to(root).parent.parts]
    out = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.append(module)
            out += [f"{module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            out.append(str(node.args[0].value))
    return out


def test_the_library_never_imports_the_command_line():
    offenders = {str(p.relative_to(PACKAGE)): m for p in _library() for m in _imported_modules(p)
                 if m == "avocado_core.cli" or m.startswith("avocado_core.cli.")}
    assert offenders == {}
    # and the resolver sees the imports it is meant to see
    assert "avocado_core.cli" in _imported_modules(PACKAGE / "__main__.py")
    assert "avocado_core.errors.AvocadoError" in _imported_modules(PACKAGE / "cli" / "_common.py")


def test_no_module_of_the_package_imports_the_app():
    """Not even ``avocado serve``: it finds the app through the ``avocado.apps`` entry point."""
    offenders = {str(p.relative_to(PACKAGE)): m for p in _modules(PACKAGE)
                 for m in _imported_modules(p) if m == "dashboard" or m.startswith("dashboard.")}
    assert offenders == {}
    # and the resolver reads serve.py's imports
    serve = _imported_modules(PACKAGE / "cli" / "serve.py")
    assert "avocado_core.errors.AvocadoValueError" in serve


def test_no_second_command_line_outside_cli():
    """``python -m avocado_core.evaluation`` / ``.distributed`` are gone: no ``main`` and no
    ``if __name__ == "__main__"`` in the library."""
    found = []
    for path in _library():
        for node in _tree(path).body:
            if isinstance(node, ast.FunctionDef) and node.name == "main":
                found.append(f"{path.name}: def main")
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                found.append(f"{path.name}: if __name__ == '__main__'")
    assert found == []


def test_no_module_takes_another_modules_private_names():
    found = []
    for path in [*_modules(PACKAGE), *_modules(APP)]:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                found += [f"{path.relative_to(PACKAGE.parent)}: {a.name}" for a in node.names
                          if a.name.startswith("_") and a.name not in PRIVATE_MODULES
                          and not a.name.startswith("__")]
    assert found == []


def _calls(path: Path):
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


def test_models_are_built_from_names_only_by_the_preset_constructor():
    """``Avocado.from_preset`` is the one place that turns experiments and a preset into a
    model (with one biosample order); the library elsewhere only reloads saved configs."""
    found = []
    for path in [*_modules(PACKAGE), *_modules(APP)]:
        if path.name == "model.py":
            continue
        for func, node in _calls(path):
            if func in ("Avocado.small", "cls.small"):
                found.append(f"{path.name}: {func}")
            elif func == "Avocado" and (node.args or any(k.arg for k in node.keywords)
                                        and not all(k.arg in (None, "device")
                                                    for k in node.keywords)):
                found.append(f"{path.name}: {ast.unparse(node)}")
    assert found == []
    users = {p.relative_to(PACKAGE).as_posix() for p in _modules(PACKAGE)
             for func, _ in _calls(p) if func.endswith("from_preset")}
    assert {"cli/train.py", "evaluation/nested.py", "workspace_build.py"} <= users


def test_one_resolution_table():
    """{"25bp": 1, "250bp": 10, "5kbp": 200} is written once (regions.GENOME_RESOLUTIONS)."""
    found = []
    for path in [*_modules(PACKAGE), *_modules(APP)]:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Dict) and any(
                    isinstance(k, ast.Constant) and k.value == "5kbp" for k in node.keys) and any(
                    isinstance(v, ast.Constant) and v.value == 200 for v in node.values):
                found.append(path.relative_to(PACKAGE.parent).as_posix())
            if isinstance(node, ast.Tuple) and [getattr(e, "value", None) for e in node.elts] \
                    == ["5kbp", 200]:
                found.append(path.relative_to(PACKAGE.parent).as_posix())
    assert found == ["avocado_core/regions.py"]


@pytest.mark.parametrize("call", ["os.replace", "os.rename", "tempfile.mkstemp",
                                  "tempfile.mkdtemp", "tempfile.NamedTemporaryFile"])
def test_atomic_writes_live_in_io(call):
    found = [p.relative_to(PACKAGE).as_posix() for p in _modules(PACKAGE) if p.name != "_io.py"
             for func, _ in _calls(p) if func == call]
    assert found == []


#: The longest a module may be: past it, a module holds more than one job (split it by job).
MAX_LINES = 800


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the project it imports (a package's ``__init__`` counts as the
    package; an import of a name inside a module counts as the module)."""
    paths = [*_modules(PACKAGE), *_modules(APP)]
    names = {_module_name(p) for p in paths}

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in names:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph = {}
    for path in paths:
        me = _module_name(path)
        graph[me] = {o for m in _imported_modules(path) if (o := owner(m)) and o != me
                     and not me.startswith(f"{o}.")}  # a submodule's import of its package
    return graph


def _loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import loops of ``graph``: its strongly connected parts of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while not part or part[-1] != node:
                part.append(stack.pop())
            if len(part) > 1:
                loops.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return loops


def test_no_import_loops_even_through_imports_inside_functions():
    """A lazy import that closes a loop is a loop: the model never imports what imports it,
    and the app's background launcher never imports the app."""
    graph = _import_graph()
    assert _loops(graph) == []
    # the resolver sees lazy imports and their targets
    assert "avocado_core.model" in graph["avocado_core.evaluation.nested"]
    assert "avocado_core.genome_wide" in graph["avocado_core.original"]
    assert "dashboard.pages.design" in graph["dashboard.app"]  # inside the app factory
    assert _loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_longer_than_max_lines():
    long = {p.relative_to(PACKAGE.parent).as_posix(): n
            for p in [*_modules(PACKAGE), *_modules(APP)]
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_test_modules_have_unique_names():
    """pytest imports test modules by their base name (the tests have no __init__.py): two of
    one name in different folders stop the collection."""
    names = [p.name for p in (PACKAGE.parent / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
