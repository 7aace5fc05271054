"""Architecture rules that keep the system replayable and decoupled."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ticktape import proto

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["market_data", "symbol_registry", "signal", "risk", "execution"]
BANNED_CALLS = {
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "perf_counter"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
    ("os", "urandom"),
    ("os", "getenv"),
}
BANNED_MODULES = {"random", "secrets", "asyncio", "nats", "aiohttp", "psycopg", "socket", "os"}


def test_services_never_import_each_other_and_kernel_never_imports_services():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_proto_matches_the_code(tmp_path):
    assert proto.main(check=True) == 0, "proto/ drifted from the code: run `just proto`"


def test_proto_check_when_a_schema_drifts_then_fails(tmp_path):
    proto.main(root=tmp_path)
    schema = next((tmp_path / "schemas").glob("*.json"))
    schema.write_text(schema.read_text().replace('"type"', '"kind"', 1))
    assert proto.main(check=True, root=tmp_path) == 1


def _module_path(module: str) -> Path | None:
    parts = module.split(".")
    base = ROOT / "libs" if parts[0] == "exchanges" else ROOT
    rel = Path(*parts)
    for candidate in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _core_modules(service: str) -> list[Path]:
    """services/<service>/core.py and every module of the same service or of the shared
    exchange adapters that it imports, transitively (packages included)."""
    prefixes = (f"services.{service}", "exchanges")
    todo, seen = [ROOT / "services" / service / "core.py"], []
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.append(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefixes):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith(prefixes)]
            for name in names:
                while name:
                    found = _module_path(name)
                    if found is not None:
                        todo.append(found)
                    name = name.rsplit(".", 1)[0] if "." in name else ""
    return seen


def test_core_walk_reaches_the_exchange_adapters_and_the_aggregator():
    names = {str(p.relative_to(ROOT)) for p in _core_modules("market_data")}
    assert {
        "services/market_data/aggregate.py",
        "libs/exchanges/hyperliquid.py",
        "libs/exchanges/_binance.py",
        "libs/exchanges/base.py",
    } <= names
    assert "services/market_data/service.py" not in names


@pytest.mark.parametrize("service", SERVICES)
def test_cores_use_no_wall_clock_randomness_or_io(service):
    problems = []
    for path in _core_modules(service):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
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
    assert not problems, "nondeterminism or I/O in a core: " + "; ".join(problems)


def test_code_has_no_unused_imports_undefined_names_or_dead_assignments():
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "--quiet", "libs", "services", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
