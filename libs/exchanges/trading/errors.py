"""Venue error responses mapped to stable reason codes, for the reason of an OrderRejected event
and for what the shell does next.

Each mapping names its source. Binance: the USDⓈ-M futures error-code page
(developers.binance.com/docs/derivatives/usds-margined-futures/error-code) and the HTTP return
codes of its general info (429 rate limit, 418 IP banned after more 429s, both with Retry-After
in seconds; 5XX "the execution status is UNKNOWN and could have been a success"). Hyperliquid:
the error strings of for-developers/api/error-responses (one per order or cancel of a batch,
{"error": "<string>"}), and a top-level {"status":"err","response":"<string>"}, of which "User or
API Wallet <address> does not exist." is what a signature by an unknown key gets (a bad signature
recovers to some unknown address). Hyperliquid strings are matched case-insensitively anywhere in
the text (a batch may prefix them, "Order 0: ...").

An error no mapping knows is "venue_error", with the venue's text kept (cut to 300 characters).

`retry` says what the shell may do: "no" (final: the order does not exist), "backoff" (nothing
happened; try again later, after retry_after_s when the venue said), "query_first" (the order may
exist: ask the venue by client order id before sending it again)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from exchanges.base import excerpt
from ticktape import jsonlimits
from ticktape.venues import BINANCE_USDM, HYPERLIQUID

__all__ = ["VenueError", "binance_error", "hyperliquid_error", "hyperliquid_exchange_errors"]

Retry = Literal["no", "backoff", "query_first"]
VENUE_ERROR = "venue_error"


class VenueError(msgspec.Struct, frozen=True, kw_only=True):
    """One venue error: the stable reason code, the venue's own code (Binance) and text, the HTTP
    status, what may be done next, and for rate limits how long to wait."""

    venue: str
    reason: str
    message: str
    http_status: int
    retry: Retry = "no"
    code: int | None = None
    retry_after_s: int | None = None


# -- Binance USDT-M ----------------------------------------------------------------------------

_B: dict[int, tuple[str, Retry]] = {
    # 10xx general server or network issues
    -1000: ("outcome_unknown", "query_first"),  # UNKNOWN: an unknown error occurred while processing
    -1001: ("venue_unavailable", "backoff"),  # DISCONNECTED: unable to process your request
    -1003: ("rate_limited", "backoff"),  # TOO_MANY_REQUESTS
    -1006: ("outcome_unknown", "query_first"),  # UNEXPECTED_RESP: execution status unknown
    -1007: ("outcome_unknown", "query_first"),  # TIMEOUT: send status unknown; execution status unknown
    -1008: ("venue_unavailable", "backoff"),  # Request Throttled: server overloaded
    -1015: ("rate_limited", "backoff"),  # TOO_MANY_ORDERS
    -1016: ("venue_unavailable", "backoff"),  # SERVICE_SHUTTING_DOWN
    -1021: ("invalid_timestamp", "backoff"),  # INVALID_TIMESTAMP: outside recvWindow / ahead of server
    -1022: ("invalid_signature", "no"),  # INVALID_SIGNATURE
    # 11xx request issues
    -1100: ("bad_request", "no"),  # ILLEGAL_CHARS
    -1101: ("bad_request", "no"),  # TOO_MANY_PARAMETERS
    -1102: ("bad_request", "no"),  # MANDATORY_PARAM_EMPTY_OR_MALFORMED
    -1103: ("bad_request", "no"),  # UNKNOWN_PARAM
    -1104: ("bad_request", "no"),  # UNREAD_PARAMETERS
    -1105: ("bad_request", "no"),  # PARAM_EMPTY
    -1106: ("bad_request", "no"),  # PARAM_NOT_REQUIRED
    -1111: ("invalid_precision", "no"),  # BAD_PRECISION: precision over the maximum for the asset
    -1115: ("bad_request", "no"),  # INVALID_TIF
    -1116: ("bad_request", "no"),  # INVALID_ORDER_TYPE
    -1117: ("bad_request", "no"),  # INVALID_SIDE
    -1121: ("unknown_symbol", "no"),  # BAD_SYMBOL
    -1125: ("invalid_listen_key", "no"),  # INVALID_LISTEN_KEY
    -1128: ("bad_request", "no"),  # OPTIONAL_PARAMS_BAD_COMBO
    -1130: ("bad_request", "no"),  # INVALID_PARAMETER
    # 20xx processing issues
    -2010: ("order_rejected", "no"),  # NEW_ORDER_REJECTED
    -2011: ("unknown_order", "no"),  # CANCEL_REJECTED: "Unknown order sent" (not in the book)
    -2013: ("unknown_order", "no"),  # NO_SUCH_ORDER
    -2014: ("invalid_api_key", "no"),  # BAD_API_KEY_FMT
    -2015: ("invalid_api_key", "no"),  # REJECTED_MBX_KEY: invalid API-key, IP, or permissions
    -2018: ("insufficient_margin", "no"),  # BALANCE_NOT_SUFFICIENT
    -2019: ("insufficient_margin", "no"),  # MARGIN_NOT_SUFFICIEN(T)
    -2020: ("unable_to_fill", "no"),  # UNABLE_TO_FILL
    -2021: ("would_trigger_immediately", "no"),  # ORDER_WOULD_IMMEDIATELY_TRIGGER
    -2022: ("reduce_only_rejected", "no"),  # REDUCE_ONLY_REJECT
    -2024: ("insufficient_position", "no"),  # POSITION_NOT_SUFFICIENT
    -2025: ("max_open_orders", "no"),  # MAX_OPEN_ORDER_EXCEEDED
    -2027: ("max_position", "no"),  # MAX_LEVERAGE_RATIO: above the max position at current leverage
    # 40xx filters and other issues
    -4001: ("invalid_price", "no"),  # PRICE_LESS_THAN_ZERO
    -4002: ("invalid_price", "no"),  # PRICE_GREATER_THAN_MAX_PRICE
    -4003: ("invalid_quantity", "no"),  # QTY_LESS_THAN_ZERO
    -4004: ("invalid_lot", "no"),  # QTY_LESS_THAN_MIN_QTY
    -4005: ("max_quantity", "no"),  # QTY_GREATER_THAN_MAX_QTY
    -4013: ("invalid_price", "no"),  # PRICE_LESS_THAN_MIN_PRICE
    -4014: ("invalid_tick", "no"),  # PRICE_NOT_INCREASED_BY_TICK_SIZE
    -4015: ("invalid_client_order_id", "no"),  # INVALID_CL_ORD_ID_LEN
    -4016: ("price_out_of_band", "no"),  # PRICE_HIGHTER_THAN_MULTIPLIER_UP (mark price cap)
    -4023: ("invalid_lot", "no"),  # QTY_NOT_INCREASED_BY_STEP_SIZE
    -4024: ("price_out_of_band", "no"),  # PRICE_LOWER_THAN_MULTIPLIER_DOWN
    -4061: ("position_side_mismatch", "no"),  # POSITION_SIDE_NOT_MATCH (hedge mode setting)
    # DUPLICATED_CLIENT_ORDER_ID: the venue already has an order with this id, i.e. an earlier
    # attempt arrived: look it up, never send under a new id
    -4116: ("duplicate_client_order_id", "query_first"),
    -4131: ("price_out_of_band", "no"),  # MARKET_ORDER_REJECT: best price beyond PERCENT_PRICE
    -4164: ("below_min_notional", "no"),  # MIN_NOTIONAL: "(unless you choose reduce only)"
    # 50xx order execution issues
    -5021: ("unable_to_fill", "no"),  # FOK_ORDER_REJECT
    -5022: ("post_only_would_match", "no"),  # GTX_ORDER_REJECT: could not be executed as maker
}


class _BinanceBody(msgspec.Struct):
    code: int
    msg: str = ""


_binance_decoder = jsonlimits.Limited(msgspec.json.Decoder(_BinanceBody))


def _retry_after(value: str | int | None) -> int | None:
    """Retry-After in seconds (Binance sends an integer); None when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = int(str(value).strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def binance_error(http_status: int, body: bytes | str | None, *, retry_after: str | int | None = None) -> VenueError:
    """The VenueError of a Binance USDT-M response that is not a success: its HTTP status, its
    body ({"code": -2019, "msg": "Margin is insufficient."}) and its Retry-After header."""
    text = "" if body is None else excerpt(body)
    code: int | None = None
    message = text
    if body:
        try:
            parsed = _binance_decoder.decode(body)
        except msgspec.DecodeError:
            pass
        else:
            code, message = parsed.code, excerpt(parsed.msg)
    reason: str
    retry: Retry
    if http_status == 418:
        reason, retry = "ip_banned", "backoff"
    elif http_status == 429:
        reason, retry = "rate_limited", "backoff"
    elif code is not None and code in _B:
        reason, retry = _B[code]
    elif http_status >= 500 or http_status == 408:
        # 5XX: "the execution status is UNKNOWN and could have been a success"; 408: a timeout
        reason, retry = "outcome_unknown", "query_first"
    elif http_status == 403:
        reason, retry = "forbidden", "backoff"  # the WAF limit was violated
    else:
        reason, retry = VENUE_ERROR, "no"
    return VenueError(
        venue=BINANCE_USDM,
        reason=reason,
        message=message,
        http_status=http_status,
        retry=retry,
        code=code,
        retry_after_s=_retry_after(retry_after),
    )


# -- Hyperliquid -------------------------------------------------------------------------------

# (lowercase fragment of the documented error string, reason); the first that matches wins.
_H: tuple[tuple[str, str], ...] = (
    ("price must be divisible by tick size", "invalid_tick"),  # Tick
    ("order must have minimum value of", "below_min_notional"),  # MinTradeNtl, MinTradeSpotNtl
    ("insufficient margin", "insufficient_margin"),  # PerpMargin: "Insufficient margin to place order."
    ("reduce only order would increase position", "reduce_only_rejected"),  # ReduceOnly
    ("post only order would have immediately matched", "post_only_would_match"),  # BadAloPx
    ("could not immediately match against any resting orders", "unable_to_fill"),  # IocCancel
    ("invalid tp/sl price", "invalid_trigger_price"),  # BadTriggerPx
    ("no liquidity available for market order", "no_liquidity"),  # MarketOrderNoLiquidity
    ("while open interest is capped", "open_interest_cap"),  # PositionIncrease/FlipAtOpenInterestCap
    ("more aggressive than oracle while at open interest cap", "open_interest_cap"),  # TooAggressiveAtOpenInterestCap
    ("would increase open interest too quickly", "open_interest_cap"),  # OpenInterestIncrease
    ("insufficient spot balance", "insufficient_margin"),  # InsufficientSpotBalance
    ("price too far from oracle", "price_out_of_band"),  # Oracle
    ("exceed margin tier limit", "max_position"),  # PerpMaxPosition
    ("never placed, already canceled, or filled", "unknown_order"),  # MissingOrder (cancel)
    ("user or api wallet", "unknown_signer"),  # "User or API Wallet 0x... does not exist."
)


def hyperliquid_error(message: object, *, http_status: int = 200) -> VenueError:
    """The VenueError of one Hyperliquid error string (a batch status's "error", or the
    "response" of a status "err"), or of an HTTP failure (429 rate limited; 5XX unknown outcome)."""
    text = excerpt(message if isinstance(message, str) else repr(message))
    if http_status == 429:
        return VenueError(venue=HYPERLIQUID, reason="rate_limited", message=text, http_status=429, retry="backoff")
    lowered = text.lower()
    for fragment, reason in _H:
        if fragment in lowered:
            return VenueError(venue=HYPERLIQUID, reason=reason, message=text, http_status=http_status)
    if http_status >= 500 or http_status == 408:
        return VenueError(
            venue=HYPERLIQUID, reason="outcome_unknown", message=text, http_status=http_status, retry="query_first"
        )
    return VenueError(venue=HYPERLIQUID, reason=VENUE_ERROR, message=text, http_status=http_status)


def hyperliquid_exchange_errors(
    body: bytes | str, *, http_status: int = 200, expected: int = 1
) -> list[VenueError | None]:
    """Per request of a POST /exchange batch, its VenueError or None (accepted: resting, filled,
    "success"). A response that is an error as a whole ({"status":"err"}, an HTTP failure, an
    unreadable body) gives the same error for each of the `expected` requests."""
    if http_status != 200:
        return [hyperliquid_error(excerpt(body), http_status=http_status)] * expected
    try:
        doc: Any = jsonlimits.decode(body)
    except (msgspec.DecodeError, jsonlimits.TooDeep):
        return [hyperliquid_error(f"unreadable /exchange response: {excerpt(body)}")] * expected
    if not isinstance(doc, dict) or doc.get("status") != "ok":
        response = doc.get("response") if isinstance(doc, dict) else doc
        return [hyperliquid_error(response if isinstance(response, str) else excerpt(body))] * expected
    data = doc.get("response", {}).get("data") if isinstance(doc.get("response"), dict) else None
    statuses = data.get("statuses") if isinstance(data, dict) else None
    if not isinstance(statuses, list):
        return [None] * expected  # an ok without statuses (e.g. modify): accepted as a whole
    out: list[VenueError | None] = []
    for status in statuses:
        if isinstance(status, dict) and "error" in status:
            error = status["error"]
            out.append(hyperliquid_error(error if isinstance(error, str) else repr(error)))
        else:
            out.append(None)
    return out
