"""Loading the execution service's settings from a config document: its section, with the accounts
from the one top-level `accounts:` section (kept out of config.py, which the pure core imports)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from services.execution.config import AccountConfig, ExecutionConfig
from ticktape import config as cfg


def recorded(raw: Mapping[str, Any]) -> ExecutionConfig:
    """For replay: the config of a recorded run as that run built it (a recording made with the
    legacy `execution.accounts` list keeps it, cfg.load_recorded_section), else from_raw."""
    legacy = cfg.load_recorded_section("execution", ExecutionConfig, raw)
    return legacy if legacy is not None else from_raw(raw)


def from_raw(raw: Mapping[str, Any]) -> ExecutionConfig:
    """The `execution` section with its accounts taken from the top-level `accounts:` section
    (legacy risk.accounts / execution.accounts upcast there first), or a ConfigError naming the key."""
    section = cfg.load_section("execution", ExecutionConfig, raw)
    accounts = tuple(AccountConfig.of(a) for a in cfg.load_accounts(raw))
    return msgspec.structs.replace(section, accounts=accounts)
