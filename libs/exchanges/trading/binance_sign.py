"""Binance USDT-M SIGNED requests: HMAC-SHA256 (stdlib hmac) of the query string, keyed by the
API secret, appended as the last parameter `signature` (binance-docs, USDⓈ-M futures general
info, "SIGNED (TRADE and USER_DATA) Endpoint Security"):

  totalParams = the query string (we send every parameter there, nothing in the body)
  signature   = hex(HMAC-SHA256(secretKey, totalParams)), lowercase
  the request also carries `timestamp` (ms, when it was made) and `recvWindow` (ms it stays
  valid; Binance's default is 5000), and the API key in the header X-MBX-APIKEY.

The docs' own example is the test vector (tests/unit/test_binance_signing.py). The timestamp is
the caller's: nothing here reads a clock.

BinanceCredentials holds the API key and secret: its repr and str say "***" for both, it cannot
be pickled, and no error raised here quotes either."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

__all__ = [
    "API_KEY_HEADER",
    "BinanceCredentials",
    "CredentialError",
    "encode_params",
    "hmac_sha256_hex",
    "signed_query",
]

API_KEY_HEADER = "X-MBX-APIKEY"
DEFAULT_RECV_WINDOW_MS = 5000


class CredentialError(ValueError):
    """An API key or secret that cannot be used; the message never contains it."""


def _printable(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable() or " " in value:
        raise CredentialError(f"the Binance {what} must be a non-empty string of printable ASCII without spaces")
    return value


def hmac_sha256_hex(secret: str, payload: str) -> str:
    """Binance's signature of payload: lowercase hex HMAC-SHA256 keyed by the secret. Also what
    the venue simulator recomputes to check a request."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


class BinanceCredentials:
    """An account's API key and secret. Never shows them: repr/str are redacted."""

    __slots__ = ("_api_key", "_secret")

    def __init__(self, api_key: str, secret: str) -> None:
        self._api_key = _printable(api_key, "API key")
        self._secret = _printable(secret, "API secret")

    def sign(self, payload: str) -> str:
        """hmac_sha256_hex(secret, payload)."""
        return hmac_sha256_hex(self._secret, payload)

    def headers(self) -> dict[str, str]:
        """The header that authenticates a request: {"X-MBX-APIKEY": api key}. For the HTTP
        client only; never log it."""
        return {API_KEY_HEADER: self._api_key}

    def __repr__(self) -> str:
        return "BinanceCredentials(api_key=***, secret=***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("BinanceCredentials holds an API secret and cannot be pickled")


def encode_params(params: Sequence[tuple[str, str]]) -> str:
    """key=value&... in the given order, percent-encoded (RFC 3986 unreserved characters kept);
    exactly the text that is sent and signed."""
    return urlencode(list(params), quote_via=quote, safe="")


def _positive_ms(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int (ms), got {value!r}")
    return value


def signed_query(
    params: Sequence[tuple[str, str]],
    credentials: BinanceCredentials,
    *,
    timestamp_ms: int,
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
) -> str:
    """The full query string of a SIGNED request: the parameters in order, then recvWindow and
    timestamp, then signature (HMAC of everything before it)."""
    _positive_ms(timestamp_ms, "timestamp_ms")
    _positive_ms(recv_window_ms, "recv_window_ms")
    names = {key for key, _ in params}
    if names & {"timestamp", "recvWindow", "signature"}:
        raise ValueError("timestamp, recvWindow and signature are added by signed_query, not passed in")
    total = encode_params([*params, ("recvWindow", str(recv_window_ms)), ("timestamp", str(timestamp_ms))])
    return f"{total}&signature={credentials.sign(total)}"
