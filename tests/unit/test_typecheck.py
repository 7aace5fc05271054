"""The type-checker gate: mypy over libs/ and services/ with the repository's [tool.mypy] finds
nothing, and that configuration does fail on a type error and on a needless `# type: ignore`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lint, pytest.mark.typecheck]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"
MYPY = Path(sys.executable).parent / "mypy"


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    # From the repository root: mypy_path ("libs:.") is relative to the working directory.
    return subprocess.run(
        [str(MYPY), "--config-file", str(CONFIG), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_libs_and_services_type_check_without_errors() -> None:
    assert MYPY.exists(), f"no mypy next to {sys.executable}: install the dev dependencies"
    result = _mypy()
    assert result.returncode == 0, f"mypy found errors:\n{result.stdout}{result.stderr}"
    assert "Success: no issues found" in result.stdout, result.stdout


def test_gate_fails_on_a_type_error_and_on_an_unused_ignore(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch_typecheck.py"
    lines = [
        'x: int = "a"',  # an assignment error
        "y: int = 1  # type: ignore[attr-defined]",  # an ignore with nothing to ignore
    ]
    scratch.write_text("\n".join(lines) + "\n")
    result = _mypy("--cache-dir", str(tmp_path / "mypy_cache"), str(scratch))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "[assignment]" in output, output
    assert "[unused-ignore]" in output, output
