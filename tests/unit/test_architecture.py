"""Architecture rules that keep the system replayable and decoupled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ticktape import proto, registry
from ticktape.devtools import purity

ROOT = Path(__file__).resolve().parents[2]
# every registered service with a pure core (services/<name>/core.py): the cores and the producers
SERVICES = [s.name for s in registry.services() if (ROOT / "services" / s.name / "core.py").exists()]
# Where a core's imports live (top-level package -> the directory that holds it).
CORE_ROOTS = {"services": ROOT, "ticktape": ROOT / "libs", "exchanges": ROOT / "libs"}
# What the purity gate lets through, file by file, and why.


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


def _core_modules(service: str) -> list[Path]:
    """services/<service>/core.py and every module it imports, transitively, of its own service,
    of the shared exchange adapters and of the kernel (packages' __init__ included)."""
    follow = (f"services.{service}", "exchanges", "ticktape")
    return purity.module_closure(ROOT / "services" / service / "core.py", roots=CORE_ROOTS, follow=follow)


def test_every_core_is_a_registered_service_so_the_purity_gate_checks_it():
    assert sorted(p.parent.name for p in (ROOT / "services").glob("*/core.py")) == sorted(SERVICES)


def test_core_walk_reaches_the_exchange_adapters_the_aggregator_and_the_kernel():
    names = {p.relative_to(ROOT).as_posix() for p in _core_modules("market_data")}
    assert {
        "services/market_data/__init__.py",
        "services/market_data/aggregate.py",
        "libs/exchanges/hyperliquid.py",
        "libs/exchanges/_binance.py",
        "libs/exchanges/base.py",
        "libs/ticktape/ids.py",
        "libs/ticktape/clock.py",
        "libs/ticktape/events/market.py",
    } <= names
    assert "services/market_data/service.py" not in names
    assert "libs/ticktape/runtime.py" not in names


@pytest.mark.parametrize("service", SERVICES)
def test_cores_use_no_wall_clock_randomness_or_io(service):
    problems = [
        f"{p.path.relative_to(ROOT).as_posix()}:{p.line}: {p.what}" for p in purity.check_paths(_core_modules(service))
    ]
    assert not problems, "nondeterminism or I/O in a core or what it imports:\n" + "\n".join(problems)


LINTED = ("libs", "services", "tests", "bench")


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "ruff"), *args], cwd=cwd, capture_output=True, text=True)


def test_ruff_lint_rule_set_passes():
    """The rule set in pyproject.toml ([tool.ruff.lint] select: pyflakes, pycodestyle, isort,
    bugbear, pyupgrade, simplify, blind-except, RUF100) finds nothing, so every `noqa` left
    names a rule that really fires there."""
    result = _ruff("check", "--quiet", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check_passes():
    result = _ruff("format", "--check", "--quiet", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_lint_gate_fails_on_a_blind_except_unsorted_imports_and_a_stale_noqa(tmp_path):
    scratch = tmp_path / "scratch.py"
    scratch.write_text(
        "import sys\n"
        "import os\n"
        "\n"
        "\n"
        "def cwd() -> str:\n"
        "    try:\n"
        "        return os.getcwd() + sys.prefix\n"
        "    except Exception:\n"
        "        pass\n"
        "    return ''  # noqa: E741\n"
    )
    result = _ruff(
        "check",
        "--config",
        str(ROOT / "pyproject.toml"),
        "--no-cache",
        "--output-format",
        "json",
        str(scratch),
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"BLE001", "I001", "RUF100"} <= codes, codes
