"""The funding a venue books on a live account, as VenueFunding events: Hyperliquid's userFundings
channel (a snapshot of the account's settlements when it subscribes, then each new one), and
Binance USDT-M's FUNDING_FEE income records (GET /fapi/v1/income, asked for when the user
stream's ACCOUNT_UPDATE says a funding fee moved the balance: that frame names no symbol).
Pure: times are parameters, ids derive from the account, symbol and settlement time, so a
settlement seen on the stream and again in a snapshot or a re-query is one event.

A snapshot lists the account's whole history; only settlements at or after `since_ms` are taken
(the first live order of the account in the log: before it, the positions were not ours)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from ticktape.events import VenueFunding
from ticktape.events import venue as ids
from ticktape.venues import BINANCE_USDM, HYPERLIQUID


class FundingReportError(ValueError):
    """A funding report that does not have the documented shape (the text says what)."""


class _HlFunding(msgspec.Struct):
    time: int
    coin: str
    usdc: str
    szi: str = "0"
    fundingRate: str = "0"


class _HlFundings(msgspec.Struct):
    fundings: list[_HlFunding]
    isSnapshot: bool = False


class _HlFrame(msgspec.Struct):
    channel: str
    data: Any = None


_hl_frame = msgspec.json.Decoder(_HlFrame)


def _number(text: str, what: str) -> float:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FundingReportError(f"{what}: not a number ({text!r})") from None
    if not value.is_finite():
        raise FundingReportError(f"{what}: not finite ({text!r})")
    return float(value)


def funding(
    account: str, venue: str, symbol: str, time_ms: int, amount: float, *, received_ns: int,
    quantity: float = 0.0, rate: float = 0.0,
) -> VenueFunding:  # fmt: skip
    return VenueFunding(
        event_id=ids.funding_id(venue, account, symbol, time_ms),
        ts_event=time_ms * 1_000_000,
        ts_init=received_ns,
        account=account,
        venue=venue,
        symbol=symbol,
        funding_time=time_ms * 1_000_000,
        amount=amount,
        quantity=quantity,
        rate=rate,
    )


def hyperliquid_fundings(account: str, frame: bytes | str, *, since_ms: int, received_ns: int) -> list[VenueFunding]:
    """The settlements of one userFundings frame, oldest first (another channel: none)."""
    try:
        parsed = _hl_frame.decode(frame)
    except msgspec.DecodeError as exc:
        raise FundingReportError(f"Hyperliquid frame: {exc}") from None
    if parsed.channel != "userFundings":
        return []
    try:
        data = msgspec.convert(parsed.data, _HlFundings)
    except msgspec.ValidationError as exc:
        raise FundingReportError(f"Hyperliquid userFundings frame: {exc}") from None
    rows = [f for f in data.fundings if not data.isSnapshot or f.time >= since_ms]
    return [
        funding(
            account,
            HYPERLIQUID,
            f.coin,
            f.time,
            _number(f.usdc, "usdc"),
            received_ns=received_ns,
            quantity=_number(f.szi, "szi"),
            rate=_number(f.fundingRate, "fundingRate"),
        )  # fmt: skip
        for f in sorted(rows, key=lambda f: (f.time, f.coin))
    ]


class _BinanceIncome(msgspec.Struct):
    symbol: str
    incomeType: str
    income: str
    time: int


def binance_fundings(account: str, records: Any, *, since_ms: int, received_ns: int) -> list[VenueFunding]:
    """The FUNDING_FEE records of a GET /fapi/v1/income answer at or after since_ms, oldest first."""
    try:
        rows = msgspec.convert(records, list[_BinanceIncome])
    except msgspec.ValidationError as exc:
        raise FundingReportError(f"Binance income: {exc}") from None
    return [
        funding(account, BINANCE_USDM, r.symbol, r.time, _number(r.income, "income"), received_ns=received_ns)
        for r in sorted(rows, key=lambda r: (r.time, r.symbol))
        if r.incomeType == "FUNDING_FEE" and r.symbol and r.time >= since_ms
    ]


def binance_funding_fee(frame: bytes | str) -> bool:
    """Whether a Binance user-stream frame is an ACCOUNT_UPDATE for a funding fee."""
    try:
        doc = msgspec.json.decode(frame)
    except msgspec.DecodeError:
        return False
    return isinstance(doc, dict) and doc.get("e") == "ACCOUNT_UPDATE" and (doc.get("a") or {}).get("m") == "FUNDING_FEE"
