"""Authorization for the NATS server a stack uses: the embedded server gets a user per role
(ticktape.bus.permissions) whose passwords live in the credentials directory (ticktape.bus.creds);
a server ticktape does not run is used with whatever credentials that directory holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ticktape.bus import creds, permissions
from ticktape.config import CommonSettings


@dataclass(frozen=True)
class BusCredentials:
    """Where each process of a stack finds its credentials file; `directory` None: the server
    has no authorization and every client connects without credentials."""

    directory: Path | None

    def for_role(self, role: str) -> str | None:
        return str(creds.path_for(self.directory, role)) if self.directory is not None else None


def embedded_server_config(common: CommonSettings) -> list[str]:
    """The nats-server configuration block that admits exactly one user per role, with the
    passwords of the credentials directory (created there on first use, kept afterwards)."""
    directory = creds.creds_dir(common)
    known = creds.ensure(directory, permissions.roles())
    table = permissions.table(common.nats)
    return [permissions.authorization_block(table, {role: c.password for role, c in known.items()})]


def publish_url(common: CommonSettings, url: str) -> None:
    """Write the server's URL into every credentials file (what `nats --context FILE` connects to)."""
    creds.ensure(creds.creds_dir(common), permissions.roles(), url=url)


def for_stack(common: CommonSettings) -> BusCredentials:
    """The credentials a stack's processes use: those of the credentials directory when it holds
    the admin's (all roles must be there then), else none."""
    directory = creds.creds_dir(common)
    if not creds.path_for(directory, permissions.ADMIN).exists():
        return BusCredentials(None)
    missing = [r for r in permissions.roles() if not creds.path_for(directory, r).exists()]
    if missing:
        raise creds.CredentialsError(
            f"{directory} holds admin credentials but none for {', '.join(missing)}: "
            f"put one file per role there ({creds.path_for(directory, missing[0]).name} ...)"
        )
    for role in permissions.roles():
        creds.load(creds.path_for(directory, role))  # readable, private, well-formed: fail now, not in a child
    return BusCredentials(directory)
