"""The one list of services: the `ticktape.services` entry-point group.

Each service package declares itself once, as a `ServiceInfo` named SERVICE in its
`services/<name>/__init__.py`, and pyproject.toml registers that object:

    [project.entry-points."ticktape.services"]
    signal = "services.signal:SERVICE"

Everything that enumerates services reads this registry: the configuration sections
(ticktape.config), the replay pipeline (ticktape.corespec), `ticktape up` and its supervisor (start
order, who stops first, who is drained, who stops last), and the tests of the architecture, the
deployment files and the whole stack. The kernel never imports a service: the entries, and the
config types and core factories they name, are loaded through importlib.metadata."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from ticktape import workers
from ticktape.serviceinfo import KINDS, STREAMS, Kind, ServiceInfo

if TYPE_CHECKING:
    from ticktape.corespec import CoreSpec

__all__ = ["GROUP", "KINDS", "Kind", "RegistryError", "ServiceInfo", "config_type", "core_spec_factory", "load"]

GROUP = "ticktape.services"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class RegistryError(ValueError):
    """The service registry is inconsistent; the message names the entry and what to fix."""


def config_type(info: ServiceInfo) -> type[Any]:
    """The msgspec struct that decodes this service's configuration section."""
    loaded: type[Any] = _load(info, "config", info.config)
    return loaded


def core_spec_factory(info: ServiceInfo) -> Callable[[dict[str, Any]], CoreSpec]:
    """The function that builds this core's CoreSpec from the raw configuration document."""
    if info.core_spec is None:
        raise RegistryError(f"service {info.name!r} is a {info.kind}, not a core: it has no core_spec")
    factory: Callable[[dict[str, Any]], CoreSpec] = _load(info, "core_spec", info.core_spec)
    return factory


def worker_plan(info: ServiceInfo, raw: dict[str, Any]) -> workers.WorkerPlan:
    """How many worker processes this service runs as (one unless it declares a workers planner)."""
    if info.workers is None:
        return workers.WorkerPlan(1, "1")
    planner: Callable[[dict[str, Any]], workers.WorkerPlan] = _load(info, "workers", info.workers)
    return planner(raw)


def durables(info: ServiceInfo, count: int = 1) -> tuple[str, ...]:
    """The durables the service's processes read through when run as `count` workers."""
    return tuple(workers.durable(d, i, count) for d in info.durables for i in range(count))


def documents() -> dict[str, Callable[[], Any]]:
    """Each registered service's proto/ documents: file name -> the function that makes it."""
    out: dict[str, Callable[[], Any]] = {}
    for info in services():
        for name, ref in info.documents:
            if name in out:
                raise RegistryError(f"service {info.name!r}: proto/{name} is also another service's document")
            out[name] = _load(info, "documents", ref)
    return out


def _load(info: ServiceInfo, field: str, ref: str) -> Any:
    return EntryPoint(name=f"{info.name}.{field}", value=ref, group=GROUP).load()


def load(entries: Iterable[EntryPoint] | None = None) -> tuple[ServiceInfo, ...]:
    """The registered services (or those of `entries`), validated, in start order."""
    entries = entry_points(group=GROUP) if entries is None else entries
    infos = []
    for ep in entries:
        try:
            info = ep.load()
        except (ImportError, AttributeError) as exc:
            raise RegistryError(f"{GROUP} entry {ep.name} = {ep.value!r} cannot be loaded: {exc}") from exc
        if not isinstance(info, ServiceInfo):
            kind = type(info).__name__
            raise RegistryError(
                f"{GROUP} entry {ep.name} = {ep.value!r} is a {kind}, not a ticktape.registry.ServiceInfo"
            )
        if info.name != ep.name:
            raise RegistryError(
                f"{GROUP} entry {ep.name} = {ep.value!r} declares the service {info.name!r}: the names must match"
            )
        infos.append(info)
    return validate(infos)


def validate(infos: Iterable[ServiceInfo]) -> tuple[ServiceInfo, ...]:
    """The services sorted by start order, or RegistryError naming the first inconsistency."""
    by_name: dict[str, ServiceInfo] = {}
    by_order: dict[int, str] = {}
    by_durable: dict[str, str] = {}
    for info in infos:
        if not _NAME.match(info.name):
            raise RegistryError(f"service name {info.name!r} must be lower_snake_case (it names a config section)")
        if info.name in by_name:
            raise RegistryError(
                f"duplicate service name {info.name!r}: registered by both {by_name[info.name].module} "
                f"and {info.module}; every service needs its own name"
            )
        if info.kind not in KINDS:
            raise RegistryError(f"service {info.name!r}: unknown kind {info.kind!r}; allowed: {', '.join(KINDS)}")
        if (info.kind == "core") != (info.core_spec is not None):
            raise RegistryError(
                f"service {info.name!r}: a core needs a core_spec and only a core has one (kind {info.kind!r})"
            )
        if info.kind in ("core", "sink") and not info.durables:
            raise RegistryError(f"service {info.name!r}: a {info.kind} must name its durable consumers (to drain)")
        if info.kind == "view" and info.durables:
            raise RegistryError(f"service {info.name!r}: a view reads through ephemeral consumers, it has no durable")
        unknown = [s for s in info.reads if s not in STREAMS]
        if unknown:
            raise RegistryError(
                f"service {info.name!r}: reads unknown stream {unknown[0]!r}; allowed: {', '.join(STREAMS)}"
            )
        if info.order in by_order:
            raise RegistryError(f"services {by_order[info.order]!r} and {info.name!r} share start order {info.order}")
        if info.workers is not None and info.kind != "core":
            raise RegistryError(f"service {info.name!r}: only a core runs as several workers (kind {info.kind!r})")
        for field, ref in (("config", info.config), ("core_spec", info.core_spec), ("workers", info.workers)):
            if ref is not None and not _REF.match(ref):
                raise RegistryError(f"service {info.name!r}: {field} must be 'module:attribute' (got {ref!r})")
        for durable in info.durables:
            if durable in by_durable:
                raise RegistryError(f"services {by_durable[durable]!r} and {info.name!r} share the durable {durable!r}")
            by_durable[durable] = info.name
        by_name[info.name] = info
        by_order[info.order] = info.name
    return tuple(sorted(by_name.values(), key=lambda i: i.order))


@cache
def services() -> tuple[ServiceInfo, ...]:
    """Every registered service, in start order (loaded once)."""
    return load()


def names() -> tuple[str, ...]:
    return tuple(info.name for info in services())


def of_kind(kind: Kind) -> tuple[ServiceInfo, ...]:
    return tuple(info for info in services() if info.kind == kind)


def get(name: str) -> ServiceInfo:
    for info in services():
        if info.name == name:
            return info
    raise RegistryError(f"unknown service {name!r}; registered: {', '.join(names())}")
