"""Loading the signal service's settings: the `signal` section, then each strategy's kind found
(built in, installed through the `ticktape.strategies` entry points, or `module:Class`) and its
parameters checked against the kind's Params, every problem a ConfigError naming the key path
(e.g. signal.strategies[3].params.period). Kept out of config.py and core.py: it loads code."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from services.signal.config import SignalConfig
from services.signal.core import SignalCore, StrategySetupError
from services.signal.strategies import BUILTINS, Consensus, ConsensusParams
from ticktape import config as cfg
from ticktape.strategy import Strategy
from ticktape.strategy.discovery import DiscoveryError, resolve


def kinds(config: SignalConfig) -> dict[str, type[Strategy[Any]]]:
    """The class of every kind the config names, the members of a consensus included (at any
    depth), or a ConfigError naming the entry."""
    found: dict[str, type[Strategy[Any]]] = {}

    def find(kind: str, where: str, params: object) -> None:
        cls = found.get(kind)
        if cls is None:
            try:
                cls = found[kind] = resolve(kind, BUILTINS)
            except DiscoveryError as exc:
                raise cfg.ConfigError(f"{where}.kind: {exc}") from None
        if issubclass(cls, Consensus) and isinstance(params, Mapping):
            members = params.get("members")
            for j, member in enumerate(members if isinstance(members, list | tuple) else ()):
                if isinstance(member, Mapping) and isinstance(member.get("kind"), str):
                    find(member["kind"], f"{where}.params.members[{j}]", member.get("params"))

    for i, entry in enumerate(config.strategies):
        find(entry.kind, f"signal.strategies[{i}]", entry.params)
    return found


class _Kinds(Mapping[str, type[Strategy[Any]]]):
    """The classes found for the configuration, and any other kind found on lookup (a managed
    strategy's, named at run time): built in, installed, or `module:Class`."""

    def __init__(self, found: Mapping[str, type[Strategy[Any]]]) -> None:
        self._found = dict(found)

    def __getitem__(self, kind: str) -> type[Strategy[Any]]:
        cls = self._found.get(kind)
        if cls is None:
            try:
                cls = self._found[kind] = resolve(kind, BUILTINS)
            except DiscoveryError:
                raise KeyError(kind) from None
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)


def core(config: SignalConfig) -> SignalCore:
    """The core for this config, its strategies found and their parameters checked."""
    classes = kinds(config)

    def check(kind: str, params: Mapping[str, Any], where: str) -> None:
        cls = classes[kind]
        converted = cfg.convert_at(params, cls.params_type, where)
        if isinstance(converted, ConsensusParams):
            for j, member in enumerate(converted.members):
                check(member.kind, member.params, f"{where}.members[{j}].params")

    for i, entry in enumerate(config.strategies):
        check(entry.kind, entry.params, f"signal.strategies[{i}].params")
    try:
        return SignalCore(config, kinds=_Kinds(classes))
    except StrategySetupError as exc:
        raise cfg.ConfigError(f"signal.{exc}") from None


def from_raw(raw: Mapping[str, Any]) -> SignalConfig:
    """The `signal` section, with every strategy it names found and its parameters checked."""
    config = cfg.load_section("signal", SignalConfig, raw)
    core(config)
    return config
