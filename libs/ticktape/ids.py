"""Deterministic identifiers: every id is a function of its inputs, so a retry or a replay
produces the same id and JetStream's duplicate window drops the second publish."""

from __future__ import annotations

import hashlib

_SEP = "\x1f"


def derive(*parts: object) -> str:
    """A 32-hex-char id from the ordered parts (str/int/float/None/bool)."""
    key = _SEP.join("" if p is None else str(p) for p in parts)
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def bar_id(venue: str, symbol: str, timeframe: str, open_time: int) -> str:
    """A bar's id: the same (venue, symbol, timeframe, open time) always gives the same id."""
    return derive("bar", venue, symbol, timeframe, open_time)


def child_id(cause_id: str, handler: str, index: int = 0) -> str:
    """The id of the index-th event that `handler` emits in response to event `cause_id`."""
    return derive("child", cause_id, handler, index)


def trade_id_prefix(venue: str, symbol: str) -> str:
    """Trade ids are the natural key `t:<venue>:<symbol>:<venue trade id>`: unique, readable and
    cheap on the hottest path (no hash per trade); this is the part before the venue's id."""
    return f"t:{venue}:{symbol}:"


def trade_id(venue: str, symbol: str, venue_trade_id: str) -> str:
    return trade_id_prefix(venue, symbol) + venue_trade_id
