"""The market-data core and everything it imports from its own package (the venue adapters
under venues/ included, which the architecture test's module walk does not resolve) use no
wall clock, randomness, asyncio or I/O."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.test_architecture import BANNED_CALLS, BANNED_MODULES, ROOT

PACKAGE = "services.market_data"


def _module_path(module: str) -> Path | None:
    rel = Path(*module.split("."))
    for candidate in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def core_modules() -> list[Path]:
    """core.py and every services.market_data module it imports, transitively (packages too)."""
    todo, seen = [ROOT / "services" / "market_data" / "core.py"], []
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith(PACKAGE)]
            for name in names:
                found = _module_path(name)
                if found is not None:
                    todo.append(found)
                parent = name.rsplit(".", 1)[0]
                while parent.startswith(PACKAGE + ".") and (init := _module_path(parent)) is not None:
                    todo.append(init)
                    parent = parent.rsplit(".", 1)[0]
    return seen


def test_core_import_walk_reaches_every_venue_adapter_and_the_aggregator() -> None:
    rel = {str(p.relative_to(ROOT / "services" / "market_data")) for p in core_modules()}
    assert rel >= {"core.py", "aggregate.py", "venues/__init__.py", "venues/base.py", "venues/_binance.py",
                   "venues/binance_spot.py", "venues/binance_usdm.py", "venues/hyperliquid.py"}
    assert not rel & {"service.py", "shard.py"}


def test_market_data_core_and_adapters_use_no_wall_clock_randomness_or_io() -> None:
    problems = []
    for path in core_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            else:
                names = []
            problems += [f"{path.name}:{node.lineno} imports {n}" for n in names if n in BANNED_MODULES]
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if (node.value.id, node.attr) in BANNED_CALLS:
                    problems.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not problems, "nondeterminism or I/O in the market-data core: " + "; ".join(problems)
