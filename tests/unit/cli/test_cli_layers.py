"""Inside the CLI, imports go one way and never in a circle (function-level imports count):
format < template < the core modules at the top < node | service | progress | compose <
commands < main."""

from __future__ import annotations

import ast
from pathlib import Path

import shoal.cli

ROOT = Path(shoal.cli.__file__).parent
RANK = {"format": 0, "template": 1, "(core)": 2, "node": 3, "service": 3, "progress": 3,
        "compose": 3, "commands": 4, "main": 5}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("shoal", "cli", *path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shoal.cli"):
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("shoal.cli"))
    return {name for name in found if name in known}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 3:
        return parts[2]
    return "main" if module == "shoal.cli.main" else "(core)"


def _graph() -> dict[str, set[str]]:
    known = _modules()
    # shoal.cli itself is the package's facade (Client and a lazy main), not a layer.
    return {m: _imports(p, known) - {m, "shoal.cli"} for m, p in known.items() if m != "shoal.cli"}


def test_imports_go_down_the_layers() -> None:
    bad = []
    for module, targets in sorted(_graph().items()):
        for target in sorted(targets):
            src, dst = _layer(module), _layer(target)
            if src != dst and RANK[dst] >= RANK[src]:
                bad.append(f"{module} -> {target}")
    assert not bad, "imports going up or across the CLI's layers:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module):], module]))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
