"""`ticktape audit verify` and `ticktape audit trace` over a log the real archiver wrote from a real
stream: ok on an intact log, the first broken link named when a row is changed, sessions, and a
fill traced back to its bar."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass

import psycopg
import pytest

from services.audit.service import serve as serve_audit
from tests.integration.test_audit_service import CONFIG, js, publish, trading_session, wait_archived
from tests.support.bars import T0, wave_bars
from ticktape import ids, subjects
from ticktape.audit import chain
from ticktape.cli.main import main as cli_main
from ticktape.events import (
    BarClosed,
    Event,
    OrderApproved,
    OrderFilled,
    OrderSubmitted,
    SessionStarted,
    SessionStopped,
    SignalGenerated,
)
from ticktape.testing.services import common_settings, running_service

__all__ = ["js"]  # the fixture, shared with the service tests
EVENTS = subjects.EVENTS_STREAM


@pytest.fixture(autouse=True)
def home_in_tmp(tmp_path, monkeypatch):
    """The default home (./.ticktape, where the archiver keeps its signing key) in the test's dir."""
    monkeypatch.chdir(tmp_path)


@dataclass
class Log:
    dsn: str
    events: list[Event]
    rows: list[chain.Row]
    start_seq: int
    stop_seq: int

    def row(self, event_id: str) -> chain.Row:
        return next(r for r in self.rows if r.event_id == event_id)


def session_event(cls, session_id: str, n: int) -> Event:
    extra = dict(config_hash="abc", config_json="{}", code_version="test") if cls is SessionStarted else {}
    return cls(
        event_id=ids.derive("session", session_id, n), ts_event=T0 + n, ts_init=T0 + n, session_id=session_id, **extra
    )


@pytest.fixture
async def log(nats_url, js, pg_dsn) -> Log:
    """Bars before the session, the session (bars through fills), bars after it; all archived."""
    before = wave_bars(n=5, symbol="ETHUSDT")
    during = trading_session()
    after = wave_bars(n=5, symbol="ADAUSDT")
    events = [*before, session_event(SessionStarted, "s1", 1), *during, session_event(SessionStopped, "s1", 2), *after]
    await publish(js, events)
    async with running_service("audit", serve_audit, CONFIG, common_settings(nats_url, pg_dsn)):
        rows = await wait_archived(pg_dsn, len(events))
    return Log(pg_dsn, events, rows, start_seq=len(before) + 1, stop_seq=len(before) + len(during) + 2)


async def ticktape(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in-process (in a thread: it runs its own event loop) and capture stdout."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli_main, list(args))
    return code, capsys.readouterr().out


async def sql(dsn: str, statement: str, *params: object) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(statement, params)


async def test_verify_when_the_log_is_intact_then_ok_with_count_and_head_hash(log, capsys):
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--stream", EVENTS)
    assert code == 0
    assert out.startswith(f"ok: {len(log.events)} events, head hash {log.rows[-1].hash.hex()} ")
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True
    (events,) = [s for s in doc["streams"] if s["stream"] == EVENTS]
    assert (events["count"], events["head"], events["last_seq"]) == (
        len(log.events),
        log.rows[-1].hash.hex(),
        log.rows[-1].seq,
    )
    assert events["checkpoints"] >= 2


async def test_verify_when_one_byte_of_a_fills_payload_changes_then_fails_naming_that_event(log, capsys):
    fill = log.row(next(e.event_id for e in log.events if isinstance(e, OrderFilled)))
    at = fill.data.index(b'"price":') + len(b'"price":') + 1  # 0-based, inside the price's digits
    await sql(
        log.dsn,
        "UPDATE audit_log SET data = overlay(data placing %s from %s for 1) WHERE stream = %s AND seq = %s",
        b"7" if fill.data[at : at + 1] != b"7" else b"8",
        at + 1,
        EVENTS,
        fill.seq,
    )
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--stream", EVENTS)
    assert code == 1
    assert out.startswith("BROKEN:")
    assert f"seq {fill.seq}" in out and fill.event_id in out and fill.subject in out and "hash" in out
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--json")
    broken = next(s["broken"] for s in json.loads(out)["streams"] if s["stream"] == EVENTS)
    assert code == 1
    assert (broken["seq"], broken["event_id"], broken["subject"], broken["kind"]) == (
        fill.seq,
        fill.event_id,
        fill.subject,
        "hash",
    )


async def test_verify_when_the_jsonb_payload_alone_is_edited_then_fails_naming_the_field(log, capsys):
    fill = log.row(next(e.event_id for e in log.events if isinstance(e, OrderFilled)))
    await sql(
        log.dsn,
        "UPDATE audit_log SET payload = jsonb_set(payload, '{price}', '1.0') WHERE stream = %s AND seq = %s",
        EVENTS,
        fill.seq,
    )
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--stream", EVENTS)
    assert code == 1 and fill.event_id in out and "payload" in out and "'price'" in out


async def test_verify_when_a_row_is_deleted_then_fails_at_the_row_after_it(log, capsys):
    victim, following = log.rows[40], log.rows[41]
    await sql(log.dsn, "DELETE FROM audit_log WHERE stream = %s AND seq = %s", EVENTS, victim.seq)
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--stream", EVENTS, "--json")
    broken = json.loads(out)["streams"][0]["broken"]
    assert code == 1 and (broken["seq"], broken["event_id"]) == (following.seq, following.event_id)


async def test_verify_when_the_tail_is_deleted_then_the_checkpoint_catches_it(log, capsys):
    await sql(log.dsn, "DELETE FROM audit_log WHERE stream = %s AND seq > %s", EVENTS, log.rows[-5].seq)
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--stream", EVENTS, "--json")
    assert code == 1 and json.loads(out)["streams"][0]["broken"]["kind"] == "checkpoint"


async def test_verify_session_checks_only_its_range(log, capsys):
    code, out = await ticktape(capsys, "audit", "verify", "s1", "--dsn", log.dsn)
    assert code == 0
    assert out.startswith(
        f"session s1: ok: {log.stop_seq - log.start_seq + 1} events, head hash {log.rows[log.stop_seq - 1].hash.hex()} "
    )
    outside = log.rows[-1]  # after the session stopped
    await sql(
        log.dsn, "UPDATE audit_log SET data = data || ' '::bytea WHERE stream = %s AND seq = %s", EVENTS, outside.seq
    )
    assert (await ticktape(capsys, "audit", "verify", "s1", "--dsn", log.dsn))[0] == 0
    assert (await ticktape(capsys, "audit", "verify", "--dsn", log.dsn))[0] == 1
    inside = log.rows[log.start_seq + 3]
    await sql(log.dsn, "UPDATE audit_log SET subject = 'md.bar.x' WHERE stream = %s AND seq = %s", EVENTS, inside.seq)
    code, out = await ticktape(capsys, "audit", "verify", "s1", "--dsn", log.dsn)
    assert code == 1 and inside.event_id in out


async def test_verify_unknown_session_or_no_database_then_exit_2(log, capsys, monkeypatch, tmp_path):
    assert (await ticktape(capsys, "audit", "verify", "nope", "--dsn", log.dsn))[0] == 2
    monkeypatch.chdir(tmp_path)
    for name in ("TICKTAPE_PG_DSN", "TICKTAPE_CONFIG", "TICKTAPE_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert (await ticktape(capsys, "audit", "verify"))[0] == 2


async def test_trace_a_fill_walks_back_through_order_approval_and_signal_to_the_bar(log, capsys):
    fill = next(e for e in log.events if isinstance(e, OrderFilled))
    code, out = await ticktape(capsys, "audit", "trace", fill.event_id, "--dsn", log.dsn, "--json")
    assert code == 0
    doc = json.loads(out)
    chain_ = doc["chain"]
    assert [s["type"] for s in chain_] == [
        "exec.order.filled",
        "exec.order.submitted",
        "risk.order.approved",
        "signal.generated",
        "md.bar.closed",
    ]
    by_id = {e.event_id: e for e in log.events}
    assert all(by_id[s["causation_id"]].event_id == nxt["event_id"] for s, nxt in itertools.pairwise(chain_))
    bar = by_id[chain_[-1]["event_id"]]
    assert isinstance(bar, BarClosed) and doc["root_cause"] == bar.event_id and doc["missing_cause"] is None
    assert chain_[0]["fields"]["price"] == fill.price and chain_[0]["subject"] == subjects.for_event(fill)
    assert chain_[-1]["fields"]["symbol"] == bar.symbol
    correlated = {e.event_id for e in log.events if e.correlation_id == bar.event_id} | {bar.event_id}
    assert {s["event_id"] for s in doc["correlated"]} == correlated
    assert doc["correlated_total"] == len(doc["correlated"]) == len(correlated)
    kinds = {type(by_id[i]) for i in correlated}
    assert {BarClosed, SignalGenerated, OrderApproved, OrderSubmitted, OrderFilled} <= kinds

    code, text = await ticktape(capsys, "audit", "trace", fill.event_id, "--dsn", log.dsn)
    assert code == 0
    positions = [text.index(s["event_id"]) for s in chain_]
    assert positions == sorted(positions)  # newest first, down to the bar
    assert f"root cause: md.bar.closed {bar.event_id}" in text


async def test_trace_an_unknown_event_then_exit_1(log, capsys):
    assert (await ticktape(capsys, "audit", "trace", "no-such-event", "--dsn", log.dsn))[0] == 1
