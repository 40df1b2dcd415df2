"""The project's import graph, read from the source (no import is executed).

`python -m tests.halobestie.import_graph` prints the module-level import cycles, the imports that
sit inside functions (and whether they carry a one-line reason), and the app-level edges, counting
`apps.get_model("app", "Model")` / `get_model("app.Model")` strings as edges too. The direction
tests in test_import_direction.py use the same reader.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "halobestie",
    "opsconfig",
    "mitras",
    "accounts",
    "availability",
    "payments",
    "sessions_app",
    "care",
    "controlroom",
)
# Top to bottom; an app imports only apps of lower layers (docs/architecture.md "Layers"). Apps in one
# layer are independent of each other. The same list is the import-linter "layers" contract in
# pyproject.toml (the tests check that the two agree).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("controlroom",),
    ("care",),
    ("sessions_app",),
    ("payments", "availability"),
    ("accounts",),
    ("mitras",),
    ("opsconfig",),
    ("halobestie",),
)
# The composition root mounts every app (routes, sockets, the ASGI hot path); nothing imports it back,
# so its edges are left out of the app graph.
COMPOSITION_ROOT = ("halobestie.asgi", "halobestie.routing", "halobestie.urls", "halobestie.routers")
_MODEL_STRING = re.compile(r"^([a-z_]+)[.]([A-Z][A-Za-z]+)$")


@dataclass
class Import:
    importer: str  # module name
    imported: str  # module (or package) name
    line: int
    in_function: bool
    reason: str = ""  # the comment on the import line or the line above it


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)
    model_strings: list[Import] = field(default_factory=list)  # importer -> "app" via get_model

    def module_edges(self, *, with_functions: bool = False) -> dict[str, set[str]]:
        edges: dict[str, set[str]] = {m: set() for m in self.modules}
        for imp in self.imports:
            if (
                (with_functions or not imp.in_function)
                and imp.imported in self.modules
                and imp.imported != imp.importer
            ):
                edges[imp.importer].add(imp.imported)
        return edges

    def app_edges(self, *, skip: tuple[str, ...] = ()) -> dict[str, set[str]]:
        edges: dict[str, set[str]] = {app: set() for app in APPS}
        for imp in [*self.imports, *self.model_strings]:
            if imp.importer in COMPOSITION_ROOT or any(part in skip for part in imp.importer.split(".")):
                continue
            a, b = imp.importer.split(".")[0], imp.imported.split(".")[0]
            if a in APPS and b in APPS and a != b:
                edges[a].add(b)
        return edges


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files() -> Iterator[Path]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest known module that `name` names (a `from pkg import func` names pkg)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def _reason(lines: list[str], lineno: int) -> str:
    """The comment on the import line, or the comment line above its block of imports."""
    line = lines[lineno - 1]
    if "#" in line:
        comment = line.split("#", 1)[1].strip()
        return "" if comment.startswith(("noqa", "type:")) else comment
    index = lineno - 2
    while index >= 0 and (not lines[index].strip() or lines[index].strip().startswith(("from ", "import "))):
        index -= 1
    above = lines[index].strip() if index >= 0 else ""
    return above[1:].strip() if above.startswith("#") else ""


class _Visitor(ast.NodeVisitor):
    def __init__(self, graph: Graph, module: str, lines: list[str], package: str) -> None:
        self.graph, self.module, self.lines, self.package = graph, module, lines, package
        self.depth = 0

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function  # noqa: N815

    def _add(self, target: str, node: ast.stmt) -> None:
        inside = self.depth > 0
        self.graph.imports.append(
            Import(
                self.module, target, node.lineno, inside, _reason(self.lines, node.lineno) if inside else ""
            )
        )

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            pkg = self.package.split(".")
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
        for alias in node.names:
            self._add(f"{base}.{alias.name}", node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in {"get_model", "get_app_config"}:
            args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            label = ""
            if len(args) >= 1 and (m := _MODEL_STRING.match(args[0])):
                label = m.group(1)
            elif args:
                label = args[0]
            if label:
                self.graph.model_strings.append(Import(self.module, label, node.lineno, self.depth > 0))
        self.generic_visit(node)


def build() -> Graph:
    graph = Graph()
    paths = list(_files())
    for path in paths:
        graph.modules[_module_name(path)] = path
    for path in paths:
        module = _module_name(path)
        source = path.read_text()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        _Visitor(graph, module, source.splitlines(), package).visit(ast.parse(source, filename=str(path)))
    for imp in graph.imports:
        imp.imported = _resolve(imp.imported, graph.modules) or imp.imported
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def function_imports(graph: Graph) -> list[Import]:
    """Imports inside functions, project modules and third-party alike."""
    seen: set[tuple[str, int]] = set()
    found = []
    for imp in graph.imports:
        if imp.in_function and (imp.importer, imp.line) not in seen:
            seen.add((imp.importer, imp.line))
            found.append(imp)
    return found


def main() -> int:
    graph = build()
    module_cycles = cycles(graph.module_edges())
    hidden_cycles = cycles(graph.module_edges(with_functions=True))
    app_cycles = cycles(graph.app_edges())
    inner = function_imports(graph)
    print(f"modules: {len(graph.modules)}")
    print(f"module-level import cycles: {len(module_cycles)}")
    for component in module_cycles:
        print("  " + " <-> ".join(component))
    print(f"module cycles counting imports inside functions: {len(hidden_cycles)}")
    for component in hidden_cycles:
        print("  " + " <-> ".join(component))
    print(f"app-level cycles (all imports + get_model strings): {len(app_cycles)}")
    for component in app_cycles:
        print("  " + " <-> ".join(component))
    print(
        f"imports inside functions: {len(inner)} ({sum(1 for i in inner if not i.reason)} without a reason)"
    )
    for imp in inner:
        where = graph.modules[imp.importer].relative_to(ROOT)
        print(f"  {where}:{imp.line} {imp.imported}" + (f"  # {imp.reason}" if imp.reason else ""))
    print(f"get_model strings: {len(graph.model_strings)}")
    for imp in graph.model_strings:
        print(f"  {graph.modules[imp.importer].relative_to(ROOT)}:{imp.line} -> {imp.imported}")
    print("app edges:")
    for app, deps in graph.app_edges().items():
        print(f"  {app} -> {', '.join(sorted(deps)) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
