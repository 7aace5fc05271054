"""Venue market data: closed bars (1m from the venue, longer timeframes aggregated) and trades."""

from ticktape.serviceinfo import ServiceInfo

# Registered in pyproject.toml ([project.entry-points."ticktape.services"]).
SERVICE = ServiceInfo(
    name="market_data",
    kind="producer",
    order=10,
    module="services.market_data",
    config="services.market_data.config:MarketDataConfig",
)
