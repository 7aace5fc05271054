"""SymbolRegistryConfig: one universe per venue, defaults from the venue adapters, the old
single-venue keys still accepted, and errors that name the key path."""

from __future__ import annotations

import msgspec
import pytest

from exchanges import adapter_for
from services.symbol_registry.config import SymbolRegistryConfig, VenueUniverseConfig
from services.symbol_registry.service import load, rest_base
from ticktape.config import ConfigError, load_section
from ticktape.venues import ALL, BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID


def section(doc: dict[str, object]) -> SymbolRegistryConfig:
    return load_section("symbol_registry", SymbolRegistryConfig, {"symbol_registry": doc})


def test_defaults_rank_top_20_usdt_perpetuals_on_binance_usdm_daily() -> None:
    cfg = load({})
    assert cfg.venues == (
        VenueUniverseConfig(venue=BINANCE_USDM, top_n=20, quote_asset="USDT", rest_url="https://fapi.binance.com"),
    )
    assert cfg.refresh_interval_s == 86400.0


def test_venues_fill_quote_asset_and_rest_url_per_venue() -> None:
    cfg = section(
        {
            "venues": [
                {"venue": BINANCE_USDM, "top_n": 20},
                {"venue": BINANCE_SPOT, "top_n": 5},
                {"venue": HYPERLIQUID, "top_n": 10, "rest_url": "http://hl.local/"},
            ],
            "refresh_interval_s": 3600,
        }
    )
    assert [(v.venue, v.top_n, v.quote_asset, v.rest_url) for v in cfg.venues] == [
        (BINANCE_USDM, 20, "USDT", adapter_for(BINANCE_USDM).default_rest_url),
        (BINANCE_SPOT, 5, "USDT", adapter_for(BINANCE_SPOT).default_rest_url),
        (HYPERLIQUID, 10, "USDC", "http://hl.local/"),
    ]
    assert cfg.refresh_interval_s == 3600.0
    assert VenueUniverseConfig(venue=HYPERLIQUID).rest_url == "https://api.hyperliquid.xyz"


def test_single_venue_keys_still_configure_one_venue() -> None:
    assert section({"top_n": 3}).venues == (VenueUniverseConfig(venue=BINANCE_USDM, top_n=3),)
    cfg = section({"venue": BINANCE_SPOT, "top_n": 7, "quote_asset": "FDUSD", "rest_url": "http://x"})
    assert cfg.venues == (VenueUniverseConfig(venue=BINANCE_SPOT, top_n=7, quote_asset="FDUSD", rest_url="http://x"),)


@pytest.mark.parametrize(
    "doc", [{}, {"top_n": 3, "venue": HYPERLIQUID}, {"venues": [{"venue": v} for v in ALL], "refresh_interval_s": 60}]
)
def test_effective_config_encodes_to_a_document_that_decodes_to_itself(doc: dict[str, object]) -> None:
    cfg = section(doc)
    assert section(msgspec.to_builtins(cfg)) == cfg


def test_venue_sim_serves_every_venue_under_its_name() -> None:
    venue = VenueUniverseConfig(venue=HYPERLIQUID)
    assert rest_base(venue, None) == "https://api.hyperliquid.xyz"
    assert rest_base(venue, "http://127.0.0.1:8900/") == "http://127.0.0.1:8900/hyperliquid"
    assert rest_base(VenueUniverseConfig(venue=BINANCE_SPOT, rest_url="http://b/"), None) == "http://b"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"venues": [{"venue": BINANCE_USDM}, {"venue": "kraken"}]},
            "symbol_registry.venues[1].venue: Expected `str` matching regex "
            "'^(binance_spot|binance_usdm|hyperliquid)$' (got 'kraken')",
        ),
        ({"venue": "binance"}, "symbol_registry.venue: Expected `str` matching regex"),
        ({"venues": [{"top_n": 3}]}, "symbol_registry.venues[0]: Object missing required field `venue`"),
        ({"venues": [{"venue": BINANCE_SPOT, "top_n": 0}]}, "symbol_registry.venues[0].top_n: Expected `int` >= 1"),
        (
            {"venues": [{"venue": BINANCE_SPOT, "top_n": 1001}]},
            "symbol_registry.venues[0].top_n: Expected `int` <= 1000",
        ),
        (
            {"venues": [{"venue": BINANCE_SPOT, "topn": 5}]},
            "symbol_registry.venues[0].topn: unknown key; allowed: venue, top_n, quote_asset, rest_url",
        ),
        (
            {"venues": [{"venue": HYPERLIQUID, "quote_asset": "USDT"}]},
            "symbol_registry.venues[0]: quote_asset: hyperliquid lists only USDC-quoted perps (got 'USDT')",
        ),
        (
            {"venues": [{"venue": HYPERLIQUID}, {"venue": BINANCE_SPOT}, {"venue": HYPERLIQUID}]},
            "symbol_registry: venues[2].venue: hyperliquid is already listed at venues[0]",
        ),
        (
            {"venues": [{"venue": BINANCE_SPOT}], "top_n": 5},
            "symbol_registry: set either venues or the single-venue keys, not both (got venues and top_n)",
        ),
        ({"venues": BINANCE_USDM}, "symbol_registry.venues: Expected `array`, got `str`"),
        ({"top_n": 0}, "symbol_registry.top_n: Expected `int` >= 1"),
        ({"refresh_interval_s": 0}, "symbol_registry.refresh_interval_s: Expected `float` > 0"),
        ({"topn": 5}, "symbol_registry.topn: unknown key"),
    ],
)
def test_invalid_settings_fail_with_the_key_path(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load({"symbol_registry": doc})
    assert message in str(info.value)


def test_direct_construction_checks_the_venue_too() -> None:
    with pytest.raises(ValueError, match="venue must be one of binance_spot, binance_usdm, hyperliquid"):
        VenueUniverseConfig(venue="kraken")
