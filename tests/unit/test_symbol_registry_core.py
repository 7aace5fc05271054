"""select_universe: top N USDT perpetuals by 24h quote volume, deterministic, clear on bad input."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.symbol_registry.core import exchange_info_url, select_universe, tickers_24h_url
from ticktape import ids
from ticktape.clock import NS_PER_MS
from ticktape.events import UniverseMember, codec
from ticktape.testing.data import shared_data

VENUE = "binance_usdm"
CLOSE_MS = 1742990400000


def passivbot_exchange_info() -> dict[str, Any]:
    """The /fapi/v1/exchangeInfo symbol entries that passivbot's ccxt dump keeps under `info`."""
    markets = json.loads(shared_data("passivbot", "binanceusdm_markets.json").read_text())
    return {"symbols": [m["info"] for m in markets.values()]}


def nautilus_exchange_info() -> dict[str, Any]:
    path = shared_data("nautilus_trader", "binance_rest", "http_futures_market_exchange_info.json")
    return json.loads(path.read_text())


def tickers_for(info: dict[str, Any], seed: int = 1) -> list[dict[str, Any]]:
    """Synthetic 24h tickers (GET /fapi/v1/ticker/24hr shape) for every symbol in info."""
    rng = random.Random(seed)
    return [
        {"symbol": s["symbol"], "quoteVolume": f"{rng.uniform(1e5, 1e10):.4f}",
         "openTime": CLOSE_MS - 86_400_000 + i, "closeTime": CLOSE_MS - i, "count": 1}
        for i, s in enumerate(info["symbols"])
    ]


def is_eligible(entry: dict[str, Any]) -> bool:
    return (entry["contractType"], entry["status"], entry["quoteAsset"]) == ("PERPETUAL", "TRADING", "USDT")


def test_select_on_real_exchange_info_ranks_eligible_symbols_by_quote_volume() -> None:
    info = passivbot_exchange_info()
    tickers = tickers_for(info)
    event = select_universe(info, tickers, venue=VENUE, top_n=20)
    eligible = {s["symbol"] for s in info["symbols"] if is_eligible(s)}
    expected = sorted((t for t in tickers if t["symbol"] in eligible),
                      key=lambda t: -float(t["quoteVolume"]))[:20]
    assert event.symbols == tuple(t["symbol"] for t in expected)
    assert event.members == tuple(
        UniverseMember(symbol=t["symbol"], rank=i, quote_volume=float(t["quoteVolume"]))
        for i, t in enumerate(expected, start=1))
    assert (event.venue, event.quote_asset, event.top_n) == (VENUE, "USDT", 20)
    assert event.as_of == event.ts_event == event.ts_init == CLOSE_MS * NS_PER_MS
    assert event.event_id == ids.derive("universe", VENUE, CLOSE_MS * NS_PER_MS, *event.symbols)
    assert event.added == event.symbols and event.removed == ()
    assert codec.decode(codec.encode(event)) == event


def test_select_excludes_non_usdt_non_perpetual_and_non_trading_even_with_top_volume() -> None:
    info = passivbot_exchange_info()
    tickers = tickers_for(info)
    ineligible = {s["symbol"] for s in info["symbols"] if not is_eligible(s)}
    kinds = {(s["contractType"], s["status"], s["quoteAsset"]) for s in info["symbols"] if not is_eligible(s)}
    assert {("PERPETUAL", "TRADING", "USDC"), ("PERPETUAL", "SETTLING", "USDT"),
            ("CURRENT_QUARTER", "TRADING", "USDT")} <= kinds
    for t in tickers:
        if t["symbol"] in ineligible:
            t["quoteVolume"] = "99999999999999"
    event = select_universe(info, tickers, venue=VENUE, top_n=1000)
    assert not set(event.symbols) & ineligible
    assert len(event.symbols) == sum(map(is_eligible, info["symbols"]))


def test_select_on_nautilus_exchange_info_drops_the_dated_future() -> None:
    info = nautilus_exchange_info()
    tickers = [{"symbol": "BTCUSDT_220325", "quoteVolume": "9e12", "closeTime": 3},
               {"symbol": "ETHUSDT", "quoteVolume": "2e9", "closeTime": 2},
               {"symbol": "BTCUSDT", "quoteVolume": "5e9", "closeTime": 1}]
    event = select_universe(info, tickers, venue=VENUE, top_n=5)
    assert event.symbols == ("BTCUSDT", "ETHUSDT")
    assert event.as_of == 3 * NS_PER_MS  # the newest ticker, eligible or not


def test_select_ties_are_broken_by_symbol_name() -> None:
    info = {"symbols": [{"symbol": s, "contractType": "PERPETUAL", "status": "TRADING",
                         "quoteAsset": "USDT"} for s in ("ZECUSDT", "ADAUSDT", "MKRUSDT", "BTCUSDT")]}
    tickers = [{"symbol": s, "quoteVolume": v, "closeTime": 1}
               for s, v in [("ZECUSDT", "10"), ("ADAUSDT", "10.0"), ("MKRUSDT", "10"), ("BTCUSDT", "20")]]
    event = select_universe(info, tickers, venue=VENUE, top_n=3)
    assert event.symbols == ("BTCUSDT", "ADAUSDT", "MKRUSDT")
    assert [m.rank for m in event.members] == [1, 2, 3]


def test_select_symbol_without_ticker_is_left_out() -> None:
    info = nautilus_exchange_info()
    event = select_universe(info, [{"symbol": "ETHUSDT", "quoteVolume": "1", "closeTime": 1}],
                            venue=VENUE, top_n=5)
    assert event.symbols == ("ETHUSDT",)


def test_select_added_and_removed_are_relative_to_previous() -> None:
    info = nautilus_exchange_info()
    tickers = [{"symbol": "ETHUSDT", "quoteVolume": "2", "closeTime": 1},
               {"symbol": "BTCUSDT", "quoteVolume": "1", "closeTime": 1}]
    event = select_universe(info, tickers, venue=VENUE, top_n=1, previous=("BTCUSDT", "SOLUSDT"))
    assert (event.symbols, event.added, event.removed) == (("ETHUSDT",), ("ETHUSDT",), ("BTCUSDT", "SOLUSDT"))
    same = select_universe(info, tickers, venue=VENUE, top_n=1, previous=("ETHUSDT",))
    assert (same.added, same.removed) == ((), ())


@given(seed=st.integers(0, 2**32), top_n=st.integers(1, 50))
def test_select_is_deterministic_and_independent_of_input_order(seed: int, top_n: int) -> None:
    info = nautilus_exchange_info() if seed % 2 else passivbot_exchange_info()
    tickers = tickers_for(info, seed)
    first = select_universe(info, tickers, venue=VENUE, top_n=top_n)
    shuffled_info = {"symbols": random.Random(seed).sample(info["symbols"], len(info["symbols"]))}
    shuffled = random.Random(seed + 1).sample(tickers, len(tickers))
    assert select_universe(shuffled_info, shuffled, venue=VENUE, top_n=top_n) == first


@pytest.mark.parametrize(("info", "tickers", "message"), [
    ({}, [], "exchangeInfo is missing key 'symbols'"),
    ({"symbols": [{"symbol": "X", "status": "TRADING", "quoteAsset": "USDT"}]}, [],
     "exchangeInfo.symbols[0] is missing key 'contractType'"),
    ({"symbols": []}, [{"symbol": "X", "quoteVolume": "1"}], "tickers[0] is missing key 'closeTime'"),
    ({"symbols": [{"symbol": "X", "contractType": "PERPETUAL", "status": "TRADING", "quoteAsset": "USDT"}]},
     [{"symbol": "X", "closeTime": 1}], "tickers[0] is missing key 'quoteVolume'"),
    ({"symbols": [{"symbol": "X", "contractType": "PERPETUAL", "status": "TRADING", "quoteAsset": "USDT"}]},
     [{"symbol": "X", "closeTime": 1, "quoteVolume": "lots"}], "tickers[0].quoteVolume must be a decimal"),
    ({"symbols": []}, [{"symbol": "X", "closeTime": "soon"}], "tickers[0].closeTime must be an integer"),
    ({"symbols": []}, [], "tickers is empty"),
    ({"symbols": "all"}, [], "exchangeInfo.symbols must be a list"),
])
def test_select_malformed_payload_raises_value_error_naming_the_key(
        info: dict[str, Any], tickers: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        select_universe(info, tickers, venue=VENUE, top_n=5)
    assert message in str(excinfo.value)


def test_rest_urls_point_at_usdm_endpoints() -> None:
    assert exchange_info_url("https://fapi.binance.com/") == "https://fapi.binance.com/fapi/v1/exchangeInfo"
    assert tickers_24h_url("https://fapi.binance.com") == "https://fapi.binance.com/fapi/v1/ticker/24hr"
