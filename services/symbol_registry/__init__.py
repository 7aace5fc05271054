"""The tracked universe: each venue's top symbols by 24h quote volume."""

from ticktape.serviceinfo import ServiceInfo

# Registered in pyproject.toml ([project.entry-points."ticktape.services"]).
SERVICE = ServiceInfo(
    name="symbol_registry",
    kind="producer",
    order=20,
    module="services.symbol_registry",
    config="services.symbol_registry.config:SymbolRegistryConfig",
    reads=(),  # it only publishes
)
