"""Presenting a causal trace read from the audit log: each event's key fields, as text or JSON.
Pure: the rows come from ticktape.audit.queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ticktape import jsonlimits
from ticktape.audit.chain import Row
from ticktape.redact import redact_fields

# The fields that say what an event was about, per type; other types show their scalar fields.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "md.bar.closed": ("venue", "symbol", "timeframe", "open_time", "open", "close", "volume"),
    "signal.generated": ("strategy", "symbol", "side", "previous_side", "price", "agree", "n"),
    "risk.order.approved": ("account", "strategy", "symbol", "side", "quantity", "reference_price", "notional"),
    "risk.order.rejected": ("account", "strategy", "symbol", "side", "reason", "detail"),
    "exec.order.submitted": ("order_id", "account", "symbol", "side", "quantity", "mode"),
    "exec.order.canceled": ("order_id", "account", "symbol", "reason"),
    "exec.order.filled": ("order_id", "account", "symbol", "side", "quantity", "price", "fee", "mode"),
    "exec.position.updated": ("account", "symbol", "quantity", "avg_price", "realized_pnl", "unrealized_pnl"),
    "exec.account.updated": ("account", "equity", "realized_pnl", "gross_exposure"),
    "session.started": ("session_id", "config_hash", "code_version"),
    "session.stopped": ("session_id", "reason"),
    "dlq.dead_lettered": ("service", "source", "error", "stream_seq"),
}
_ENVELOPE = {"type", "event_id", "ts_event", "ts_init", "causation_id", "correlation_id", "version"}
_TIME_FIELDS = {"open_time", "close_time", "bar_open_time", "as_of"}
_MAX_GENERIC = 6


def iso_ns(ns: int | None) -> str:
    """An integer-ns timestamp as ISO 8601 UTC with milliseconds ('-' when unknown)."""
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def body(row: Row) -> dict[str, Any]:
    """The archived event as a dict (empty when the bytes are not a JSON object)."""
    try:
        doc = jsonlimits.decode(row.data)
    except (msgspec.DecodeError, jsonlimits.TooDeep):
        return {}
    return doc if isinstance(doc, dict) else {}


def key_fields(row: Row) -> dict[str, Any]:
    """The fields worth showing for this event, in a stable order; times as ISO strings."""
    doc = body(row)
    names = KEY_FIELDS.get(row.type or "")
    if names is None:
        names = tuple(
            k
            for k, v in doc.items()
            if k not in _ENVELOPE
            and isinstance(v, (str, int, float, bool))
            and not (isinstance(v, str) and len(v) > 80)
        )[:_MAX_GENERIC]
    # redacted on read: archived rows are immutable evidence, and older ones may carry a secret
    return {
        n: iso_ns(doc[n]) if n in _TIME_FIELDS and isinstance(doc[n], int) else redact_fields(doc[n])
        for n in names
        if n in doc
    }


def step(row: Row) -> dict[str, Any]:
    """One event of a trace as plain data (the --json form)."""
    return {
        "stream": row.stream,
        "seq": row.seq,
        "subject": row.subject,
        "event_id": row.event_id,
        "type": row.type,
        "ts_event": row.ts_event,
        "time": iso_ns(row.ts_event),
        "causation_id": row.causation_id,
        "correlation_id": row.correlation_id,
        "fields": key_fields(row),
    }


def to_json(
    event_id: str,
    chain: Sequence[Row],
    *,
    missing: str | None = None,
    cycle: bool = False,
    correlation_id: str | None = None,
    correlated: Sequence[Row] = (),
    correlated_total: int = 0,
) -> dict[str, Any]:
    root = chain[-1] if chain else None
    return {
        "event_id": event_id,
        "chain": [step(r) for r in chain],
        "root_cause": root.event_id if root is not None and missing is None and not cycle else None,
        "missing_cause": missing,
        "cycle": cycle,
        "correlation_id": correlation_id,
        "correlated": [step(r) for r in correlated],
        "correlated_total": correlated_total,
    }


def _fields_text(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items())


def to_text(
    event_id: str,
    chain: Sequence[Row],
    *,
    missing: str | None = None,
    cycle: bool = False,
    correlation_id: str | None = None,
    correlated: Sequence[Row] = (),
    correlated_total: int = 0,
) -> str:
    """The causal chain, newest first, each event with its time, type, id, subject and key
    fields; then the events of its correlation (the root and everything it set off)."""
    lines = [
        f"causal chain of {event_id}: {len(chain)} event{'s' if len(chain) != 1 else ''}, "
        "each caused by the one below it"
    ]
    for i, row in enumerate(chain):
        arrow = "  " if i == 0 else "<-"
        lines.append(f"{arrow} {iso_ns(row.ts_event)}  {row.type or '?'}  {row.event_id}")
        lines.append(f"     {row.subject} (stream {row.stream} seq {row.seq})")
        fields = _fields_text(key_fields(row))
        if fields:
            lines.append(f"     {fields}")
    if missing:
        lines.append(f"<- {missing}: cause not in the audit log (not archived, or from outside the bus)")
    elif cycle:
        lines.append("<- the causes loop back to an event already shown")
    elif chain:
        lines.append(f"root cause: {chain[-1].type} {chain[-1].event_id}")
    correlation = correlation_id
    if correlation:
        shown = len(correlated)
        more = f" (first {shown} shown)" if correlated_total > shown else ""
        lines.append("")
        lines.append(f"correlation {correlation}: {correlated_total} events{more}")
        in_chain = {r.event_id for r in chain}
        for row in correlated:
            mark = "*" if row.event_id in in_chain else " "
            lines.append(
                f" {mark} {row.stream} seq {row.seq:<7} {iso_ns(row.ts_event)}  {row.type or '?':<22} "
                f"{row.event_id}  {row.subject}"
            )
    return "\n".join(lines)
