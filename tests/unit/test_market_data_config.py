"""MarketDataConfig: documented defaults, venues' limits enforced, unknown keys rejected."""

from __future__ import annotations

import pytest

from services.market_data.config import MarketDataConfig, VenueFeedConfig
from ticktape.config import ConfigError, load_section


def test_defaults_follow_binance_usdm_and_aggregate_every_timeframe() -> None:
    cfg = load_section("market_data", MarketDataConfig, {})
    assert cfg == MarketDataConfig()
    assert cfg.venues == (VenueFeedConfig(venue="binance_usdm"),)
    assert cfg.venues[0].streams_per_connection == 100 and not cfg.venues[0].trades
    assert cfg.aggregate == ("5m", "15m", "1h", "4h", "1d")
    assert (cfg.backfill_limit, cfg.reconnect_backoff_initial_s, cfg.reconnect_backoff_max_s) == (1000, 0.5, 30.0)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"venues": [{"venue": "binance_usdm", "streams_per_connection": 1025}]},
            "market_data.venues[0]: streams_per_connection must be <= 1024 for binance_usdm",
        ),
        ({"venues": [{"venue": "kraken"}]}, "market_data.venues[0].venue: Invalid enum value 'kraken'"),
        ({"venues": [{"venue": "binance_spot"}, {"venue": "binance_spot"}]}, "venues must be distinct"),
        (
            {"venues": [{"venue": "binance_usdm", "streams_per_connection": 0}]},
            "market_data.venues[0].streams_per_connection: Expected `int` >= 1",
        ),
        ({"aggregate": ["5m", "7m"]}, "aggregate must be a subset of"),
        ({"timeframe": "5m"}, "timeframe must be 1m"),
        ({"reconnect_backoff_initial_s": 5, "reconnect_backoff_max_s": 1}, "reconnect_backoff_max_s must be >="),
        ({"venues": [{"venue": "hyperliquid", "ws_urll": "x"}]}, "market_data.venues[0].ws_urll: unknown key"),
    ],
)
def test_invalid_settings_fail_with_the_key_path(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="config error") as info:
        load_section("market_data", MarketDataConfig, {"market_data": section})
    assert message in str(info.value)


def test_three_venues_with_their_maximum_fan_out() -> None:
    raw = {
        "market_data": {
            "venues": [
                {"venue": "binance_usdm", "streams_per_connection": 1024},
                {"venue": "binance_spot", "trades": True},
                {"venue": "hyperliquid"},
            ]
        }
    }
    cfg = load_section("market_data", MarketDataConfig, raw)
    assert [v.venue for v in cfg.venues] == ["binance_usdm", "binance_spot", "hyperliquid"]
