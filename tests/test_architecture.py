"""The layering of STYLE.md, read from the imports (ast): data flows one way.

parse is pure; only store runs SQL; only render touches feedgen; only web, app
and cli import flask; model, ids and errors are leaves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "feeds"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def imports(module: str) -> set[str]:
    """Top-level names of every module ``feeds.<module>`` imports (``feeds.x`` as ``feeds.x``)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(_name(alias.name))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "feeds":
                found.update(f"feeds.{alias.name}" for alias in node.names)
            else:
                found.add(_name(node.module))
    return found


def _name(dotted: str) -> str:
    parts = dotted.split(".")
    return ".".join(parts[:2]) if parts[0] == "feeds" else parts[0]


def test_modules_found() -> None:
    assert {"parse", "scan", "sync", "store", "render", "web", "app", "cli"} <= set(MODULES)


def test_parse_is_pure() -> None:
    assert imports("parse").isdisjoint(
        {"os", "io", "pathlib", "sqlite3", "flask", "feedgen", "time", "feeds.store"}
    )


def test_topics_is_pure() -> None:
    # Its only I/O is reading its package data once (importlib.resources).
    assert imports("topics").isdisjoint(
        {"os", "io", "pathlib", "sqlite3", "flask", "feedgen", "time", "feeds.store"}
    )


#: The store backends: each runs its own database's SQL, and nothing else does.
BACKENDS = {"sqlite_store": "sqlite3", "pg_store": "psycopg"}


@pytest.mark.parametrize("module", MODULES)
def test_only_store_backends_run_sql(module: str) -> None:
    for backend, driver in BACKENDS.items():
        if module != backend:
            assert driver not in imports(module)


@pytest.mark.parametrize("module", MODULES)
def test_only_render_touches_feedgen(module: str) -> None:
    if module != "render":
        assert "feedgen" not in imports(module)


@pytest.mark.parametrize("module", MODULES)
def test_only_the_edges_import_flask(module: str) -> None:
    if module not in {"web", "app", "cli"}:
        assert {"flask", "werkzeug"}.isdisjoint(imports(module))


@pytest.mark.parametrize("leaf", ["model", "ids", "errors"])
def test_leaves_import_nothing_of_ours_but_leaves(leaf: str) -> None:
    ours = {m for m in imports(leaf) if m.startswith("feeds.")}
    assert ours <= {"feeds.model", "feeds.errors"}


# Each step may import only steps before it in the flow (and the leaves).
ORDER = [
    "errors", "model", "ids", "urls", "query", "config", "lock", "scan", "parse", "topics",
    "decide", "store", "sqlite_store", "pg_store", "backends", "sync",
    "websub", "catalog", "markup", "render", "pages", "site", "wire", "export", "web", "hotpath",
    "schedule",
    "app", "serving", "cli",
]  # fmt: skip


def test_every_module_has_a_place_in_the_flow() -> None:
    assert set(MODULES) == set(ORDER)


@pytest.mark.parametrize("module", MODULES)
def test_imports_point_downstream(module: str) -> None:
    allowed = {f"feeds.{m}" for m in ORDER[: ORDER.index(module)]}
    ours = {m for m in imports(module) if m.startswith("feeds.")} - {"feeds.__version__"}
    assert ours <= allowed, f"{module} imports {sorted(ours - allowed)} from downstream"


@pytest.mark.parametrize("module", MODULES)
def test_no_print_outside_the_cli(module: str) -> None:
    if module == "cli":
        return
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    calls = [
        n for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
    ]  # fmt: skip
    assert not calls
