"""App dependencies point one way (conventions.md): the app import graph has no cycle, and the
edges the design forbids are absent. `halobestie` is the composition root (it mounts every app's
routes and consumers) and is left out, as are the ops interfaces (admin, management commands,
migrations); imports inside functions count too."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("opsconfig", "accounts", "mitras", "availability", "payments", "sessions_app")
FORBIDDEN = {
    ("availability", "sessions_app"),  # availability reads sessions through the app registry only
    ("availability", "payments"),
    ("payments", "sessions_app"),
    ("accounts", "sessions_app"),
    ("accounts", "availability"),
    ("mitras", "sessions_app"),
    ("mitras", "accounts"),
    ("opsconfig", "sessions_app"),
}


def app_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {app: set() for app in APPS}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts or "management" in path.parts or path.name == "admin.py":
                # Interfaces for ops (admin pages, commands, data migrations) call services of other
                # apps by design, e.g. the mitras admin's deactivate action calls availability.
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in APPS and top != app:
                        graph[app].add(top)
    return graph


def test_forbidden_edges_are_absent():
    graph = app_graph()
    present = sorted((a, b) for a, b in FORBIDDEN if b in graph[a])
    assert present == []


def test_app_graph_has_no_cycle():
    graph = app_graph()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend([*stack, node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*stack, node]):
                return True
        state[node] = 2
        return False

    for app in APPS:
        if state.get(app) is None and visit(app, []):
            break
    assert cycle == []
