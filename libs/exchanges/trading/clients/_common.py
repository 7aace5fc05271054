"""What both execution clients share: the failure a query raises, transport problems as venue
errors, the wall clock in ms, a bounded pause, and JSON decoding of answers."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from exchanges.base import excerpt
from exchanges.trading.clients._http import NotSent
from exchanges.trading.clients.pacing import RateLimitWait
from exchanges.trading.errors import VenueError
from exchanges.trading.model import ResponseError
from ticktape import jsonlimits

RATE_LIMITED = ("rate_limited", "ip_banned")  # the reasons of a venue that wants us to wait
TRANSPORT_BACKOFF_S = 0.5  # first pause after a connection failure, doubled per attempt
TRANSPORT_BACKOFF_MAX_S = 8.0


class VenueCallFailed(Exception):
    """A query (not an order) the venue did not answer usefully after the retries; `error` says
    why with a reason code. The message is the venue's text, never a URL or a key."""

    def __init__(self, error: VenueError) -> None:
        super().__init__(f"{error.venue} {error.reason}: {error.message}")
        self.error = error


def wall_ms() -> int:
    """The wall clock in ms: Binance's `timestamp` and Hyperliquid's nonce are wall-clock times."""
    return time.time_ns() // 1_000_000


def not_sent(venue: str, detail: str) -> VenueError:
    return VenueError(venue=venue, reason="venue_unavailable", message=f"not sent: {detail}", http_status=0,
                      retry="backoff")  # fmt: skip


def no_answer(venue: str, detail: str) -> VenueError:
    return VenueError(venue=venue, reason="outcome_unknown", message=f"no answer: {detail}", http_status=0,
                      retry="query_first")  # fmt: skip


def transport_error(venue: str, exc: Exception) -> VenueError:
    """not_sent for a NotSent (nothing reached the venue), else no_answer."""
    return not_sent(venue, str(exc)) if isinstance(exc, NotSent) else no_answer(venue, str(exc))


def over_deadline(venue: str, last: VenueError, exc: RateLimitWait) -> VenueError:
    """The error to report when going on would wait past the deadline: the venue's own 429/418
    refusal when this call got it, else what closed the gate (another client's refusal, or our
    own pacing) as rate_limited / ip_banned."""
    if last.reason in RATE_LIMITED:
        return last
    return VenueError(venue=venue, reason=exc.reason, message=str(exc), http_status=0, retry="backoff")


def bad_response(venue: str, status: int, detail: str) -> VenueError:
    return VenueError(venue=venue, reason="bad_response", message=excerpt(detail), http_status=status,
                      retry="query_first")  # fmt: skip


def transport_pause_s(failures: int) -> float:
    """The pause after `failures` connection failures in a row (>= 1)."""
    return min(TRANSPORT_BACKOFF_MAX_S, TRANSPORT_BACKOFF_S * 2 ** max(0, failures - 1))


def decode(body: bytes) -> Any:
    """An answer's JSON (depth-limited); ResponseError if it is not JSON."""
    try:
        return jsonlimits.decode(body)
    except (msgspec.DecodeError, jsonlimits.TooDeep):
        raise ResponseError(f"not JSON: {excerpt(body)}") from None
