"""The HTTP API: a read model projected from the event log, /health, and the operator's control
commands (services.api.http)."""

from ticktape.serviceinfo import ServiceInfo

# Registered in pyproject.toml ([project.entry-points."ticktape.services"]).
SERVICE = ServiceInfo(
    name="api",
    kind="view",
    order=90,
    module="services.api",
    config="services.api.config:ApiConfig",
    reads=("events", "dlq"),
    documents=(("openapi.json", "services.api.openapi:document"),),
)
