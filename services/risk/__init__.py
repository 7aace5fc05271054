"""Pre-trade risk: approves or rejects each signal's order."""

from ticktape.serviceinfo import ServiceInfo

# Registered in pyproject.toml ([project.entry-points."ticktape.services"]).
SERVICE = ServiceInfo(
    name="risk",
    kind="core",
    order=40,
    module="services.risk",
    config="services.risk.config:RiskConfig",
    durables=("risk",),
    core_spec="services.risk.spec:core_spec",
)
