"""Venue errors mapped to reason codes (exchanges.trading.errors), with the codes and strings of the
venues' documentation; anything unknown is "venue_error" with the venue's text kept."""

from __future__ import annotations

import json

import pytest

from exchanges.trading.errors import VenueError, binance_error, hyperliquid_error, hyperliquid_exchange_errors
from ticktape.venues import BINANCE_USDM, HYPERLIQUID


def body(code: int, msg: str) -> bytes:
    return json.dumps({"code": code, "msg": msg}).encode()


# -- Binance USDT-M: the error-code page's codes and messages ------------------------------------


@pytest.mark.parametrize(
    "code, msg, reason, retry",
    [
        (-2019, "Margin is insufficient.", "insufficient_margin", "no"),
        (-1111, "Precision is over the maximum defined for this asset.", "invalid_precision", "no"),
        (-4164, "Order's notional must be no smaller than 5.0 (unless you choose reduce only)", "below_min_notional",
         "no"),
        (-1021, "Timestamp for this request is outside of the recvWindow.", "invalid_timestamp", "backoff"),
        (-1022, "Signature for this request is not valid.", "invalid_signature", "no"),
        (-2011, "Unknown order sent.", "unknown_order", "no"),
        (-2013, "Order does not exist.", "unknown_order", "no"),
        (-2015, "Invalid API-key, IP, or permissions for action.", "invalid_api_key", "no"),
        (-4014, "Price not increased by tick size.", "invalid_tick", "no"),
        (-4023, "Qty not increased by step size.", "invalid_lot", "no"),
        (-2022, "ReduceOnly Order is rejected.", "reduce_only_rejected", "no"),
        (-5022, "Due to the order could not be executed as maker, the Post Only order will be rejected.",
         "post_only_would_match", "no"),
        (-4116, "clientOrderId is duplicated", "duplicate_client_order_id", "query_first"),
        (-1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
         "outcome_unknown", "query_first"),
        (-1003, "Too many requests; current limit is 2400 requests per minute.", "rate_limited", "backoff"),
        (-1121, "Invalid symbol.", "unknown_symbol", "no"),
        (-1125, "This listenKey does not exist.", "invalid_listen_key", "no"),
    ],
)  # fmt: skip
def test_documented_binance_codes_map_to_reasons(code, msg, reason, retry):
    error = binance_error(400, body(code, msg))
    assert error == VenueError(venue=BINANCE_USDM, reason=reason, message=msg, http_status=400, retry=retry, code=code)


def test_binance_429_and_418_are_rate_limited_and_ip_banned_with_retry_after():
    limited = binance_error(429, body(-1003, "Too many requests."), retry_after="7")
    assert (limited.reason, limited.retry, limited.retry_after_s, limited.code) == ("rate_limited", "backoff", 7, -1003)
    banned = binance_error(418, body(-1003, "Way too many requests; IP banned until 1700000000000."), retry_after=120)
    assert (banned.reason, banned.retry, banned.retry_after_s) == ("ip_banned", "backoff", 120)
    assert binance_error(429, b"", retry_after="soon").retry_after_s is None


def test_binance_5xx_without_a_known_code_is_an_unknown_outcome():
    error = binance_error(503, b"Service Unavailable")
    assert (error.reason, error.retry, error.code, error.message) == (
        "outcome_unknown",
        "query_first",
        None,
        "Service Unavailable",
    )
    assert binance_error(502, None).reason == "outcome_unknown"
    assert binance_error(403, b"<html>WAF</html>").reason == "forbidden"


def test_an_unknown_binance_error_keeps_its_code_and_text():
    error = binance_error(400, body(-4999, "Something new."))
    assert error == VenueError(
        venue=BINANCE_USDM, reason="venue_error", message="Something new.", http_status=400, retry="no", code=-4999
    )
    unreadable = binance_error(400, b"not json at all")
    assert (unreadable.reason, unreadable.code, unreadable.message) == ("venue_error", None, "not json at all")


def test_a_long_venue_message_is_cut():
    error = binance_error(400, body(-4999, "x" * 5000))
    assert error.message.startswith("x" * 300) and error.message.endswith("(5000 chars)")


# -- Hyperliquid: the error-responses page's strings ----------------------------------------------


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Price must be divisible by tick size.", "invalid_tick"),
        ("Order must have minimum value of $10.", "below_min_notional"),
        ("Insufficient margin to place order.", "insufficient_margin"),
        ("Reduce only order would increase position.", "reduce_only_rejected"),
        ("Post only order would have immediately matched, bbo was 1.0@2.0", "post_only_would_match"),
        ("Order could not immediately match against any resting orders.", "unable_to_fill"),
        ("Invalid TP/SL price.", "invalid_trigger_price"),
        ("No liquidity available for market order.", "no_liquidity"),
        ("Order would increase open interest while open interest is capped", "open_interest_cap"),
        ("Order price too far from oracle", "price_out_of_band"),
        ("Order would cause position to exceed margin tier limit at current leverage", "max_position"),
        ("Order was never placed, already canceled, or filled.", "unknown_order"),
        ("User or API Wallet 0x5edc985e39493f019bf20f5a800c900b03cdaa3a does not exist.", "unknown_signer"),
        ("Order 0: Reduce only order would increase position", "reduce_only_rejected"),
    ],
)
def test_documented_hyperliquid_strings_map_to_reasons(text, reason):
    assert hyperliquid_error(text) == VenueError(venue=HYPERLIQUID, reason=reason, message=text, http_status=200)


def test_an_unknown_hyperliquid_error_is_venue_error_with_its_text():
    assert hyperliquid_error("Order has invalid size.") == VenueError(
        venue=HYPERLIQUID, reason="venue_error", message="Order has invalid size.", http_status=200
    )


def test_hyperliquid_http_failures():
    assert hyperliquid_error("", http_status=429).reason == "rate_limited"
    assert hyperliquid_error("", http_status=429).retry == "backoff"
    assert (hyperliquid_error("bad gateway", http_status=502).reason, hyperliquid_error("", http_status=502).retry) == (
        "outcome_unknown",
        "query_first",
    )


def test_a_batch_response_gives_one_result_per_order():
    response = {
        "status": "ok",
        "response": {
            "type": "order",
            "data": {
                "statuses": [
                    {"resting": {"oid": 77738308, "cloid": "0x0123456789abcdef0123456789abcdef"}},
                    {"error": "Order must have minimum value of $10."},
                    {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}},
                ]
            },
        },
    }
    results = hyperliquid_exchange_errors(json.dumps(response), expected=3)
    assert results[0] is None and results[2] is None
    assert results[1] == VenueError(
        venue=HYPERLIQUID, reason="below_min_notional", message="Order must have minimum value of $10.", http_status=200
    )


def test_a_cancel_batch_with_success_and_missing_order():
    response = {
        "status": "ok",
        "response": {
            "type": "cancel",
            "data": {"statuses": ["success", {"error": "Order was never placed, already canceled, or filled."}]},
        },
    }
    assert [r and r.reason for r in hyperliquid_exchange_errors(json.dumps(response), expected=2)] == [
        None,
        "unknown_order",
    ]


def test_a_whole_response_error_applies_to_every_request():
    err = {"status": "err", "response": "User or API Wallet 0x5edc985e39493f019bf20f5a800c900b03cdaa3a does not exist."}
    results = hyperliquid_exchange_errors(json.dumps(err), expected=2)
    assert [r.reason for r in results if r] == ["unknown_signer", "unknown_signer"]
    assert [r.reason for r in hyperliquid_exchange_errors(b"{not json", expected=1) if r] == ["venue_error"]
    assert [r.reason for r in hyperliquid_exchange_errors(b"[" * 10_000, expected=1) if r] == ["venue_error"]
    assert [r.reason for r in hyperliquid_exchange_errors(b"", http_status=429) if r] == ["rate_limited"]


def test_an_ok_without_statuses_is_accepted():
    assert hyperliquid_exchange_errors(b'{"status":"ok","response":{"type":"default"}}') == [None]
