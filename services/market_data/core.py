"""Market-data core: one venue's frames and REST backfill in; each closed bar out exactly once,
every public trade out as a TradeTick, and (optionally) higher-timeframe bars aggregated.

Pure: no I/O and no clock; the shell passes ts_init (and now_ms for backfill) in. The venue's
wire format lives in its adapter (exchanges). Per symbol the core keeps the
open time of the last bar it published (a high-water mark), so a bar is never emitted twice and
bars leave in open-time order, as strategies folding EMAs need. After a (re)connect the shell
calls reset_connection(symbols) and backfills those symbols from backfill_start_ms before
feeding the connection's live frames: a live bar published first would make the older
backfilled bars look stale.

Trades are not deduplicated here (Hyperliquid trade ids are not monotonic, and a resubscribe
replays recent trades): their ids are the natural key (venue, symbol, trade id), so JetStream's
duplicate window drops a replayed trade.

A live bar that arrives after missing minutes (a skipped frame, a reconnect) is held back and
reported by gaps(); the shell backfills the symbol and then release()s it, so bars always leave
in open-time order with no hole.

Every closed bar is checked once before it is published (checks.BarGuard, config.BarChecks):
finite prices within a sane band, a consistent range, sane volumes, a plausible open time, and
high/low within a factor of the previous close. A bar that fails becomes a BarRejected with a
reason code in the output, in its place, and no BarClosed exists for its minute."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from exchanges import adapter_for
from exchanges.base import AGGRESSOR, FrameError, HttpRequest, Kline, Trade, VenueAdapter
from services.market_data.aggregate import BarAggregator
from services.market_data.checks import BarGuard
from services.market_data.config import BarChecks
from ticktape import ids
from ticktape.clock import NS_PER_MS, TIMEFRAME_NS
from ticktape.events import BarClosed, BarRejected, TradeTick

# The core consumes nothing from the bus; the shell follows the universe itself.
FILTER_SUBJECTS: tuple[str, ...] = ()

MarketEvent = BarClosed | BarRejected | TradeTick
BarEvent = BarClosed | BarRejected


class MarketDataCore:
    """Turns one venue's kline and trade streams of one timeframe into BarClosed and TradeTick
    events; with `aggregate`, each published bar also feeds a BarAggregator whose bars follow it
    in the output. `checks` decide which closed bars are published (the others are reported as
    BarRejected)."""

    def __init__(
        self,
        adapter: VenueAdapter | str,
        timeframe: str = "1m",
        *,
        aggregate: Sequence[str] = (),
        checks: BarChecks | None = None,
    ) -> None:
        if timeframe not in TIMEFRAME_NS:
            raise ValueError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAME_NS)}")
        self.adapter: VenueAdapter = adapter_for(adapter) if isinstance(adapter, str) else adapter
        self._parse = self.adapter.parse
        self.venue = self.adapter.venue
        self.timeframe = timeframe
        self._tf_ns = TIMEFRAME_NS[timeframe]
        # symbol -> open_time (ns) of the last bar judged in a plausible minute: published or refused
        self._last: dict[str, int] = {}
        self.guard = BarGuard(checks if checks is not None else BarChecks(), self._tf_ns)
        self.aggregator = BarAggregator(aggregate, base=timeframe) if aggregate else None
        # symbol -> live closed klines held back because minutes before them are missing
        self._held: dict[str, list[tuple[Kline, int]]] = {}
        self._trade_prefix: dict[str, str] = {}  # symbol -> ids.trade_id_prefix(venue, symbol)

    def on_frame(self, raw: bytes | str, ts_init: int) -> list[MarketEvent]:
        """The trades in this WebSocket frame and the bar it closes (or its BarRejected), if
        any, in frame order; [] for open bars, acks and repeats. Raises FrameError for a
        malformed frame (the shell counts and dead-letters it); the core's state is unchanged
        then."""
        items = self._parse(raw)
        if not items:
            return []
        out: list[MarketEvent] = []
        venue, prefixes = self.venue, self._trade_prefix
        for item in items:
            if isinstance(item, Trade):
                symbol, trade_id = item.symbol, str(item.trade_id)
                prefix = prefixes.get(symbol)
                if prefix is None:
                    prefix = prefixes[symbol] = ids.trade_id_prefix(venue, symbol)
                out.append(
                    TradeTick(
                        event_id=prefix + trade_id,
                        ts_event=item.time_ms * NS_PER_MS,
                        ts_init=ts_init,
                        venue=venue,
                        symbol=symbol,
                        trade_id=trade_id,
                        price=item.price,
                        size=item.size,
                        aggressor=AGGRESSOR[item.buyer_maker],
                    )
                )
            elif item.closed:
                if item.interval != self.timeframe:
                    raise FrameError(f"kline interval {item.interval!r} is not this core's {self.timeframe!r}")
                held = self._held.get(item.symbol)
                last = self._last.get(item.symbol)
                if held is not None:
                    held.append((item, ts_init))
                elif last is not None and item.open_time * NS_PER_MS > last + self._tf_ns:
                    self._held[item.symbol] = [(item, ts_init)]  # a gap: backfill it first
                else:
                    self._publish(item, ts_init, False, out)
        return out

    def gaps(self) -> list[str]:
        """Symbols whose latest live bar is held because earlier minutes are missing; the shell
        backfills each (on_backfill until backfill_start_ms stops advancing) and then calls
        release(symbol)."""
        return list(self._held)

    def release(self, symbol: str) -> list[MarketEvent]:
        """Publish the held live bars of symbol after its gap was backfilled (or the venue had
        nothing for those minutes, e.g. Hyperliquid minutes without trades)."""
        out: list[MarketEvent] = []
        for kline, ts_init in self._held.pop(symbol, []):
            self._publish(kline, ts_init, False, out)
        return out

    def on_backfill(self, symbol: str, body: bytes | str | list[Any], ts_init: int, now_ms: int) -> list[BarEvent]:
        """Backfill from the adapter's REST response: bars closed before now_ms (server time)
        and newer than the last published one, oldest first, marked backfilled (and the
        rejections of those that fail the checks). Call again from backfill_start_ms until
        that no longer advances."""
        klines = sorted(self.adapter.parse_backfill(body, symbol, self.timeframe), key=lambda k: k.open_time)
        out: list[BarEvent] = []
        for kline in klines:
            if kline.close_time >= now_ms:
                break  # the bar still forming (venues return it last)
            self._publish(kline, ts_init, True, out)
        return out

    def backfill_request(self, rest_url: str, symbol: str, *, limit: int, now_ms: int) -> HttpRequest:
        """The REST call that fetches the bars after the last published one (or the most
        recent `limit` when none is known)."""
        return self.adapter.backfill_request(
            rest_url, symbol, self.timeframe, start_ms=self.backfill_start_ms(symbol), limit=limit, now_ms=now_ms
        )

    def reset_connection(self, symbols: Iterable[str] | None = None) -> None:
        """A connection carrying these symbols (all when None) was (re)opened: forget their
        per-connection venue state (Hyperliquid's candles in progress), so nothing seen before
        the disconnect is emitted as closed. Then backfill them."""
        self.adapter.reset(symbols)

    def seed_last(self, symbol: str, open_time_ns: int, close: float | None = None) -> None:
        """Mark bars up to open_time_ns as already published (e.g. read back from the stream);
        `close`, when known, is that bar's close: the reference of the next bar's price band."""
        if open_time_ns > self._last.get(symbol, -1):
            self._last[symbol] = open_time_ns
        if close is not None:
            self.guard.accept(symbol, open_time_ns, close)

    def warm(self, bars: Iterable[BarClosed]) -> None:
        """Restart: bars of this venue and timeframe already published, oldest first (at least
        since the start of the longest aggregate window). Seeds the high-water marks and
        rebuilds the aggregator's open windows; nothing is emitted."""
        for bar in bars:
            if bar.venue != self.venue or bar.timeframe != self.timeframe:
                continue
            self.seed_last(bar.symbol, bar.open_time, bar.close)
            if self.aggregator is not None:
                self.aggregator.on_bar(bar)

    def last_open_time(self, symbol: str) -> int | None:
        """Open time (ns) of the last bar published for symbol, or None if none yet."""
        return self._last.get(symbol)

    def backfill_start_ms(self, symbol: str) -> int | None:
        """REST start time (ms) of the first bar not yet published; None when nothing is known,
        so the shell fetches the most recent `backfill_limit` bars instead."""
        last = self._last.get(symbol)
        return None if last is None else (last + self._tf_ns) // NS_PER_MS

    def symbols(self) -> Iterable[str]:
        return self._last.keys()

    def _publish(self, k: Kline, ts_init: int, backfilled: bool, out: list[BarEvent] | list[MarketEvent]) -> None:
        open_ns = k.open_time * NS_PER_MS
        last = self._last.get(k.symbol)
        rejection = self.guard.time_problem(open_ns, last)
        if rejection is not None:  # before the staleness check: a 1970 bar is reported, not dropped as old
            out.append(self._rejected(k, open_ns, ts_init, backfilled, rejection))
            return
        if last is not None and open_ns <= last:
            return
        self._last[k.symbol] = open_ns  # judged: a refused minute is not fetched again
        rejection = self.guard.value_problem(k, open_ns)
        if rejection is not None:
            out.append(self._rejected(k, open_ns, ts_init, backfilled, rejection))
            return
        self.guard.accept(k.symbol, open_ns, k.close)
        close_ns = k.close_time * NS_PER_MS
        bar = BarClosed(
            event_id=ids.bar_id(self.venue, k.symbol, self.timeframe, open_ns),
            ts_event=close_ns,
            ts_init=ts_init,
            venue=self.venue,
            symbol=k.symbol,
            timeframe=self.timeframe,
            open_time=open_ns,
            close_time=close_ns,
            open=k.open,
            high=k.high,
            low=k.low,
            close=k.close,
            volume=k.volume,
            quote_volume=k.quote_volume,
            trades=k.trades,
            taker_buy_volume=k.taker_buy_volume,
            taker_buy_quote_volume=k.taker_buy_quote_volume,
            backfilled=backfilled,
        )
        out.append(bar)
        if self.aggregator is not None:
            out.extend(self.aggregator.on_bar(bar))

    def _rejected(
        self, k: Kline, open_ns: int, ts_init: int, backfilled: bool, rejection: tuple[str, str]
    ) -> BarRejected:
        bar_id = ids.bar_id(self.venue, k.symbol, self.timeframe, open_ns)
        return BarRejected(
            event_id=ids.child_id(bar_id, "market_data.reject", 0),
            ts_event=k.close_time * NS_PER_MS,
            ts_init=ts_init,
            venue=self.venue,
            symbol=k.symbol,
            timeframe=self.timeframe,
            open_time=open_ns,
            reason=rejection[0],
            detail=rejection[1],
            backfilled=backfilled,
        )
