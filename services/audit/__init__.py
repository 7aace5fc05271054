"""The audit archiver: the events and dead-letter streams, hash-chained in PostgreSQL."""

from ticktape.serviceinfo import ServiceInfo

# Registered in pyproject.toml ([project.entry-points."ticktape.services"]).
SERVICE = ServiceInfo(
    name="audit",
    kind="sink",
    order=60,
    module="services.audit",
    config="services.audit.config:AuditConfig",
    durables=("audit",),
    reads=("events", "dlq"),
)
