"""Loading the signal service's settings: the `signal` section, then each strategy's kind found
(built in, installed through the `ticktape.strategies` entry points, or `module:Class`) and its
parameters checked against the kind's Params, every problem a ConfigError naming the key path
(e.g. signal.strategies[3].params.period). Kept out of config.py and core.py: it loads code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.signal.config import SignalConfig
from services.signal.core import SignalCore, StrategySetupError
from services.signal.strategies import BUILTINS
from ticktape import config as cfg
from ticktape.strategy import Strategy
from ticktape.strategy.discovery import DiscoveryError, resolve


def kinds(config: SignalConfig) -> dict[str, type[Strategy[Any]]]:
    """The class of every kind the config names, or a ConfigError naming the entry."""
    found: dict[str, type[Strategy[Any]]] = {}
    for i, entry in enumerate(config.strategies):
        if entry.kind in found:
            continue
        try:
            found[entry.kind] = resolve(entry.kind, BUILTINS)
        except DiscoveryError as exc:
            raise cfg.ConfigError(f"signal.strategies[{i}].kind: {exc}") from None
    return found


def core(config: SignalConfig) -> SignalCore:
    """The core for this config, its strategies found and their parameters checked."""
    classes = kinds(config)
    for i, entry in enumerate(config.strategies):
        cfg.convert_at(entry.params, classes[entry.kind].params_type, f"signal.strategies[{i}].params")
    try:
        return SignalCore(config, kinds=classes)
    except StrategySetupError as exc:
        raise cfg.ConfigError(f"signal.{exc}") from None


def from_raw(raw: Mapping[str, Any]) -> SignalConfig:
    """The `signal` section, with every strategy it names found and its parameters checked."""
    config = cfg.load_section("signal", SignalConfig, raw)
    core(config)
    return config
