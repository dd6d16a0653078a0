"""The package's layering, read from the source: no import cycles inside ``router``, an API that runs no
stream consumer, and pure policy that does no I/O.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING`` (a cycle hidden there
still couples the two modules). ``from pkg import name`` names the submodule ``pkg.name`` when there is one,
else ``pkg`` itself.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "router"


def _module_files() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _module_files()


def _imported_names(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in MODULES else base


def _internal(name: str) -> str | None:
    """The router module ``name`` loads (``router.x.y.Name`` -> ``router.x.y``), or None outside router."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_internal(n) for n in _imported_names(module, path)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _top_level(name: str) -> str:
    return name.partition(".")[0]


GRAPH = import_graph()


def test_no_import_cycles_inside_router() -> None:
    assert cycles(GRAPH) == []


def test_the_graph_sees_a_cycle() -> None:
    """The check itself: two modules that import each other (or through a third) are one component."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# the API serves requests over the store; consumers, the demo floor and the benchmarks run elsewhere
API_MAY_NOT_IMPORT = ("router.worker", "router.sim", "router.bench", "router.cli")


@pytest.mark.parametrize("forbidden", API_MAY_NOT_IMPORT)
def test_the_api_imports_no_worker_sim_or_bench(forbidden: str) -> None:
    bad = sorted(
        (m, t)
        for m, targets in GRAPH.items()
        if m == "router.api" or m.startswith("router.api.")
        for t in targets
        if t == forbidden or t.startswith(forbidden + ".")
    )
    assert bad == []


def test_policy_is_pure() -> None:
    """router.domain imports the standard library, itself and the settings it is configured from: no
    store, no client, no framework."""
    allowed_internal = {"router.settings"}
    bad = []
    for module, path in MODULES.items():
        if not module.startswith("router.domain"):
            continue
        for name in _imported_names(module, path):
            internal = _internal(name)
            if internal is not None:
                ok = internal.startswith("router.domain") or internal in allowed_internal
            else:
                ok = _top_level(name) in sys.stdlib_module_names or name == "__future__"
            if not ok:
                bad.append((module, name))
    assert bad == []
