"""Typed settings of the symbol-registry service (section `symbol_registry` of ticktape.yaml).

Either a list of venues, each ranked on its own:

    symbol_registry:
      venues:
        - {venue: binance_usdm, top_n: 20}                   # quote_asset USDT, rest_url the adapter's
        - {venue: hyperliquid, top_n: 10}                    # quote_asset USDC
      refresh_interval_s: 86400

or, as before venues existed, one venue from the flat keys `venue`, `top_n`, `quote_asset` and
`rest_url` (all optional: `{top_n: 3}` is binance_usdm top 3). Not both. After decoding, `venues`
always holds the effective list with every default filled in (the flat keys are moved into it), so
the logged config hash says exactly what ran and the struct re-encodes to a config that decodes to
itself."""

from __future__ import annotations

from typing import Annotated

import msgspec

from exchanges import adapter_for
from ticktape.venues import ALL, BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID

# A pattern rather than a Literal: msgspec's error for a Literal does not list the allowed values,
# this one does ("symbol_registry.venues[1].venue: Expected `str` matching regex
# '^(binance_spot|binance_usdm|hyperliquid)$' (got 'kraken')").
VenueName = Annotated[str, msgspec.Meta(pattern=f"^({'|'.join(ALL)})$")]
TopN = Annotated[int, msgspec.Meta(ge=1, le=1000)]

# The quote asset each venue's universe is ranked in unless configured: Binance's deepest books are
# USDT pairs; Hyperliquid perps are all margined and quoted in USDC.
DEFAULT_QUOTE_ASSET = {BINANCE_USDM: "USDT", BINANCE_SPOT: "USDT", HYPERLIQUID: "USDC"}
# The only quote asset a venue's universe can have, where it has just one.
ONLY_QUOTE_ASSET = {HYPERLIQUID: "USDC"}
DEFAULT_VENUE = BINANCE_USDM
DEFAULT_TOP_N = 20


class VenueUniverseConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One venue's universe: its top_n symbols quoted in quote_asset by 24h quote volume, read from
    rest_url (None: the venue adapter's default_rest_url; the global venue_sim overrides it)."""

    venue: VenueName
    top_n: TopN = DEFAULT_TOP_N
    quote_asset: str = ""  # "": the venue's default (DEFAULT_QUOTE_ASSET)
    rest_url: str = ""  # "": the adapter's default_rest_url

    def __post_init__(self) -> None:
        if self.venue not in ALL:  # direct construction skips the pattern check
            raise ValueError(f"venue must be one of {', '.join(ALL)} (got {self.venue!r})")
        if not self.quote_asset:
            msgspec.structs.force_setattr(self, "quote_asset", DEFAULT_QUOTE_ASSET[self.venue])
        only = ONLY_QUOTE_ASSET.get(self.venue)
        if only is not None and self.quote_asset != only:
            raise ValueError(
                f"quote_asset: {self.venue} lists only {only}-quoted perps "
                f"(got {self.quote_asset!r}); remove the key or set it to {only}"
            )
        if not self.rest_url:
            msgspec.structs.force_setattr(self, "rest_url", adapter_for(self.venue).default_rest_url)


class SymbolRegistryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The venues to rank and how often to refresh them (on start, then every refresh_interval_s)."""

    venues: tuple[VenueUniverseConfig, ...] = ()
    refresh_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 86400.0
    # Single-venue shorthand (the keys of the one-venue registry); only when `venues` is not set.
    venue: VenueName | None = None
    top_n: TopN | None = None
    quote_asset: str | None = None
    rest_url: str | None = None

    def __post_init__(self) -> None:
        flat = {
            k: v
            for k, v in (
                ("venue", self.venue),
                ("top_n", self.top_n),
                ("quote_asset", self.quote_asset),
                ("rest_url", self.rest_url),
            )
            if v is not None
        }
        if self.venues and flat:
            raise ValueError(
                f"set either venues or the single-venue keys, not both (got venues and "
                f"{', '.join(flat)}); move {', '.join(flat)} into a venues entry"
            )
        if not self.venues:
            only = VenueUniverseConfig(
                venue=self.venue or DEFAULT_VENUE,
                top_n=DEFAULT_TOP_N if self.top_n is None else self.top_n,
                quote_asset=self.quote_asset or "",
                rest_url=self.rest_url or "",
            )
            msgspec.structs.force_setattr(self, "venues", (only,))
            for key in flat:  # now in venues[0]: the effective config re-decodes to itself
                msgspec.structs.force_setattr(self, key, None)
        seen: dict[str, int] = {}
        for i, entry in enumerate(self.venues):
            if entry.venue in seen:
                raise ValueError(
                    f"venues[{i}].venue: {entry.venue} is already listed at "
                    f"venues[{seen[entry.venue]}]; list each venue once"
                )
            seen[entry.venue] = i
