"""App dependencies point one way (docs/architecture.md "Layers"). Everything counts: admin pages,
management commands, tasks, imports inside functions, and `apps.get_model("app", "Model")` strings.
Only the composition root (halobestie.asgi, routers, routing, urls), which mounts every app and is
imported by none, is left out. import-linter enforces the same layers (`make imports`); the last
test runs it, so the suite sees a broken contract too."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.halobestie.import_graph import APPS, LAYERS, ROOT, build, cycles, function_imports


def _layer_of(app: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if app in layer)


def test_every_app_is_in_one_layer() -> None:
    assert sorted(app for layer in LAYERS for app in layer) == sorted(APPS)


def test_apps_import_only_lower_layers() -> None:
    edges = build().app_edges()
    upward_or_sideways = sorted(
        (a, b) for a, targets in edges.items() for b in targets if _layer_of(b) <= _layer_of(a)
    )
    assert upward_or_sideways == []


def test_no_app_reaches_another_through_the_model_registry() -> None:
    graph = build()
    hidden = [
        f"{imp.importer}:{imp.line} -> {imp.imported}"
        for imp in graph.model_strings
        if imp.imported != imp.importer.split(".")[0]
    ]
    assert hidden == []


def test_no_import_cycle_between_modules_even_through_function_imports() -> None:
    graph = build()
    assert cycles(graph.module_edges(with_functions=True)) == []
    assert cycles(graph.app_edges()) == []


def test_every_import_inside_a_function_says_why() -> None:
    graph = build()
    silent = [
        f"{graph.modules[imp.importer].relative_to(ROOT)}:{imp.line} {imp.imported}"
        for imp in function_imports(graph)
        if not imp.reason
    ]
    assert silent == []


def test_import_linter_layers_match_and_hold() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    assert [tuple(part.strip() for part in layer.split("|")) for layer in layers] == list(LAYERS)
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
