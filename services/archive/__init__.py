"""The bar archive: closed bars in PostgreSQL."""

from ticktape.serviceinfo import ServiceInfo

# Registered in pyproject.toml ([project.entry-points."ticktape.services"]).
SERVICE = ServiceInfo(
    name="archive",
    kind="sink",
    order=70,
    module="services.archive",
    config="services.archive.config:ArchiveConfig",
    durables=("archive_bars",),
)
