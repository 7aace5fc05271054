"""Trading signals from closed bars: the strategies of the plug-in API (ticktape.strategy)."""

from ticktape.serviceinfo import ServiceInfo

# Registered in pyproject.toml ([project.entry-points."ticktape.services"]).
SERVICE = ServiceInfo(
    name="signal",
    kind="core",
    order=30,
    module="services.signal",
    config="services.signal.config:SignalConfig",
    durables=("signal",),
    core_spec="services.signal.spec:core_spec",
    workers="services.signal.workers:plan",
)
