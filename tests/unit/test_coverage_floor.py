"""The coverage floor only goes up: it is never lower than a floor committed before."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ticktape.devtools.coverage_floor import proposed_floor, raise_floor, read_floor

pytestmark = pytest.mark.lint

ROOT = Path(__file__).resolve().parents[2]


def _committed_floors() -> list[tuple[str, float]]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git history of the checkout")
    revs = subprocess.run(
        ["git", "log", "--format=%H", "--", "pyproject.toml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    floors = []
    for rev in revs:
        text = subprocess.run(
            ["git", "show", f"{rev}:pyproject.toml"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        floors.append((rev[:12], read_floor(text)))
    return floors


def test_floor_is_not_lower_than_any_committed_floor():
    current = read_floor((ROOT / "pyproject.toml").read_text())
    lower_than = [(rev, f) for rev, f in _committed_floors() if f > current]
    assert not lower_than, f"coverage floor {current} is lower than committed floors {lower_than}"


def test_raise_floor_when_measured_higher_then_raised_never_lowered():
    text = "[tool.coverage.report]\nfail_under = 80\nprecision = 1\n"
    raised, floor = raise_floor(text, 84.37)
    assert floor == 83.8 and "fail_under = 83.8\n" in raised and "precision = 1" in raised
    same, floor = raise_floor(raised, 70.0)
    assert same == raised and floor == 83.8
    assert proposed_floor(90.04) == 89.5
