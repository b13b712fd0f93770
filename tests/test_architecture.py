"""The shape STYLE.md asks for: a core without Telegram or aiohttp, a pure nlp package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("bot", {"telegram", "aiohttp", "sqlalchemy", "handlers", "storage", "sandbox"}),
        ("nlp", {"telegram", "aiohttp", "sqlalchemy", "bot", "handlers", "storage", "sandbox"}),
        ("storage", {"telegram", "aiohttp", "handlers", "sandbox"}),
    ],
)
def test_layers_do_not_import_the_edges(package: str, forbidden: set[str]) -> None:
    offenders = {
        path: sorted(names & forbidden)
        for path, names in imported_modules(package).items()
        # the process entry point hands over to the runtime in handlers/
        if names & forbidden and path != "bot/__main__.py"
    }
    assert offenders == {}


def test_importing_the_core_loads_no_telegram_or_aiohttp() -> None:
    code = (
        "import sys, importlib, pkgutil, bot\n"
        "for m in pkgutil.walk_packages(bot.__path__, 'bot.'):\n"
        "    if m.name != 'bot.__main__': importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('telegram', 'aiohttp'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == ""


def test_main_imports_the_runtime_only_lazily() -> None:
    tree = ast.parse((ROOT / "bot" / "__main__.py").read_text(encoding="utf-8"))
    top_level = {
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert not any(name.startswith(("handlers", "telegram", "aiohttp")) for name in top_level)
