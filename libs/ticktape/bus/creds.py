"""Bus credentials on disk: one file per role (ticktape.bus.permissions), `<creds dir>/<role>.json`,
mode 0600 in a 0700 directory (default TICKTAPE_HOME/creds).

Each file is a NATS CLI context (natscli's JSON context format: url, user, password), so
`nats --context <home>/creds/observer.json sub '>'` works as is. This is user/password
authentication, not NATS's JWT/nkey `.creds` files (those need the nkeys library, which is not
in the lock). `ticktape up` generates the files once per home, with random passwords, and reuses
them on every start; for a NATS server ticktape does not run, put a file per role there yourself
(nats.creds_dir). Only the path of a file ever travels (environment, config); the password is
read from the file by the process that connects, and never logged or recorded."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ticktape.config import CommonSettings

SUFFIX = ".json"
DIR_MODE = 0o700
FILE_MODE = 0o600


class CredentialsError(ValueError):
    """A credentials file is missing, unreadable, too open or malformed; the message names it."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)

    def connect_options(self) -> dict[str, str]:
        """The keyword arguments of nats.connect."""
        return {"user": self.user, "password": self.password}


def creds_dir(common: CommonSettings) -> Path:
    """nats.creds_dir, else <home>/creds."""
    return Path(common.nats.creds_dir).resolve() if common.nats.creds_dir else Path(common.home).resolve() / "creds"


def path_for(directory: Path, role: str) -> Path:
    return directory / f"{role}{SUFFIX}"


def load(path: str | Path) -> Credentials:
    """The user and password in a credentials file; refuses a file others can read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise CredentialsError(f"cannot read the NATS credentials file {path}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise CredentialsError(f"the NATS credentials file {path} is readable by others: chmod 600 it")
    try:
        doc = json.loads(text)
        user, password = doc["user"], doc["password"]
    except (ValueError, KeyError, TypeError):
        raise CredentialsError(
            f"the NATS credentials file {path} must be a JSON object with string fields user and password"
        ) from None
    if not isinstance(user, str) or not isinstance(password, str) or not user or not password:
        raise CredentialsError(f"the NATS credentials file {path}: user and password must be non-empty strings")
    return Credentials(user, password)


def connect_options(path: str | Path | None) -> dict[str, str]:
    """nats.connect keyword arguments for a credentials file, or none without one."""
    return load(path).connect_options() if path else {}


def ensure(directory: Path, roles: Iterable[str], url: str | None = None) -> dict[str, Credentials]:
    """A credentials file per role in `directory`: existing ones are kept (their passwords are the
    server's), missing ones are created with a random password. With `url`, every file's url
    field (what `nats --context` connects to) is set to it."""
    directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    directory.chmod(DIR_MODE)
    out: dict[str, Credentials] = {}
    for role in roles:
        path = path_for(directory, role)
        if path.exists():
            creds = load(path)
            if creds.user != role:
                raise CredentialsError(f"the NATS credentials file {path} is for user {creds.user!r}, not {role!r}")
            doc = json.loads(path.read_text())
        else:
            creds = Credentials(role, secrets.token_urlsafe(32))
            doc = {"description": f"ticktape {role}", "url": url or "", **creds.connect_options()}
            _write(path, doc)
        if url is not None and doc.get("url") != url:
            _write(path, {**doc, "url": url})
        out[role] = creds
    return out


def _write(path: Path, doc: dict[str, str]) -> None:
    """Atomically, and never readable by others, not even for an instant."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
