"""Typed settings of the market-data service (section `market_data` of ticktape.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from exchanges import adapter_for
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
