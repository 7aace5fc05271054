"""Loading the execution service's settings from a config document: its section, with the accounts
from the one top-level `accounts:` section (kept out of config.py, which the pure core imports).

Live accounts load only as the configuration allows (ticktape.config.load_accounts: the
document's `live` key, which `ticktape up --live` sets after its checks, and this service's
declaration ExecutionConfig.LIVE_EXECUTION); otherwise a live account is a configuration error.
A replay loads them always: a replayed core is pure and sends nothing (recorded)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from services.execution.config import AccountConfig, ExecutionConfig
from ticktape import config as cfg


def recorded(raw: Mapping[str, Any]) -> ExecutionConfig:
    """For replay: the config of a recorded run as that run built it (a recording made with the
    legacy `execution.accounts` list keeps it, cfg.load_recorded_section), else from_raw with its
    live accounts loaded (a replay never reaches a venue)."""
    legacy = cfg.load_recorded_section("execution", ExecutionConfig, raw)
    return legacy if legacy is not None else from_raw(replayable(raw))


def replayable(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The document with live accounts allowed to load (its `live` key set) when it has any."""
    doc = dict(raw)
    items = cfg.upcast(raw).get("accounts")
    if isinstance(items, list) and any(isinstance(a, Mapping) and a.get("mode") == "live" for a in items):
        doc["live"] = True
    return doc


def from_raw(raw: Mapping[str, Any]) -> ExecutionConfig:
    """The `execution` section with its accounts taken from the top-level `accounts:` section
    (legacy risk.accounts / execution.accounts upcast there first), or a ConfigError naming the key."""
    section = cfg.load_section("execution", ExecutionConfig, raw)
    accounts = tuple(AccountConfig.of(a) for a in cfg.load_accounts(raw))
    try:
        return msgspec.structs.replace(section, accounts=accounts)
    except ValueError as exc:  # ExecutionConfig's own checks (a live account's venue)
        raise cfg.ConfigError(f"accounts: {exc}") from None
