"""Bars in PostgreSQL: schema, idempotent batched COPY writes, and the warm-up query."""

from ticktape.barstore.store import (
    MIGRATIONS,
    NAMESPACE,
    apply_migrations,
    is_hypertable,
    last_bars,
    write_bars,
)

__all__ = ["MIGRATIONS", "NAMESPACE", "apply_migrations", "is_hypertable", "last_bars", "write_bars"]
