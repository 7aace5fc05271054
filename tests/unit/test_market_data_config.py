"""MarketDataConfig: documented defaults, Binance's limits enforced, unknown keys rejected."""

from __future__ import annotations

import pytest

from services.market_data.config import MarketDataConfig
from ticktape.config import ConfigError, load_section


def test_defaults_target_binance_usdm_production() -> None:
    cfg = load_section("market_data", MarketDataConfig, {})
    assert cfg == MarketDataConfig()
    assert (cfg.venue, cfg.rest_url, cfg.ws_url) == (
        "binance_usdm", "https://fapi.binance.com", "wss://fstream.binance.com")
    assert (cfg.streams_per_connection, cfg.backfill_limit) == (100, 1000)
    assert (cfg.reconnect_backoff_initial_s, cfg.reconnect_backoff_max_s) == (0.5, 30.0)


@pytest.mark.parametrize(("section", "message"), [
    ({"streams_per_connection": 1025}, "market_data.streams_per_connection: Expected `int` <= 1024"),
    ({"streams_per_connection": 0}, "market_data.streams_per_connection: Expected `int` >= 1"),
    ({"backfill_limit": 1501}, "market_data.backfill_limit"),
    ({"reconnect_backoff_initial_s": 0}, "market_data.reconnect_backoff_initial_s"),
    ({"reconnect_backoff_initial_s": 5, "reconnect_backoff_max_s": 1}, "reconnect_backoff_max_s must be >="),
    ({"ws_urll": "x"}, "market_data.ws_urll: unknown key"),
])
def test_invalid_settings_fail_with_the_key_path(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="config error") as info:
        load_section("market_data", MarketDataConfig, {"market_data": section})
    assert message in str(info.value)


def test_streams_per_connection_accepts_binance_maximum() -> None:
    raw = {"market_data": {"streams_per_connection": 1024}}
    assert load_section("market_data", MarketDataConfig, raw).streams_per_connection == 1024
