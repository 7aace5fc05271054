"""Typed settings of the market-data service (section `market_data` of ticktape.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from exchanges import adapter_for
from ticktape import sanity
from ticktape.clock import TIMEFRAME_NS

VenueName = Literal["binance_usdm", "binance_spot", "hyperliquid"]


class VenueFeedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One venue's feed. URLs default to the venue's production endpoints (or to the venue
    simulator when `venue_sim` is set); streams_per_connection defaults to 100, capped by the
    venue's documented limit."""

    venue: VenueName
    rest_url: str | None = None
    ws_url: str | None = None
    streams_per_connection: Annotated[int, msgspec.Meta(ge=1)] = 100
    trades: bool = False

    def __post_init__(self) -> None:
        cap = adapter_for(self.venue).limits.streams_per_connection
        if self.streams_per_connection > cap:
            raise ValueError(
                f"streams_per_connection must be <= {cap} for {self.venue} (got {self.streams_per_connection})"
            )


class BarChecks(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a closed venue bar must satisfy to be published; one that fails becomes a BarRejected
    (md.rejected.<venue>.<symbol>) with a reason code, and no bar is published for its minute.

    Prices within [min_price, max_price] (inside ticktape.sanity's hard band, so no consumer
    refuses a published bar), low <= open, close <= high, volumes finite, >= 0 and <= max_volume,
    open_time on a timeframe boundary, not before min_open_time_ms and at most max_gap_days after
    the symbol's previous bar. High and low must lie within a factor max_move of the previous
    accepted close, when that bar opened at most band_window_s before: the first bar of a symbol,
    or the first after a longer silence (a run of rejections included), has no band, so a real
    repricing is refused for band_window_s at most."""

    min_price: Annotated[float, msgspec.Meta(ge=sanity.MIN_PRICE, le=sanity.MAX_PRICE)] = sanity.MIN_PRICE
    max_price: Annotated[float, msgspec.Meta(ge=sanity.MIN_PRICE, le=sanity.MAX_PRICE)] = sanity.MAX_PRICE
    max_volume: Annotated[float, msgspec.Meta(gt=0, le=sanity.MAX_AMOUNT)] = sanity.MAX_AMOUNT
    max_move: Annotated[float, msgspec.Meta(gt=1)] = 10.0
    band_window_s: Annotated[int, msgspec.Meta(ge=0)] = 3600
    # 2009-01-01 UTC: before any crypto venue; narrow it to a venue's launch if you like.
    min_open_time_ms: Annotated[int, msgspec.Meta(ge=0)] = 1_230_768_000_000
    max_gap_days: Annotated[float, msgspec.Meta(gt=0)] = 366.0

    def __post_init__(self) -> None:
        if self.min_price >= self.max_price:
            raise ValueError(f"min_price must be < max_price (got {self.min_price} >= {self.max_price})")


class MarketDataConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which venues to follow, which bars to build, backfill depth, reconnect backoff."""

    venues: tuple[VenueFeedConfig, ...] = (VenueFeedConfig(venue="binance_usdm"),)
    timeframe: str = "1m"
    aggregate: tuple[str, ...] = ("5m", "15m", "1h", "4h", "1d")
    backfill_limit: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 1000
    reconnect_backoff_initial_s: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    reconnect_backoff_max_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    status_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    publish_window: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 2000
    # Bars go to the event log as JetStream atomic batches (ticktape.bus.atomic): one fsync per
    # batch instead of per bar under nats.sync_interval `always`, acked only once stored. false:
    # one publish per bar (pipelined). A server without atomic batches turns them off by itself.
    atomic_batches: bool = True
    bar_checks: BarChecks = BarChecks()
    # Perpetual funding (FundingRate on md.funding.<venue>.<symbol>): every funding_poll_s each
    # perp venue's funding history is asked for the followed symbols' settlements since the last
    # one published (on a stream without one: since funding_lookback_s ago). None: not polled.
    funding_poll_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    funding_lookback_s: Annotated[float, msgspec.Meta(gt=0)] = 8 * 3600.0

    def __post_init__(self) -> None:
        if self.timeframe != "1m":
            raise ValueError(f"timeframe must be 1m (bars are aggregated from 1m; got {self.timeframe!r})")
        bad = [tf for tf in self.aggregate if tf not in TIMEFRAME_NS or tf == "1m"]
        if bad:
            allowed = ", ".join(t for t in TIMEFRAME_NS if t != "1m")
            raise ValueError(f"aggregate must be a subset of {allowed} (got {', '.join(bad)})")
        names = [v.venue for v in self.venues]
        if len(set(names)) != len(names):
            raise ValueError(f"venues must be distinct (got {', '.join(names)})")
        if self.reconnect_backoff_max_s < self.reconnect_backoff_initial_s:
            raise ValueError(
                "reconnect_backoff_max_s must be >= reconnect_backoff_initial_s "
                f"(got {self.reconnect_backoff_max_s} < {self.reconnect_backoff_initial_s})"
            )
