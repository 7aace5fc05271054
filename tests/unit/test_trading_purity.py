"""The venue execution adapters (libs/exchanges/trading) are pure: the core purity gate finds no
clock, randomness or I/O in them, and none uses the SDK's clock-reading helpers."""

from __future__ import annotations

from pathlib import Path

from ticktape.devtools import purity

TRADING = Path(__file__).resolve().parents[2] / "libs" / "exchanges" / "trading"


def test_the_trading_adapters_read_no_clock_draw_no_randomness_and_do_no_io():
    modules = sorted(TRADING.glob("*.py"))
    assert {p.name for p in modules} >= {
        "hyperliquid_sign.py",
        "hyperliquid_orders.py",
        "binance_sign.py",
        "binance_orders.py",
        "client_ids.py",
        "errors.py",
    }
    assert [str(p) for p in purity.check_paths(modules)] == []


def test_no_trading_module_uses_the_sdk_timestamp_helper():
    # hyperliquid.utils.signing.get_timestamp_ms reads the wall clock: nonces are the caller's
    for path in TRADING.glob("*.py"):
        assert "get_timestamp_ms" not in path.read_text(), path.name
