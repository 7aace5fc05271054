"""Signed audit checkpoints on a real nats-server and PostgreSQL: the archiver makes its key under
home on first start and signs every checkpoint; `ticktape audit verify --public-key` catches a
chain rewritten consistently in the database (which the hash chain alone cannot), checkpoints
signed by another key, and a deleted tail; `ticktape audit pubkey` prints the key."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.config import AuditConfig
from services.audit.service import serve as serve_audit
from tests.integration.test_audit_cli import session_event, sql, ticktape
from tests.integration.test_audit_service import checkpoints, js, publish, trading_session, wait_archived
from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.audit import chain, signing
from ticktape.events import Event, OrderFilled, SessionStarted, SessionStopped
from ticktape.testing.services import common_settings, running_service

__all__ = ["js"]
EVENTS = subjects.EVENTS_STREAM
CONFIG = AuditConfig(batch=32, checkpoint_every=40)


@dataclass
class Log:
    dsn: str
    home: Path
    events: list[Event]
    rows: list[chain.Row]
    stop_seq: int

    @property
    def public_key(self) -> Path:
        return self.home / "keys" / "audit-ed25519.pub"


@pytest.fixture
async def log(nats_url, js, pg_dsn, tmp_path, monkeypatch) -> Log:
    """A session (bars through fills) between bars before and after it, archived by the real
    service whose home is tmp_path/home; the CLI is pointed at that home too."""
    home = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TICKTAPE_HOME", str(home))
    monkeypatch.delenv("TICKTAPE_CONFIG", raising=False)
    before = wave_bars(n=5, symbol="ETHUSDT")
    during = trading_session()
    after = wave_bars(n=5, symbol="ADAUSDT")
    events = [*before, session_event(SessionStarted, "s1", 1), *during, session_event(SessionStopped, "s1", 2), *after]
    await publish(js, events)
    async with running_service("audit", serve_audit, CONFIG, common_settings(nats_url, pg_dsn, home=str(home))):
        rows = await wait_archived(pg_dsn, len(events))
    return Log(pg_dsn, home, events, rows, stop_seq=len(before) + len(during) + 2)


async def verify_json(capsys, log: Log, *args: str) -> tuple[int, dict]:
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--stream", EVENTS, "--json", *args)
    return code, json.loads(out)


async def rewrite_whole_chain(log: Log, index: int) -> list[chain.Row]:
    """What someone with write access to the database can do: change one fill's price, then
    recompute every hash from there on and move every checkpoint's hash and count along, so
    the unsigned chain verifies again. The signatures they cannot make."""
    old = log.rows[index]
    doc = json.loads(old.data)
    doc["price"] = doc["price"] + 1.0
    messages = [(r.seq, r.subject, r.data) for r in log.rows]
    messages[index] = (old.seq, old.subject, json.dumps(doc, separators=(",", ":")).encode())
    forged = chain.chain(EVENTS, messages)
    async with await psycopg.AsyncConnection.connect(log.dsn, autocommit=True) as conn, conn.transaction():
        for r in forged:
            await conn.execute(
                "UPDATE audit_log SET data = %s, payload = %s::jsonb, prev_hash = %s, hash = %s "
                "WHERE stream = %s AND seq = %s",
                (r.data, r.payload, r.prev_hash, r.hash, EVENTS, r.seq),
            )
        by_seq = {r.seq: r for r in forged}
        for seq, _, _, _ in await checkpoints(log.dsn):
            await conn.execute(
                "UPDATE audit_checkpoints SET hash = %s WHERE stream = %s AND upto_seq = %s",
                (by_seq[seq].hash, EVENTS, seq),
            )
    return forged


async def test_the_archiver_makes_its_key_under_home_and_signs_every_checkpoint(log, capsys):
    private = log.home / "keys" / "audit-ed25519.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    signer = signing.load_private(private)
    key = signing.load_public(log.public_key)
    assert key.key_id == signer.key_id
    code, out = await ticktape(capsys, "audit", "pubkey", "--json")
    assert code == 0 and json.loads(out)["key_id"] == key.key_id
    assert json.loads(out)["pem"].encode() == log.public_key.read_bytes()

    async with await psycopg.AsyncConnection.connect(log.dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT upto_seq, hash, count, reason, signature, key_id FROM audit_checkpoints "
            "WHERE stream = %s ORDER BY upto_seq",
            (EVENTS,),
        )
        cps = await cur.fetchall()
    assert {"interval", "session"} <= {c[3] for c in cps}
    for seq, h, count, _, sig, kid in cps:
        assert kid == key.key_id and key.problem(EVENTS, seq, bytes(h), count, bytes(sig), kid) is None
    # the session's stop row is itself a signed checkpoint: its range ends on one
    assert (log.stop_seq, "session") in {(c[0], c[3]) for c in cps}

    code, doc = await verify_json(capsys, log)  # the key beside the home's private key, by default
    (s,) = doc["streams"]
    assert code == 0 and doc["key_id"] == key.key_id
    assert (s["signed"], s["signed_seq"], s["unsigned_rows"]) == (len(cps), log.rows[-1].seq, 0)
    code, out = await ticktape(capsys, "audit", "verify", "s1", "--dsn", log.dsn, "--public-key", str(log.public_key))
    assert code == 0 and f"signed by key {key.key_id}, the last at seq {log.stop_seq}" in out


async def test_a_consistently_rewritten_chain_passes_without_the_key_and_fails_with_it(log, capsys):
    fill = next(i for i, r in enumerate(log.rows) if r.type == OrderFilled.__struct_config__.tag)
    forged = await rewrite_whole_chain(log, fill)
    assert forged[fill].hash != log.rows[fill].hash
    code, doc = await verify_json(capsys, log, "--no-signatures")
    assert code == 0 and doc["ok"] is True  # the hash chain alone is fooled
    first_bad = min(seq for seq, *_ in await checkpoints(log.dsn) if seq >= log.rows[fill].seq)
    code, doc = await verify_json(capsys, log, "--public-key", str(log.public_key))
    broken = doc["streams"][0]["broken"]
    assert code == 1 and (broken["kind"], broken["seq"]) == ("signature", first_bad)
    code, out = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--stream", EVENTS)
    assert code == 1 and out.startswith(f"BROKEN: stream {EVENTS} seq {first_bad}:") and "signature" in out


async def test_checkpoints_re_signed_with_another_key_fail_against_the_real_public_key(log, capsys, tmp_path):
    fill = next(i for i, r in enumerate(log.rows) if r.type == OrderFilled.__struct_config__.tag)
    await rewrite_whole_chain(log, fill)
    other = signing.Signer.of(Ed25519PrivateKey.generate())
    for seq, h, count, _ in await checkpoints(log.dsn):
        await sql(
            log.dsn,
            "UPDATE audit_checkpoints SET signature = %s, key_id = %s WHERE stream = %s AND upto_seq = %s",
            other.sign(EVENTS, seq, h, count),
            other.key_id,
            EVENTS,
            seq,
        )
    # the forger's own public key accepts their work; the archiver's does not
    theirs = tmp_path / "theirs.pub"
    theirs.write_bytes(signing.public_pem(other.public_key))
    assert (await verify_json(capsys, log, "--public-key", str(theirs)))[0] == 0
    code, doc = await verify_json(capsys, log, "--public-key", str(log.public_key))
    broken = doc["streams"][0]["broken"]
    assert code == 1 and broken["kind"] == "signature" and other.key_id in broken["detail"]


async def test_replacing_every_checkpoint_with_unsigned_ones_fails_with_the_key(log, capsys):
    await sql(log.dsn, "UPDATE audit_checkpoints SET signature = NULL, key_id = NULL WHERE stream = %s", EVENTS)
    assert (await verify_json(capsys, log, "--no-signatures"))[0] == 0
    # the witness beside the key still vouches for the chain up to its seq
    code, doc = await verify_json(capsys, log)
    assert code == 0 and doc["streams"][0]["signed"] == 1 and doc["streams"][0]["witness_seq"] == log.rows[-1].seq
    (log.home / "keys" / "audit-checkpoints" / f"{EVENTS}.json").unlink()
    code, doc = await verify_json(capsys, log)
    assert code == 1 and doc["streams"][0]["broken"]["kind"] == "signature"


async def test_a_deleted_tail_is_reported_with_the_rows_missing_against_the_last_checkpoint(log, capsys):
    cps = await checkpoints(log.dsn)
    last_seq, _, last_count, _ = cps[-1]
    cut = last_seq - 2  # the last checkpoint's row and the one before it go
    await sql(log.dsn, "DELETE FROM audit_log WHERE stream = %s AND seq > %s", EVENTS, cut)
    code, doc = await verify_json(capsys, log)
    broken = doc["streams"][0]["broken"]
    kept = sum(1 for r in log.rows if r.seq <= cut)
    assert code == 1 and (broken["kind"], broken["seq"]) == ("checkpoint", last_seq)
    assert f"{last_count - kept} rows missing" in broken["detail"]


async def test_an_unreadable_public_key_is_exit_2(log, capsys, tmp_path):
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    code, _ = await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--public-key", str(bad))
    assert code == 2
    assert (await ticktape(capsys, "audit", "verify", "--dsn", log.dsn, "--public-key", str(tmp_path / "no")))[0] == 2


async def test_a_tail_deleted_with_its_checkpoints_is_caught_by_the_witness_kept_beside_the_key(log, capsys):
    witness = log.home / "keys" / "audit-checkpoints" / f"{EVENTS}.json"
    kept = signing.read_witness(witness)
    cps = await checkpoints(log.dsn)
    assert kept is not None and (kept.upto_seq, kept.hash, kept.count) == cps[-1][:3]
    # someone with the database cuts the log back to an earlier signed checkpoint, and removes
    # the checkpoints that would give it away: every remaining signature still verifies
    cut_seq, _, cut_count, _ = cps[-3]
    await sql(log.dsn, "DELETE FROM audit_log WHERE stream = %s AND seq > %s", EVENTS, cut_seq)
    await sql(log.dsn, "DELETE FROM audit_checkpoints WHERE stream = %s AND upto_seq > %s", EVENTS, cut_seq)
    code, doc = await verify_json(capsys, log)
    s = doc["streams"][0]
    assert code == 1 and s["witness_seq"] == kept.upto_seq
    assert (s["broken"]["kind"], s["broken"]["seq"]) == ("checkpoint", kept.upto_seq)
    assert f"{kept.count - cut_count} rows missing" in s["broken"]["detail"]
    witness.unlink()  # without it, the signatures alone cannot tell
    code, doc = await verify_json(capsys, log)
    assert code == 0 and doc["streams"][0]["signed_seq"] == cut_seq and doc["streams"][0]["witness_seq"] is None
