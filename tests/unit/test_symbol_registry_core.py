"""select_universe: per venue, the top N eligible symbols by 24h quote volume from the venue's REST
payloads (parsed by the shared adapters), deterministic, clear on bad input.

Payloads are real captures where they exist: Binance USDT-M exchangeInfo (passivbot, nautilus),
Binance spot exchangeInfo (cryptofeed, nautilus), Hyperliquid meta and its Date header (the
hyperliquid-python-sdk cassette) with real per-asset dayNtlVlm (nautilus's allDexsAssetCtxs
capture). No 24h ticker list was captured, so Binance tickers are synthetic."""

from __future__ import annotations

import functools
import json
import random
from decimal import Decimal
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges import FrameError, UniverseEntry
from services.symbol_registry.core import as_of_ms, http_date_ms, select_universe, universe_event
from ticktape import ids
from ticktape.clock import NS_PER_MS
from ticktape.events import codec
from ticktape.testing.data import shared_data
from ticktape.venues import BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID

CLOSE_MS = 1742990400000
CASSETTE_DATE = "Mon, 17 Jul 2023 21:43:21 GMT"
CASSETTE_DATE_MS = 1689630201000


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# -- real payloads -------------------------------------------------------------------------------


@functools.cache  # read-only: tests never modify it
def passivbot_usdm_info() -> dict[str, Any]:
    """The /fapi/v1/exchangeInfo symbol entries that passivbot's ccxt dump keeps under `info`."""
    markets = json.loads(shared_data("passivbot", "binanceusdm_markets.json").read_text())
    return {"symbols": [m["info"] for m in markets.values()]}


@functools.cache  # read-only: tests never modify it
def nautilus_usdm_info() -> dict[str, Any]:
    path = shared_data("nautilus_trader", "binance_rest", "http_futures_market_exchange_info.json")
    return json.loads(path.read_text())


@functools.cache  # read-only: tests never modify it
def cryptofeed_spot_info() -> dict[str, Any]:
    """GET api.binance.com/api/v3/exchangeInfo as cryptofeed recorded it: `url -> ts: body`."""
    line = shared_data("cryptofeed", "BINANCE.0").read_text().splitlines()[0]
    assert line.startswith("https://api.binance.com/api/v3/exchangeInfo -> ")
    return json.loads(line.split(": ", 1)[1])


@functools.cache  # read-only: tests never modify it
def nautilus_spot_info() -> dict[str, Any]:
    path = shared_data("nautilus_trader", "binance_rest", "http_spot_market_exchange_info.json")
    return json.loads(path.read_text())


def cassette_meta() -> tuple[dict[str, Any], str]:
    """Hyperliquid's POST /info {"type": "meta"} response (28 perps) and its Date header."""
    tape = yaml.safe_load(shared_data("hyperliquid_python_sdk_cassettes", "test_get_info.yaml").read_text())
    response = next(i["response"] for i in tape["interactions"] if json.loads(i["request"]["body"])["type"] == "meta")
    return json.loads(response["body"]["string"]), response["headers"]["date"][0]


def main_dex_ctxs() -> list[dict[str, Any]]:
    """The main perp dex's asset contexts (dayNtlVlm etc.) from a real allDexsAssetCtxs frame."""
    frame = json.loads(shared_data("nautilus_trader", "hyperliquid", "ws_all_dexs_asset_ctxs.json").read_text())
    return dict(frame["data"]["ctxs"])[""]


def hyperliquid_body() -> tuple[bytes, dict[str, Any], list[dict[str, Any]]]:
    """A metaAndAssetCtxs body [meta, ctxs] from the cassette's meta and the captured contexts.
    Hyperliquid's asset index never changes (delisted perps keep theirs), so the i-th context of
    the later capture belongs to the i-th asset of the earlier meta (prices agree: BTC, ETH, SOL...)."""
    meta, _ = cassette_meta()
    ctxs = main_dex_ctxs()[: len(meta["universe"])]
    return dumps([meta, ctxs]), meta, ctxs


def tickers_for(info: dict[str, Any], seed: int = 1) -> list[dict[str, Any]]:
    """Synthetic 24h tickers (GET .../ticker/24hr shape) for every symbol in info."""
    rng = random.Random(seed)
    return [
        {
            "symbol": s["symbol"],
            "quoteVolume": f"{rng.uniform(1e5, 1e10):.4f}",
            "openTime": CLOSE_MS - 86_400_000 + i,
            "closeTime": CLOSE_MS - i,
            "count": 1,
        }
        for i, s in enumerate(info["symbols"])
    ]


def usdm_eligible(entry: dict[str, Any]) -> bool:
    return (entry["contractType"], entry["status"], entry["quoteAsset"]) == ("PERPETUAL", "TRADING", "USDT")


def spot_eligible(entry: dict[str, Any]) -> bool:
    return entry["status"] == "TRADING" and entry["quoteAsset"] == "USDT" and entry["isSpotTradingAllowed"]


def expected_ranking(tickers: list[dict[str, Any]], eligible: set[str], top_n: int) -> list[dict[str, Any]]:
    return sorted(
        (t for t in tickers if t["symbol"] in eligible), key=lambda t: (-float(t["quoteVolume"]), t["symbol"])
    )[:top_n]


def binance(venue: str, info: dict[str, Any], tickers: list[dict[str, Any]], top_n: int, **kwargs: Any):
    return select_universe(venue, [dumps(info), dumps(tickers)], quote_asset="USDT", top_n=top_n, **kwargs)


# -- Binance USDT-M ------------------------------------------------------------------------------


def test_usdm_on_real_exchange_info_ranks_usdt_perpetuals_by_quote_volume() -> None:
    info = passivbot_usdm_info()
    tickers = tickers_for(info)
    event = binance(BINANCE_USDM, info, tickers, 20)
    expected = expected_ranking(tickers, {s["symbol"] for s in info["symbols"] if usdm_eligible(s)}, 20)
    assert event.symbols == tuple(t["symbol"] for t in expected)
    assert tuple((m.symbol, m.rank, m.quote_volume) for m in event.members) == tuple(
        (t["symbol"], i, float(t["quoteVolume"])) for i, t in enumerate(expected, start=1)
    )
    assert (event.venue, event.quote_asset, event.top_n) == (BINANCE_USDM, "USDT", 20)
    assert event.as_of == event.ts_event == event.ts_init == CLOSE_MS * NS_PER_MS
    assert event.event_id == ids.derive("universe", BINANCE_USDM, CLOSE_MS * NS_PER_MS, *event.symbols)
    assert event.added == event.symbols and event.removed == ()
    assert codec.decode(codec.encode(event)) == event


def test_usdm_excludes_non_usdt_non_perpetual_and_non_trading_even_with_top_volume() -> None:
    info = passivbot_usdm_info()
    tickers = tickers_for(info)
    ineligible = {s["symbol"] for s in info["symbols"] if not usdm_eligible(s)}
    kinds = {(s["contractType"], s["status"], s["quoteAsset"]) for s in info["symbols"] if not usdm_eligible(s)}
    assert {
        ("PERPETUAL", "TRADING", "USDC"),
        ("PERPETUAL", "SETTLING", "USDT"),
        ("CURRENT_QUARTER", "TRADING", "USDT"),
    } <= kinds
    for t in tickers:
        if t["symbol"] in ineligible:
            t["quoteVolume"] = "99999999999999"
    event = binance(BINANCE_USDM, info, tickers, 1000)
    assert not set(event.symbols) & ineligible
    assert len(event.symbols) == sum(map(usdm_eligible, info["symbols"]))


def test_usdm_as_of_is_the_newest_ticker_eligible_or_not_and_dated_futures_are_dropped() -> None:
    tickers = [
        {"symbol": "BTCUSDT_220325", "quoteVolume": "9e12", "closeTime": 3},
        {"symbol": "ETHUSDT", "quoteVolume": "2e9", "closeTime": 2},
        {"symbol": "BTCUSDT", "quoteVolume": "5e9", "closeTime": 1},
    ]
    event = binance(BINANCE_USDM, nautilus_usdm_info(), tickers, 5, date_ms=CASSETTE_DATE_MS)
    assert event.symbols == ("BTCUSDT", "ETHUSDT")
    assert event.as_of == 3 * NS_PER_MS  # the payload's time wins over the Date header


def test_ties_are_broken_by_symbol_name() -> None:
    info = {
        "symbols": [
            {"symbol": s, "contractType": "PERPETUAL", "status": "TRADING", "quoteAsset": "USDT"}
            for s in ("ZECUSDT", "ADAUSDT", "MKRUSDT", "BTCUSDT")
        ]
    }
    tickers = [
        {"symbol": s, "quoteVolume": v, "closeTime": 1}
        for s, v in [("ZECUSDT", "10"), ("ADAUSDT", "10.0"), ("MKRUSDT", "10"), ("BTCUSDT", "20")]
    ]
    event = binance(BINANCE_USDM, info, tickers, 3)
    assert event.symbols == ("BTCUSDT", "ADAUSDT", "MKRUSDT")
    assert [m.rank for m in event.members] == [1, 2, 3]


def test_symbol_without_ticker_is_left_out() -> None:
    event = binance(BINANCE_USDM, nautilus_usdm_info(), [{"symbol": "ETHUSDT", "quoteVolume": "1", "closeTime": 1}], 5)
    assert event.symbols == ("ETHUSDT",)


def test_added_and_removed_are_relative_to_previous() -> None:
    info = nautilus_usdm_info()
    tickers = [
        {"symbol": "ETHUSDT", "quoteVolume": "2", "closeTime": 1},
        {"symbol": "BTCUSDT", "quoteVolume": "1", "closeTime": 1},
    ]
    event = binance(BINANCE_USDM, info, tickers, 1, previous=("BTCUSDT", "SOLUSDT"))
    assert (event.symbols, event.added, event.removed) == (("ETHUSDT",), ("ETHUSDT",), ("BTCUSDT", "SOLUSDT"))
    same = binance(BINANCE_USDM, info, tickers, 1, previous=("ETHUSDT",))
    assert (same.added, same.removed) == ((), ())


@settings(deadline=None)  # 2 MB of real exchangeInfo per example: wall time is not what this checks
@given(seed=st.integers(0, 2**32), top_n=st.integers(1, 50))
def test_selection_is_deterministic_and_independent_of_input_order(seed: int, top_n: int) -> None:
    venue, info = [
        (BINANCE_USDM, nautilus_usdm_info()),
        (BINANCE_USDM, passivbot_usdm_info()),
        (BINANCE_SPOT, cryptofeed_spot_info()),
    ][seed % 3]
    tickers = tickers_for(info, seed)
    first = binance(venue, info, tickers, top_n)
    shuffled_info = {"symbols": random.Random(seed).sample(info["symbols"], len(info["symbols"]))}
    shuffled = random.Random(seed + 1).sample(tickers, len(tickers))
    assert binance(venue, shuffled_info, shuffled, top_n) == first


# -- Binance spot --------------------------------------------------------------------------------


def test_spot_on_real_exchange_info_keeps_trading_usdt_pairs_open_to_spot_trading() -> None:
    info = cryptofeed_spot_info()
    kinds = {(s["status"], s["quoteAsset"] == "USDT", s["isSpotTradingAllowed"]) for s in info["symbols"]}
    assert {("BREAK", True, True), ("TRADING", True, False), ("TRADING", False, True)} <= kinds
    tickers = tickers_for(info, seed=7)
    ineligible = {s["symbol"] for s in info["symbols"] if not spot_eligible(s)}
    for t in tickers:
        if t["symbol"] in ineligible:
            t["quoteVolume"] = "99999999999999"  # the most traded, and still left out
    event = binance(BINANCE_SPOT, info, tickers, 1000)
    expected = expected_ranking(tickers, {s["symbol"] for s in info["symbols"] if spot_eligible(s)}, 1000)
    assert event.symbols == tuple(t["symbol"] for t in expected)
    assert len(event.symbols) == 275 and event.venue == BINANCE_SPOT
    assert event.as_of == CLOSE_MS * NS_PER_MS


def test_spot_ranks_in_the_configured_quote_asset() -> None:
    info = nautilus_spot_info()  # BTCUSDT and ETHUSDT, both TRADING
    tickers = [
        {"symbol": "BTCUSDT", "quoteVolume": "1e9", "closeTime": 5},
        {"symbol": "ETHUSDT", "quoteVolume": "2e9", "closeTime": 5},
    ]
    assert binance(BINANCE_SPOT, info, tickers, 5).symbols == ("ETHUSDT", "BTCUSDT")
    busd = select_universe(BINANCE_SPOT, [dumps(info), dumps(tickers)], quote_asset="BUSD", top_n=5)
    assert busd.symbols == () and busd.quote_asset == "BUSD"


# -- Hyperliquid ---------------------------------------------------------------------------------


def test_hyperliquid_on_real_meta_and_contexts_ranks_perps_by_day_notional_volume() -> None:
    body, meta, ctxs = hyperliquid_body()
    _, date = cassette_meta()
    event = select_universe(HYPERLIQUID, [body], quote_asset="USDC", top_n=10, date_ms=http_date_ms(date))
    volumes = {a["name"]: Decimal(c["dayNtlVlm"]) for a, c in zip(meta["universe"], ctxs, strict=True)}
    expected = sorted(volumes, key=lambda name: (-volumes[name], name))[:10]
    assert event.symbols == tuple(expected)
    assert event.symbols[:3] == ("BTC", "ETH", "SOL")
    assert "MATIC" not in event.symbols  # no volume since it was delisted
    assert [m.quote_volume for m in event.members] == [float(volumes[s]) for s in expected]
    assert (event.venue, event.quote_asset, event.top_n) == (HYPERLIQUID, "USDC", 10)
    assert event.as_of == event.ts_event == CASSETTE_DATE_MS * NS_PER_MS
    assert event.event_id == ids.derive("universe", HYPERLIQUID, CASSETTE_DATE_MS * NS_PER_MS, *event.symbols)


def test_hyperliquid_leaves_out_delisted_perps_even_with_top_volume() -> None:
    meta = json.loads(shared_data("nautilus_trader", "hyperliquid", "http_meta_perp_sample.json").read_text())
    assert [a["isDelisted"] for a in meta["universe"]] == [None, None, None]
    meta["universe"][2]["isDelisted"] = True
    ctxs = [{"dayNtlVlm": v} for v in ("5.0", "7.5", "1e12")]
    event = select_universe(HYPERLIQUID, [dumps([meta, ctxs])], quote_asset="USDC", top_n=5, date_ms=1)
    assert event.symbols == ("ETH", "BTC")


def test_hyperliquid_as_of_needs_the_date_header() -> None:
    body, _, _ = hyperliquid_body()
    with pytest.raises(ValueError, match="Date header"):
        select_universe(HYPERLIQUID, [body], quote_asset="USDC", top_n=5)
    assert as_of_ms(HYPERLIQUID, [body], 42) == 42


def test_hyperliquid_refuses_a_quote_asset_other_than_usdc() -> None:
    body, _, _ = hyperliquid_body()
    with pytest.raises(ValueError, match="USDC"):
        select_universe(HYPERLIQUID, [body], quote_asset="USDT", top_n=5, date_ms=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (CASSETTE_DATE, CASSETTE_DATE_MS),
        ("Thu, 01 Jan 1970 00:00:01 GMT", 1000),
        (None, None),
        ("", None),
        ("yesterday", None),
        ("Mon, 17 Jul 2023 21:43:21 -0000", None),
    ],
)
def test_http_date_header_in_ms(value: str | None, expected: int | None) -> None:
    assert http_date_ms(value) == expected


# -- several venues ------------------------------------------------------------------------------


def test_each_venue_gets_its_own_universe_from_its_own_payloads() -> None:
    usdm_info, spot_info = passivbot_usdm_info(), cryptofeed_spot_info()
    hl_body, _, _ = hyperliquid_body()
    payloads = {
        BINANCE_USDM: ([dumps(usdm_info), dumps(tickers_for(usdm_info, 1))], "USDT"),
        BINANCE_SPOT: ([dumps(spot_info), dumps(tickers_for(spot_info, 2))], "USDT"),
        HYPERLIQUID: ([hl_body], "USDC"),
    }
    events = {
        venue: select_universe(venue, bodies, quote_asset=quote, top_n=5, date_ms=CASSETTE_DATE_MS)
        for venue, (bodies, quote) in payloads.items()
    }
    assert {v: e.venue for v, e in events.items()} == {v: v for v in payloads}
    assert all(len(e.symbols) == 5 for e in events.values())
    assert len({e.event_id for e in events.values()}) == 3
    assert events[HYPERLIQUID].symbols[0] == "BTC" and events[BINANCE_SPOT].symbols[0].endswith("USDT")
    # one venue's payloads never change another's universe
    again = select_universe(BINANCE_SPOT, payloads[BINANCE_SPOT][0], quote_asset="USDT", top_n=5)
    assert again == events[BINANCE_SPOT]


def test_same_symbols_on_two_venues_get_different_ids() -> None:
    entries = [UniverseEntry("BTCUSDT", 2.0), UniverseEntry("ETHUSDT", 1.0)]
    usdm = universe_event(BINANCE_USDM, entries, quote_asset="USDT", top_n=2, as_of=1)
    spot = universe_event(BINANCE_SPOT, entries, quote_asset="USDT", top_n=2, as_of=1)
    assert usdm.symbols == spot.symbols and usdm.event_id != spot.event_id


def test_universe_event_rejects_a_top_n_below_one() -> None:
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        universe_event(BINANCE_USDM, [], quote_asset="USDT", top_n=0, as_of=1)


# -- bad payloads --------------------------------------------------------------------------------

USDM_OK_INFO = {"symbols": [{"symbol": "X", "contractType": "PERPETUAL", "status": "TRADING", "quoteAsset": "USDT"}]}


@pytest.mark.parametrize(
    ("venue", "bodies", "message"),
    [
        (BINANCE_USDM, [b"{}", b"[]"], "bad exchangeInfo"),
        (BINANCE_USDM, [b"<html>", b"[]"], "bad exchangeInfo"),
        (BINANCE_USDM, [dumps(USDM_OK_INFO), b'{"code": -1003}'], "bad ticker/24hr"),
        (
            BINANCE_USDM,
            [dumps(USDM_OK_INFO), dumps([{"symbol": "X", "quoteVolume": "lots", "closeTime": 1}])],
            "bad ticker/24hr",
        ),
        (BINANCE_USDM, [dumps(USDM_OK_INFO), dumps([{"symbol": "X", "quoteVolume": "1"}])], "bad ticker/24hr"),
        (BINANCE_USDM, [dumps(USDM_OK_INFO), b"[]"], "ticker/24hr is empty"),
        (BINANCE_SPOT, [dumps(USDM_OK_INFO)], "expected 2 bodies"),
        (HYPERLIQUID, [b"null"], "bad metaAndAssetCtxs"),
        (HYPERLIQUID, [dumps([{"universe": [{"name": "BTC"}]}, []])], "1 assets but 0 contexts"),
        (HYPERLIQUID, [dumps([{"universe": [{"name": "BTC"}]}, [{"dayNtlVlm": "-1"}]])], "bad metaAndAssetCtxs"),
    ],
)
def test_malformed_payload_raises_frame_error_saying_what_is_wrong(
    venue: str, bodies: list[bytes], message: str
) -> None:
    quote = "USDC" if venue == HYPERLIQUID else "USDT"
    with pytest.raises(FrameError) as excinfo:
        select_universe(venue, bodies, quote_asset=quote, top_n=5, date_ms=1)
    assert message in str(excinfo.value)
