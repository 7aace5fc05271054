"""Finding a strategy class by its kind: a built-in, an entry point of the `ticktape.strategies`
group (any installed distribution), or an import path `module:Class` written in the config.

This loads code, so it runs in the service's shell at start (and in replay's loading), never in a
core: the core is handed the classes."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points

from ticktape.strategy import GROUP, Params, Strategy

_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class DiscoveryError(ValueError):
    """A kind that names no usable strategy class; the message says what to install or fix."""


def installed(entries: Iterable[EntryPoint] | None = None) -> dict[str, EntryPoint]:
    """The strategy kinds installed distributions register (name -> entry point)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP) if entries is None else entries:
        other = found.get(ep.name)
        if other is not None and other.value != ep.value:
            raise DiscoveryError(
                f"strategy kind {ep.name!r} is registered twice in {GROUP} ({other.value!r} and {ep.value!r}); "
                "uninstall one"
            )
        found[ep.name] = ep
    return found


def resolve(
    kind: str, builtins: Mapping[str, type[Strategy]], entries: Iterable[EntryPoint] | None = None
) -> type[Strategy]:
    """The class of `kind`. A built-in name cannot also be registered by a distribution (which
    one runs would depend on what is installed)."""
    if _PATH.match(kind):
        module, _, attr = kind.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise DiscoveryError(f"cannot import {kind!r}: {exc}") from None
        return _checked(kind, obj)
    registered = installed(entries)
    if kind in builtins:
        if kind in registered:
            raise DiscoveryError(
                f"strategy kind {kind!r} is built in and also registered in {GROUP} by "
                f"{registered[kind].value!r}: rename that entry point"
            )
        return builtins[kind]
    ep = registered.get(kind)
    if ep is None:
        known = sorted({*builtins, *registered})
        raise DiscoveryError(
            f"unknown strategy kind {kind!r}; installed: {', '.join(known)} (a distribution adds kinds "
            f"through the {GROUP} entry-point group; or write module:Class)"
        )
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - a plug-in's import may fail any way; say which and why
        raise DiscoveryError(
            f"{GROUP} entry {kind} = {ep.value!r} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    return _checked(kind, obj)


def _checked(kind: str, obj: object) -> type[Strategy]:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise DiscoveryError(f"{kind!r} is a {type(obj).__name__}, not a subclass of ticktape.strategy.Strategy")
    params = getattr(obj, "params_type", None)
    if not (isinstance(params, type) and issubclass(params, Params)):
        raise DiscoveryError(f"{kind!r}: params_type must be a subclass of ticktape.strategy.Params")
    return obj
