"""Raise the coverage floor in pyproject.toml to what the last `just test` measured.

`python -m ticktape.devtools.coverage_floor .coverage/coverage.json pyproject.toml`

The floor is the measured total less half a point, rounded down to a tenth, so the run-to-run
jitter of timing-dependent paths does not fail a run; it is never lowered (a lower figure
leaves the file unchanged, and tests/unit/test_coverage_floor.py fails on a floor lower than
any committed before)."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

FLOOR = re.compile(r"^(fail_under\s*=\s*)([0-9.]+)", re.MULTILINE)


def read_floor(pyproject_text: str) -> float:
    """The `fail_under` of [tool.coverage.report] (0 when absent)."""
    match = FLOOR.search(pyproject_text)
    return float(match.group(2)) if match else 0.0


def proposed_floor(measured_percent: float) -> float:
    return math.floor((measured_percent - 0.5) * 10) / 10


def raise_floor(pyproject_text: str, measured_percent: float) -> tuple[str, float]:
    """(the new text, the floor in it): unchanged unless the proposal is higher."""
    current = read_floor(pyproject_text)
    new = max(current, proposed_floor(measured_percent))
    if new == current:
        return pyproject_text, current
    return FLOOR.sub(lambda m: f"{m.group(1)}{new:g}", pyproject_text, count=1), new


def main(argv: list[str]) -> int:
    report, pyproject = Path(argv[0]), Path(argv[1])
    measured = float(json.loads(report.read_text())["totals"]["percent_covered"])
    text, floor = raise_floor(pyproject.read_text(), measured)
    pyproject.write_text(text)
    print(f"coverage measured {measured:.1f}%; floor {floor:g}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
