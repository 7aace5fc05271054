"""SymbolRegistryConfig: defaults and bounds, with errors that name the key."""

from __future__ import annotations

import pytest

from services.symbol_registry.config import SymbolRegistryConfig
from ticktape.config import ConfigError, load_section


def test_defaults_rank_top_20_usdt_contracts_daily() -> None:
    cfg = load_section("symbol_registry", SymbolRegistryConfig, {})
    assert (cfg.venue, cfg.rest_url, cfg.top_n, cfg.quote_asset, cfg.refresh_interval_s) == (
        "binance_usdm", "https://fapi.binance.com", 20, "USDT", 86400.0)


@pytest.mark.parametrize(("section", "message"), [
    ({"top_n": 0}, "symbol_registry.top_n: Expected `int` >= 1"),
    ({"top_n": 1001}, "symbol_registry.top_n: Expected `int` <= 1000"),
    ({"refresh_interval_s": 0}, "symbol_registry.refresh_interval_s: Expected `float` > 0"),
    ({"topn": 5}, "symbol_registry.topn: unknown key"),
])
def test_invalid_settings_fail_with_the_key_path(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_section("symbol_registry", SymbolRegistryConfig, {"symbol_registry": section})
    assert message in str(info.value)
