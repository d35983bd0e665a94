"""Imports flow one way (STYLE rule 3): daemon/cli/dev > api > manager | agent > exec | node >
pki | store > model > errors. The manager's pipeline parts never import each other; they meet
only in the store. This test reads every module's imports and fails on any arrow going up."""

from __future__ import annotations

import ast
from pathlib import Path

import shoal

ROOT = Path(shoal.__file__).parent

RANK = {"errors": 0, "aio": 0, "model": 1, "pki": 2, "store": 2, "exec": 3, "node": 3, "image": 3,
        "net": 3, "manager": 4, "agent": 4, "api": 5, "daemon": 6, "cli": 6, "dev": 6}
# Allowed arrows that the ranks would refuse: `shoal dev` is dev tooling that starts processes
# (daemons, a registry) rather than talking to a daemon, so the CLI root hooks its group in.
EXCEPTIONS = {("shoal.cli.main", "shoal.dev.cli")}
# Within the manager, the parts that meet only in the store.
PIPELINE = {"orchestrator", "allocator", "scheduler", "dispatcher"}


def _part(module: str) -> tuple[str, str]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    sub = parts[2] if top == "manager" and len(parts) > 2 else ""
    return top, sub


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shoal"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("shoal"))
    return out


def test_imports_flow_one_way() -> None:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        module = "shoal." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        src_top, src_sub = _part(module)
        if src_top not in RANK:
            continue
        for target in _imports(path):
            dst_top, dst_sub = _part(target)
            if dst_top not in RANK or dst_top == src_top and src_top != "manager":
                continue
            if (module, target) in EXCEPTIONS:
                continue
            if src_top == "cli" and dst_top not in ("cli", "errors"):
                bad.append(f"{module} -> {target} (the CLI talks HTTP only)")
            elif RANK[dst_top] > RANK[src_top] or (RANK[dst_top] == RANK[src_top] and dst_top != src_top):
                bad.append(f"{module} -> {target}")
            elif src_sub in PIPELINE and dst_sub in PIPELINE and src_sub != dst_sub:
                bad.append(f"{module} -> {target} (pipeline parts meet only in the store)")
    assert not bad, "imports going the wrong way:\n" + "\n".join(bad)


def test_exec_knows_only_the_model() -> None:
    for path in (ROOT / "exec").rglob("*.py"):
        for target in _imports(path):
            assert _part(target)[0] in ("exec", "model", "errors", ""), f"{path} imports {target}"
