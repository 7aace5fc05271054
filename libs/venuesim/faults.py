"""Fault injection settings and their pure parts: parsing the flag values, picking skipped bars,
and making malformed frames. The runtime side (timers, drops, stalls) is venuesim.injector.

Every fault is deterministic given the same settings and inputs: periodic faults run on a fixed
schedule from the moment the sim clock starts, malformed frames follow a fixed rotation per
connection, skipped bars are named by index or minute."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from venuesim.bars import MINUTE_MS

MALFORMED_KINDS = ("truncated", "string", "array")
CONTROL_KEYS = (
    "drop_every", "stall", "malformed_every", "skip_minutes", "refuse_reconnect",  # settings, as the flags
    "drop_now", "stall_now", "refuse_now",  # one-shot actions at the moment of the request
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """drop_every: close every WebSocket (1001) every N wall seconds. stall: (seconds, every): send
    nothing for `seconds` every `every` wall seconds. malformed_every: after every N data frames on a
    connection, one malformed frame. skip_indexes / skip_times: bars (index in each symbol's series,
    or open time in epoch ms) whose WebSocket bar frames are never sent. refuse_reconnect: after a
    drop, answer WebSocket upgrades with HTTP 503 for this many seconds."""

    drop_every: float | None = None
    stall: tuple[float, float] | None = None
    malformed_every: int | None = None
    skip_indexes: frozenset[int] = frozenset()
    skip_times: frozenset[int] = frozenset()
    refuse_reconnect: float = 0.0

    def replace(self, **changes: Any) -> FaultConfig:
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """The settings as JSON (for /_sim/fault answers), in flag spelling."""
        return {
            "drop_every": self.drop_every,
            "stall": None if self.stall is None else f"{self.stall[0]:g}@{self.stall[1]:g}",
            "malformed_every": self.malformed_every,
            "skip_minutes": sorted(self.skip_indexes) + [iso_minute(t) for t in sorted(self.skip_times)],
            "refuse_reconnect": self.refuse_reconnect,
        }


def positive(value: Any, name: str) -> float:
    """A number > 0 (bools are not numbers here); ValueError naming the setting otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{name} must be a number > 0 (got {value!r})")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number > 0 (got {value!r})") from None
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name} must be a number > 0 (got {value!r})")
    return number


def parse_stall(text: str) -> tuple[float, float]:
    """`SECONDS@EVERY` -> (seconds, every); the stall must be shorter than its period."""
    seconds, sep, every = str(text).partition("@")
    if not sep:
        raise ValueError(f"stall must be SECONDS@EVERY, e.g. 2@10 (got {text!r})")
    out = positive(seconds, "stall SECONDS"), positive(every, "stall EVERY")
    if out[0] >= out[1]:
        raise ValueError(f"stall SECONDS must be shorter than EVERY (got {text!r})")
    return out


def parse_malformed_every(value: Any) -> int:
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise ValueError(f"malformed_every must be an integer >= 1 (got {value!r})")
    return int(value)


def parse_skip(items: Any) -> tuple[frozenset[int], frozenset[int]]:
    """Bar indexes (digits) and ISO-8601 minutes (UTC when no zone) -> (indexes, open times in ms).
    Accepts a comma-separated string (the flag) or a list (the control endpoint)."""
    if isinstance(items, str):
        items = [part.strip() for part in items.split(",") if part.strip()]
    if not isinstance(items, list):
        raise ValueError(f"skip_minutes must be a list of bar indexes or ISO minutes (got {items!r})")
    indexes, times = set(), set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            indexes.add(item)
        elif isinstance(item, str) and item.isdigit():
            indexes.add(int(item))
        elif isinstance(item, str):
            times.add(_minute_ms(item))
        else:
            raise ValueError(f"skip_minutes: {item!r} is neither a bar index nor an ISO minute")
    return frozenset(indexes), frozenset(times)


def _minute_ms(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"skip_minutes: {text!r} is neither a bar index nor an ISO minute") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    ms = int(dt.timestamp() * 1000)
    if ms % MINUTE_MS:
        raise ValueError(f"skip_minutes: {text!r} is not on a minute boundary")
    return ms


def iso_minute(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


def malformed(text: str, nth: int) -> str:
    """The nth malformed frame of a connection, made from the frame just sent, kinds in rotation:
    truncated JSON (its first half), a JSON string instead of an object, a JSON array around it."""
    kind = MALFORMED_KINDS[nth % len(MALFORMED_KINDS)]
    if kind == "truncated":
        return text[: max(1, len(text) // 2)]
    if kind == "string":
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + text + "]"


def parse_control(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A POST /_sim/fault body -> (FaultConfig changes, one-shot actions); ValueError when any part
    is invalid. Settings are spelled as the flags (null disables); actions act at once."""
    if not isinstance(body, dict) or not body:
        raise ValueError(f"expected a JSON object with some of: {', '.join(CONTROL_KEYS)}")
    unknown = [key for key in body if key not in CONTROL_KEYS]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; allowed: {', '.join(CONTROL_KEYS)}")
    changes: dict[str, Any] = {}
    actions: dict[str, Any] = {}
    for key, value in body.items():
        if key == "drop_every":
            changes[key] = None if value is None else positive(value, key)
        elif key == "stall":
            changes[key] = None if value is None else parse_stall(value)
        elif key == "malformed_every":
            changes[key] = None if value in (None, 0) else parse_malformed_every(value)
        elif key == "skip_minutes":
            changes["skip_indexes"], changes["skip_times"] = parse_skip(value)
        elif key == "refuse_reconnect":
            changes[key] = 0.0 if value in (None, 0) else positive(value, key)
        elif key == "drop_now":
            if not isinstance(value, bool):
                raise ValueError(f"drop_now must be true or false (got {value!r})")
            actions[key] = value
        else:  # stall_now, refuse_now
            actions[key] = positive(value, key)
    return changes, actions
