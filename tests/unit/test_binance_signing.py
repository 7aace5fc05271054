"""Binance USDT-M HMAC-SHA256 signing (exchanges.trading.binance_sign) against the example of
Binance's own docs, and the credentials that never show.

The vector: binance-docs, USDⓈ-M futures general info, "SIGNED Endpoint Examples for POST
/fapi/v1/order - HMAC Keys", Example 1 (as a query string) and Example 2 (as a request body; same
totalParams, same signature): apiKey dbefbc80..., secretKey 2b5eb11e..., and
  echo -n "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000
           &timestamp=1591702613943" | openssl dgst -sha256 -hmac "<secretKey>"
  (stdin)= 3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"""

from __future__ import annotations

import copy
import hashlib
import hmac
import pickle

import pytest

from exchanges.trading.binance_sign import (
    API_KEY_HEADER,
    BinanceCredentials,
    CredentialError,
    encode_params,
    hmac_sha256_hex,
    signed_query,
)

DOCS_API_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
DOCS_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
DOCS_TOTAL_PARAMS = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943"
)
DOCS_SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
DOCS_PARAMS = [
    ("symbol", "BTCUSDT"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("quantity", "1"),
    ("price", "9000"),
    ("timeInForce", "GTC"),
]


def test_hmac_of_the_docs_total_params_is_the_docs_signature():
    assert hmac_sha256_hex(DOCS_SECRET, DOCS_TOTAL_PARAMS) == DOCS_SIGNATURE


def test_signed_query_of_the_docs_parameters_is_the_docs_query_and_signature():
    creds = BinanceCredentials(DOCS_API_KEY, DOCS_SECRET)
    query = signed_query(DOCS_PARAMS, creds, timestamp_ms=1591702613943, recv_window_ms=5000)
    assert query == f"{DOCS_TOTAL_PARAMS}&signature={DOCS_SIGNATURE}"


def test_the_default_recv_window_is_binances_5000():
    creds = BinanceCredentials(DOCS_API_KEY, DOCS_SECRET)
    assert signed_query(DOCS_PARAMS, creds, timestamp_ms=1591702613943).endswith(f"&signature={DOCS_SIGNATURE}")


def test_the_api_key_goes_in_the_header_only():
    creds = BinanceCredentials(DOCS_API_KEY, DOCS_SECRET)
    assert creds.headers() == {"X-MBX-APIKEY": DOCS_API_KEY} == {API_KEY_HEADER: DOCS_API_KEY}
    query = signed_query(DOCS_PARAMS, creds, timestamp_ms=1591702613943)
    assert DOCS_API_KEY not in query and DOCS_SECRET not in query


def test_a_value_that_needs_escaping_is_signed_as_sent():
    creds = BinanceCredentials("k", "s")
    query = signed_query([("newClientOrderId", "a/b:c.d_e-f")], creds, timestamp_ms=1, recv_window_ms=2)
    total = "newClientOrderId=a%2Fb%3Ac.d_e-f&recvWindow=2&timestamp=1"
    expected = hmac.new(b"s", total.encode(), hashlib.sha256).hexdigest()
    assert query == f"{total}&signature={expected}"
    assert encode_params([("x", "a b&c=d")]) == "x=a%20b%26c%3Dd"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timestamp_ms": 0},
        {"timestamp_ms": -1},
        {"timestamp_ms": 1.5},
        {"timestamp_ms": True},
        {"timestamp_ms": 1, "recv_window_ms": 0},
    ],
)
def test_signed_query_refuses_a_timestamp_or_window_that_is_no_positive_int(kwargs):
    with pytest.raises(ValueError):
        signed_query(DOCS_PARAMS, BinanceCredentials("k", "s"), **kwargs)


@pytest.mark.parametrize("name", ["timestamp", "recvWindow", "signature"])
def test_signed_query_refuses_parameters_it_adds_itself(name):
    with pytest.raises(ValueError, match="added by signed_query"):
        signed_query([(name, "1")], BinanceCredentials("k", "s"), timestamp_ms=1)


def test_credentials_never_show_key_or_secret():
    creds = BinanceCredentials(DOCS_API_KEY, DOCS_SECRET)
    for text in (repr(creds), str(creds), f"{creds}", repr({"c": creds})):
        assert DOCS_API_KEY not in text and DOCS_SECRET not in text
        assert "api_key=***" in text and "secret=***" in text


def test_credentials_cannot_be_pickled_or_copied():
    creds = BinanceCredentials(DOCS_API_KEY, DOCS_SECRET)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(creds)
    with pytest.raises(TypeError):
        copy.deepcopy(creds)


@pytest.mark.parametrize(
    "api_key, secret, what",
    [
        ("", DOCS_SECRET, "API key"),
        (DOCS_API_KEY, "", "API secret"),
        (DOCS_API_KEY, DOCS_SECRET + " x", "API secret"),
        (DOCS_API_KEY + "\n", DOCS_SECRET, "API key"),
        (DOCS_API_KEY, "ßecret" + DOCS_SECRET, "API secret"),
        (None, DOCS_SECRET, "API key"),
    ],
)
def test_bad_credentials_are_refused_without_quoting_them(api_key, secret, what):
    with pytest.raises(CredentialError) as err:
        BinanceCredentials(api_key, secret)
    message = str(err.value)
    assert what in message
    assert DOCS_API_KEY not in message and DOCS_SECRET not in message
