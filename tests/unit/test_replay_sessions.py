"""Session identity and records: sortable ids, secret-free effective config, stable hashes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from ticktape import subjects
from ticktape.sessions import (
    STOPPED,
    code_version,
    effective_config,
    new_session_id,
    redact,
    started_event,
    stopped_event,
)


def test_session_ids_sort_by_start_time_and_are_subject_tokens():
    early = new_session_id(datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC))
    late = new_session_id(datetime(2025, 1, 1, 12, 0, 1, tzinfo=UTC))
    assert re.fullmatch(r"20250101T120000Z-[0-9a-f]{6}", early)
    assert early < late and subjects.token(early) == early
    assert new_session_id() != new_session_id()


def test_the_effective_config_never_contains_secrets():
    raw = {
        "postgres": {"dsn": "postgresql://ticktape:hunter2@db:5432/tt"},
        "nats": {"url": "nats://alice:s3cret@nats:4222"},
        "market_data": {"api_key": "AKIA123", "api_secret": "xyz", "venue": "binance_usdm"},
        "other": {"dsn": "host=db user=tt password=p4ss dbname=tt"},
    }
    text, _ = effective_config(raw)
    for secret in ("hunter2", "s3cret", "AKIA123", "xyz", "p4ss"):
        assert secret not in text
    doc = json.loads(text)
    assert doc["postgres"]["dsn"] == "postgresql://ticktape:***@db:5432/tt"
    assert doc["nats"]["url"] == "nats://alice:***@nats:4222"
    assert doc["market_data"] == {"venue": "binance_usdm"}
    assert redact({"a": [{"token": 1, "b": 2}]}) == {"a": [{"b": 2}]}


def test_the_config_hash_does_not_depend_on_key_order():
    a = effective_config({"signal": {"timeframe": "1m"}, "risk": {"accounts": []}})
    b = effective_config({"risk": {"accounts": []}, "signal": {"timeframe": "1m"}})
    assert a == b and len(a[1]) == 16
    assert effective_config({"signal": {"timeframe": "5m"}})[1] != a[1]


def test_lifecycle_events_go_on_the_sessions_subject_with_ids_derived_from_the_session():
    text, digest = effective_config({})
    start = started_event("s-1", text, code="abc", services=["signal"], ts_ns=5)
    stop = stopped_event("s-1", STOPPED, 9)
    assert subjects.for_event(start) == subjects.for_event(stop) == "sessions.s-1"
    assert start.config_hash == digest and stop.causation_id == start.event_id
    assert started_event("s-1", text, code="abc", services=["signal"], ts_ns=7).event_id == start.event_id


def test_the_code_version_names_a_revision_or_the_package():
    version = code_version()
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", version) or version.startswith("ticktape ")


def test_config_hash_ignores_where_the_stack_runs_but_not_what_it_decides():
    base = {"signal": {"timeframe": "1m"}, "nats": {"url": "nats://a:4222", "stream": "TICKTAPE"}}
    moved = {
        "signal": {"timeframe": "1m"},
        "nats": {"url": "nats://b:4222", "stream": "TICKTAPE"},
        "home": "/elsewhere",
        "venue_sim": "http://127.0.0.1:9",
        "postgres": {"dsn": "postgresql://x/y"},
        "telemetry": {"log_level": "debug"},
    }
    text_a, hash_a = effective_config(base)
    text_b, hash_b = effective_config(moved)
    assert hash_a == hash_b and text_a != text_b  # the recorded config still says where it ran
    assert effective_config({**base, "signal": {"timeframe": "5m"}})[1] != hash_a
    assert effective_config({**base, "nats": {"url": "nats://a:4222", "stream": "OTHER"}})[1] != hash_a
