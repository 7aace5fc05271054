"""The query parameters of each endpoint, as msgspec Structs: they validate the request (a bad one
is a 400 problem naming the parameter) and give the OpenAPI document its parameters."""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

import msgspec

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_:\-/]+$")]
Offset = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
Nanos = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
# a calendar day: 29 and 30 in every month but February, 31 in the seven that have it (February
# 29th is left to nanoseconds: a pattern cannot tell leap years)
_DATE = r"(19|20)\d{2}-((0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
_TIME = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?"
AsOf = Annotated[
    str,
    msgspec.Meta(
        pattern=rf"^([0-8]?\d{{1,18}}|{_DATE}T{_TIME}(Z|[+-]([01]\d|2[0-3]):[0-5]\d))$",
        max_length=40,
        description="nanoseconds since the epoch, or an ISO 8601 UTC time with its offset (2026-11-30T00:00:00Z)",
    ),
]


class NoQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class SymbolsQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: Token | None = None
    as_of: AsOf | None = None


class SignalsQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: Token | None = None
    strategy: Token | None = None


class PositionsQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    account: Token | None = None
    venue: Token | None = None
    symbol: Token | None = None
    open_only: bool = False


class AccountsQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    account: Token | None = None


class OrdersQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    account: Token | None = None
    strategy: Token | None = None
    venue: Token | None = None
    symbol: Token | None = None
    side: Literal["buy", "sell"] | None = None
    status: Literal["submitted", "filled", "canceled"] | None = None
    offset: Offset = 0
    limit: Limit = 100


class FillsQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    account: Token | None = None
    strategy: Token | None = None
    venue: Token | None = None
    symbol: Token | None = None
    side: Literal["buy", "sell"] | None = None
    order_id: Token | None = None
    since_ns: Nanos | None = None
    until_ns: Nanos | None = None
    offset: Offset = 0
    limit: Limit = 100


class PerformanceQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    account: Token | None = None
    strategy: Token | None = None
    window_s: Annotated[float, msgspec.Meta(gt=0, le=86_400 * 366)] | None = None


class BadParameter(ValueError):
    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(f"{parameter}: {detail}")
        self.parameter = parameter
        self.detail = detail


def parse_time(parameter: str, value: str) -> int:
    """Nanoseconds since the epoch from an integer or an ISO 8601 time with an offset."""
    if value.isdigit():
        ns = int(value)
        if ns > 2**63 - 1:
            raise BadParameter(parameter, "out of range")
        return ns
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter(parameter, "expected nanoseconds since the epoch or an ISO 8601 time") from None
    if when.tzinfo is None:
        raise BadParameter(parameter, "an ISO 8601 time needs its UTC offset (Z or +00:00)")
    try:
        return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
    except (OverflowError, ValueError, OSError):
        raise BadParameter(parameter, "out of range") from None
