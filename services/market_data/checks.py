"""Market data's checks on a closed venue bar before it is published (config.BarChecks).

They run once per closed bar, in the core, never on the frame-decoding hot path: the adapters
only decode amounts as finite and >= 0. The time checks come before the core's high-water mark,
so a bar from 1970 is reported rather than dropped as old; a bar that fails them leaves the
mark alone (a bar from 2100 must not make every later bar look old). A bar in a plausible
minute that fails the value checks does move the mark: that minute has been judged, and it is
not fetched again."""

from __future__ import annotations

from exchanges.base import Kline
from services.market_data.config import BarChecks
from ticktape.clock import NS_PER_MS, NS_PER_S
from ticktape.sanity import amount_problem, price_problem

Rejection = tuple[str, str]  # (reason code, detail)

_DAY_NS = 86_400 * NS_PER_S


class BarGuard:
    """The checks of one core (one venue, one timeframe) and, per symbol, the last accepted
    bar's open time and close: the reference of the price band."""

    def __init__(self, checks: BarChecks, timeframe_ns: int) -> None:
        self.checks = checks
        self._tf_ns = timeframe_ns
        self._min_open_ns = checks.min_open_time_ms * NS_PER_MS
        self._max_gap_ns = int(checks.max_gap_days * _DAY_NS)
        self._window_ns = checks.band_window_s * NS_PER_S
        self._ref: dict[str, tuple[int, float]] = {}  # symbol -> (open_time ns, close)

    def time_problem(self, open_ns: int, last_open_ns: int | None) -> Rejection | None:
        """Whether a bar opening at open_ns can be a bar of this symbol at all, given the open
        time of the last bar judged for it."""
        if open_ns < self._min_open_ns:
            return (
                "open_time",
                f"open_time {open_ns // NS_PER_MS} ms is before min_open_time_ms {self._min_open_ns // NS_PER_MS}",
            )
        if open_ns % self._tf_ns:
            return "open_time", f"open_time {open_ns // NS_PER_MS} ms is not on a timeframe boundary"
        if last_open_ns is not None and open_ns - last_open_ns > self._max_gap_ns:
            days = (open_ns - last_open_ns) / _DAY_NS
            return (
                "open_time",
                f"open_time is {days:.1f} days after the previous bar (max_gap_days {self.checks.max_gap_days:g})",
            )
        return None

    def value_problem(self, k: Kline, open_ns: int) -> Rejection | None:
        """Prices, range, volumes, then the band around the previous accepted close."""
        c, mv = self.checks, self.checks.max_volume
        # One chained comparison for the common case (NaN fails every comparison); the
        # reasons are worked out only for a bar that fails it.
        sound = (
            c.min_price <= k.low <= k.open <= k.high <= c.max_price
            and k.low <= k.close <= k.high
            and 0.0 <= k.volume <= mv
            and 0.0 <= k.quote_volume <= mv
            and 0.0 <= k.taker_buy_volume <= mv
            and 0.0 <= k.taker_buy_quote_volume <= mv
        )
        if not sound:
            return self._why_not_sound(k)
        ref = self._ref.get(k.symbol)
        if ref is not None and open_ns - ref[0] <= self._window_ns:
            low, high = ref[1] / c.max_move, ref[1] * c.max_move
            if not (low <= k.low and k.high <= high):
                return "price_band", (
                    f"low {k.low} / high {k.high} outside [{low:g}, {high:g}]: more than a factor "
                    f"{c.max_move:g} from the previous close {ref[1]}"
                )
        return None

    def _why_not_sound(self, k: Kline) -> Rejection:
        c = self.checks
        for name, value in (("open", k.open), ("high", k.high), ("low", k.low), ("close", k.close)):
            problem = price_problem(name, value, low=c.min_price, high=c.max_price)
            if problem is not None:
                return "price", problem
        if not (k.low <= min(k.open, k.close) and max(k.open, k.close) <= k.high):
            return "range", f"open/close must lie within [low, high] (got o={k.open} h={k.high} l={k.low} c={k.close})"
        for name, value in (
            ("volume", k.volume),
            ("quote_volume", k.quote_volume),
            ("taker_buy_volume", k.taker_buy_volume),
            ("taker_buy_quote_volume", k.taker_buy_quote_volume),
        ):
            problem = amount_problem(name, value, high=c.max_volume)
            if problem is not None:
                return "volume", problem
        raise AssertionError(f"bar {k.symbol} {k.open_time} failed the checks for no reason")  # unreachable

    def accept(self, symbol: str, open_ns: int, close: float) -> None:
        """A bar of symbol was published (or read back from the stream): the band's new reference."""
        ref = self._ref.get(symbol)
        if ref is None or open_ns >= ref[0]:
            self._ref[symbol] = (open_ns, close)
