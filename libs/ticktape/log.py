"""Structured JSON logs (structlog) carrying service, event id and trace id, without secrets:
the last processor before rendering applies ticktape.redact to every field.

Libraries that log through the standard library (nats-py, OpenTelemetry, aiohttp, psycopg, ...)
go through the same processors: configure() puts a handler on the root logger whose formatter
(structlog.stdlib.ProcessorFormatter) renders each record, its arguments and any traceback
included, as the same redacted JSON line. Without it their records (a DSN in a connection error,
say) would reach stderr verbatim through Python's last-resort handler."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict

from ticktape.redact import MARK, SECRET_KEY, redact_fields, redact_text

_configured = False


def _add_trace(_: Any, __: str, event_dict: EventDict) -> EventDict:
    from opentelemetry import trace

    span = trace.get_current_span()
    ctx = span.get_span_context()
    if ctx.is_valid and "trace_id" not in event_dict:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


_PLAIN = (str, int, float, bool, type(None))


def redact_event(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """Mask secrets in every field of a log event (a secret-named field entirely). Values the
    renderer would repr() are redacted as their repr; a field without secrets costs a few `in`
    checks."""
    for key, value in event_dict.items():
        if SECRET_KEY.search(key):
            event_dict[key] = MARK
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
        elif isinstance(value, dict | list | tuple):
            event_dict[key] = redact_fields(value)
        elif not isinstance(value, _PLAIN):
            event_dict[key] = redact_text(repr(value))
    return event_dict


def configure(service: str, level: str = "info") -> None:
    """JSON lines to stderr: one object per event with service, level, timestamp, trace ids."""
    global _configured
    lvl = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace,
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    _route_stdlib(lvl)
    _configured = True


class _RedactingHandler(logging.StreamHandler):
    """The root logger's handler installed by configure(); one per process (found again by type)."""


def _route_stdlib(level: int) -> None:
    """Send the standard library's log records through the redacting processors, to stderr."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.StackInfoRenderer(),
            redact_event,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _RedactingHandler)]:
        root.removeHandler(old)
    handler = _RedactingHandler(sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)


def get(name: str | None = None) -> Any:
    return structlog.get_logger(name)
