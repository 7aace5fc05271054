"""PostgreSQL helpers shared by the services that keep tables: a numbered-SQL migration runner.

Each service ships `NNNN_name.sql` files and calls `migrate` at start. Files are applied once,
in version order, and recorded in `ticktape_migrations` under the service's namespace. The run
holds a transaction-scoped advisory lock, so replicas starting together apply each file once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

# Any fixed 64-bit key; every ticktape migrator takes the same one so table creation is safe too.
_LOCK_KEY = 0x7469636B74617065  # "ticktape"
_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS ticktape_migrations (
    namespace  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, version)
)
"""


class MigrationError(RuntimeError):
    """The migration files or the recorded history are inconsistent; says which file."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(package_or_dir: str | Path | Traversable) -> list[Migration]:
    """The NNNN_*.sql files of a directory or package, in version order; other files ignored."""
    root = _root(package_or_dir)
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        m = _FILE.match(entry.name)
        if not m or not entry.is_file():
            continue
        version = int(m.group("version"))
        if version in found:
            raise MigrationError(f"two migrations share version {version:04d}: {found[version].name} and {entry.name}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _root(package_or_dir: str | Path | Traversable) -> Path | Traversable:
    if isinstance(package_or_dir, str) and not Path(package_or_dir).is_dir():
        return resources.files(package_or_dir)
    root = Path(package_or_dir) if isinstance(package_or_dir, str) else package_or_dir
    if not root.is_dir():
        raise MigrationError(f"migrations directory {root} does not exist")
    return root


async def migrate(conn: Any, package_or_dir: str | Path | Traversable, *, namespace: str) -> list[str]:
    """Apply the not-yet-applied migrations of `namespace` in order; returns the applied names.

    `conn` is a psycopg.AsyncConnection. Everything runs in one transaction (a savepoint if the
    caller already has one open), so a failing file leaves nothing half applied. A file whose
    content changed after it was applied is an error: add a new file instead."""
    migrations = discover(package_or_dir)
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(_CREATE_TABLE)
        cur = await conn.execute(
            "SELECT version, name, checksum FROM ticktape_migrations WHERE namespace = %s",
            (namespace,),
        )
        done = {version: (name, checksum) for version, name, checksum in await cur.fetchall()}
        for migration in migrations:
            if migration.version in done:
                name, checksum = done[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"{namespace} migration {migration.name} changed after it was applied "
                        f"(as {name}); never edit an applied migration, add a new numbered file"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO ticktape_migrations (namespace, version, name, checksum) VALUES (%s, %s, %s, %s)",
                (namespace, migration.version, migration.name, migration.checksum),
            )
            applied.append(migration.name)
    return applied
