"""A user's strategy package, outside ticktape: written to a temp dir with its own pyproject.toml
(an entry point in the `ticktape.strategies` group), built into a wheel by setuptools' PEP 517
backend, and installed by unpacking the wheel into a site directory that a subprocess gets on
PYTHONPATH. Nothing is installed into the project's venv, and ticktape is not changed.

The strategy is a Donchian breakout (long on a close above the highest high of the previous
`period` bars, short below the lowest low, otherwise no change); `reference_sides` recomputes its
signals from the bars with plain lists, independently of the ring buffer and numpy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterable
from pathlib import Path

from ticktape.events import BarClosed

DIST = "tt-demo-strategies"
KIND = "breakout"

PYPROJECT = f"""
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST}"
version = "0.1.0"
description = "A strategy for ticktape, in its own distribution"
requires-python = ">=3.11"

[project.entry-points."ticktape.strategies"]
{KIND} = "tt_demo_strategies.breakout:Breakout"

[tool.setuptools]
packages = ["tt_demo_strategies"]
"""

MODULE = '''
"""Donchian breakout, written against ticktape's strategy API only."""

from typing import Annotated

import msgspec

from ticktape.strategy import Context, Params, Strategy, Target


class BreakoutParams(Params, frozen=True, kw_only=True):
    period: Annotated[int, msgspec.Meta(ge=2, le=500)] = 20


class Breakout(Strategy[BreakoutParams]):
    params_type = BreakoutParams

    def history(self):
        return {"1m": self.params.period + 1}

    def on_bar(self, ctx: Context):
        w = ctx.bars(ctx.symbol, ctx.timeframe, self.params.period + 1)
        if len(w) <= self.params.period:
            return None
        upper = float(w.high[:-1].max())
        lower = float(w.low[:-1].min())
        close = float(w.close[-1])
        if close > upper:
            return Target("long", diagnostics={"upper": upper, "lower": lower})
        if close < lower:
            return Target("short", diagnostics={"upper": upper, "lower": lower})
        return None
'''


def build_and_install(root: Path) -> Path:
    """Write the package under root/src, build its wheel, unpack it into root/site; return the
    site directory (put it on PYTHONPATH to have the distribution installed)."""
    src = root / "src"
    (src / "tt_demo_strategies").mkdir(parents=True)
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "tt_demo_strategies" / "__init__.py").write_text("")
    (src / "tt_demo_strategies" / "breakout.py").write_text(textwrap.dedent(MODULE))
    dist = root / "dist"
    built = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"]
        + [str(dist)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = dist / built.stdout.strip().splitlines()[-1]
    site = root / "site"
    with zipfile.ZipFile(wheel) as zf:  # a pure-Python wheel installs by unpacking (PEP 427)
        zf.extractall(site)
    return site


def reference_sides(bars: Iterable[BarClosed], period: int) -> list[tuple[str, int, str]]:
    """(symbol, bar open time, side) of every signal the breakout makes on these bars."""
    seen: dict[str, list[BarClosed]] = {}
    sides: dict[str, str] = {}
    out = []
    for bar in bars:
        past = seen.setdefault(bar.symbol, [])
        past.append(bar)
        if len(past) <= period:
            continue
        window = past[-period - 1 : -1]
        upper = max(b.high for b in window)
        lower = min(b.low for b in window)
        side = "long" if bar.close > upper else "short" if bar.close < lower else None
        if side is not None and side != sides.get(bar.symbol, "flat"):
            sides[bar.symbol] = side
            out.append((bar.symbol, bar.open_time, side))
    return out
