"""The package's import structure, read from the source with ``ast`` (nothing is imported).

- No import cycle among modules, counting imports made inside functions too.
- Parts import each other only as the table below allows (docs/architecture.md draws it).
- The modules that check a user's input before any work import no torch, even indirectly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Part -> the parts it may import. A part is a sub-package (``model``) or a top-level module
#: (``cli``, ``files``); ``root`` is ``neuralizer/__init__.py`` (the version, lazy names).
#: ``files``, ``errors``, ``lazy`` and ``jsonconfig`` are the ground floor: they import no other
#: part.
ALLOWED: dict[str, set[str]] = {
    "root": {"lazy"},
    "files": set(),
    "errors": set(),
    "lazy": set(),
    "jsonconfig": set(),
    "model": {"root", "lazy", "files"},
    "data": {"files"},
    "tasks": {"jsonconfig", "data", "model"},
    "train": {"files", "jsonconfig", "model", "data", "tasks"},
    "infer": {"lazy", "files", "errors", "model", "data", "tasks"},
    "evaluate": {"root", "files", "jsonconfig", "model", "data", "tasks", "infer"},
    "demo": {"files", "model", "data", "tasks", "infer"},
    "app": {"errors", "model", "infer"},
    "cli": {"errors", "model", "data", "tasks", "train", "infer", "evaluate", "demo", "app"},
    "__main__": {"cli"},
}

#: (importer, imported part): imports that must stay inside functions, and why.
INSIDE_FUNCTIONS = {
    # `neuralizer <command>` parses its arguments and checks the user's files within a second:
    # each command imports its part (and so torch) only when it runs.
    **{("cli", part): "commands load their part when run" for part in ALLOWED["cli"] - {"errors"}},
}

#: Modules whose import must not import torch (the fast input checks of `neuralizer predict`,
#: PredictOptions and the plan; memory sizes; checkpoint metadata). Inside them, the runner
#: imports the torch-side modules (infer.engine, infer.api, infer.volume) inside functions.
TORCH_FREE = (
    "neuralizer.cli",
    "neuralizer.errors",
    "neuralizer.files",
    "neuralizer.infer.cli",
    "neuralizer.infer.folder",
    "neuralizer.infer.paths",
    "neuralizer.infer.plan",
    "neuralizer.infer.resources",
    "neuralizer.infer.run",
    "neuralizer.jsonconfig",
    "neuralizer.lazy",
    "neuralizer.model.config",
    "neuralizer.model.limits",
    "neuralizer.model.metadata",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


class _Imports(ast.NodeVisitor):
    """(imported module, inside a function, line) of every ``neuralizer`` import; imports under
    ``if TYPE_CHECKING:`` are for type checkers only and skipped. ``external`` collects the
    top-level packages imported at module level."""

    def __init__(self, module: str, is_package: bool, modules: set[str]) -> None:
        self.module, self.is_package, self.modules = module, is_package, modules
        self.found: list[tuple[str, bool, int]] = []
        self.external: set[str] = set()
        self.depth = 0

    def visit_FunctionDef(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            self.generic_visit(node)

    def _add(self, target: str, line: int) -> None:
        if target.split(".")[0] == "neuralizer":
            self.found.append((target, self.depth > 0, line))
        elif self.depth == 0:
            self.external.add(target.split(".")[0])

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        target = node.module or ""
        if node.level:
            base = self.module.split(".")[: None if self.is_package else -1]
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        for alias in node.names:  # `from pkg import submodule` imports the submodule
            full = f"{target}.{alias.name}"
            self._add(full if full in self.modules else target, node.lineno)


def _scan():
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    imports, external = {}, {}
    for module, path in paths.items():
        visitor = _Imports(module, path.name == "__init__.py", set(paths))
        visitor.visit(ast.parse(path.read_text(), str(path)))
        imports[module] = [(t, lazy, line) for t, lazy, line in visitor.found if t in paths]
        external[module] = visitor.external
    return imports, external


IMPORTS, EXTERNAL = _scan()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_scan_sees_imports_inside_functions():
    lazy = {(m, t) for m, found in IMPORTS.items() for t, inside, _ in found if inside}
    assert ("neuralizer.cli", "neuralizer.demo") in lazy


def test_no_import_cycle_among_modules():
    graph = {m: {t for t, _, _ in found} for m, found in IMPORTS.items()}
    assert _cycles(graph) == []


def test_parts_import_only_what_the_table_allows():
    assert set(ALLOWED) == {_part(m) for m in IMPORTS}, "a part is missing from the table"
    forbidden = []
    for module, found in IMPORTS.items():
        for target, inside, line in found:
            source, part = _part(module), _part(target)
            if source == part:
                continue
            if part not in ALLOWED[source]:
                forbidden.append(f"{module}:{line} imports {target}")
            elif (source, part) in INSIDE_FUNCTIONS and not inside:
                forbidden.append(f"{module}:{line} imports {target} at module level")
    assert forbidden == []


def _loaded_by(module: str) -> set[str]:
    """Every module that importing ``module`` runs: its packages and, transitively, what each
    imports at module level."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in IMPORTS and prefix not in seen:
                seen.add(prefix)
                todo += [t for t, inside, _ in IMPORTS[prefix] if not inside]
    return seen


@pytest.mark.parametrize("module", TORCH_FREE)
def test_the_fast_checks_import_no_torch(module):
    with_torch = sorted(m for m in _loaded_by(module) if "torch" in EXTERNAL[m])
    assert with_torch == []


def test_no_library_function_takes_an_argparse_namespace():
    """Only the command-line modules see parsed arguments; the library takes typed options."""
    takers = [
        _module_name(p)
        for p in SRC.rglob("*.py")
        if "argparse.Namespace" in p.read_text() and p.name != "cli.py"
    ]
    assert takers == []
