"""The dependency set a process runs with, named by one short id.

A recorded session names its code (`code_version`, the git revision) and its dependencies
(`dependencies`, this id), because the same commit can produce other bytes under another msgspec,
another Python or another platform. The id covers the interpreter (implementation, major.minor),
the platform and every installed distribution as `name==version` (names normalized as in
PEP 503), ticktape itself excepted: it is the code, named by `code_version`.

`./dev setup` installs exactly requirements/dev.txt, and a test checks that the installed set
equals the lock, so on a machine set up from one commit the id names that commit's lock for this
interpreter and platform."""

from __future__ import annotations

import hashlib
import platform
import re
import sys
from collections.abc import Iterable
from functools import cache
from importlib.metadata import distributions

SELF = "ticktape"


def normalize(name: str) -> str:
    """PEP 503 name normalization: `Typing_Extensions` -> `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """Normalized name -> version of every distribution importable by this interpreter."""
    found: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normalize(name), dist.version)
    return found


def interpreter_tag() -> str:
    """e.g. `cp311-linux-x86_64`."""
    impl = {"cpython": "cp", "pypy": "pp"}.get(sys.implementation.name, sys.implementation.name)
    return f"{impl}{sys.version_info.major}{sys.version_info.minor}-{sys.platform}-{platform.machine()}"


def digest(packages: Iterable[tuple[str, str]], tag: str) -> str:
    """`<tag>:<16 hex>` over the sorted `name==version` lines (ticktape excluded)."""
    lines = sorted(f"{normalize(n)}=={v}" for n, v in packages if normalize(n) != SELF)
    return f"{tag}:{hashlib.sha256(chr(10).join(lines).encode()).hexdigest()[:16]}"


@cache
def dependency_set() -> str:
    """The id of this process's dependency set (computed once per process)."""
    return digest(installed().items(), interpreter_tag())


def describe_difference(recorded: str, current: str) -> str | None:
    """None when both name the same set; else one plain sentence for `replay --verify`."""
    if recorded == current:
        return None
    if not recorded:
        return (
            "note: this recording names no dependency set (made before ticktape recorded one); "
            f"replaying with {current}: a mismatch may come from a dependency, not the code"
        )
    return (
        f"note: recorded with dependency set {recorded}, replaying with {current}: "
        "bytes may differ because a dependency or the interpreter changed, not the code"
    )
