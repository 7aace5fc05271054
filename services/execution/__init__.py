"""Execution: submits approved orders (paper: filled here; live: sent to the venue by its gateway),
fills them from the venues' answers or the paper model, tracks positions and accounts."""

from ticktape.serviceinfo import ServiceInfo

# Registered in pyproject.toml ([project.entry-points."ticktape.services"]).
SERVICE = ServiceInfo(
    name="execution",
    kind="core",
    order=50,
    module="services.execution",
    config="services.execution.config:ExecutionConfig",
    durables=("execution",),
    core_spec="services.execution.spec:core_spec",
)
