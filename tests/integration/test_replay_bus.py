"""Export, import, replay and republish against a real nats-server holding two recorded sessions."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections import Counter

import msgspec
import nats
import pytest

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.cli.main import main
from ticktape.config import NatsSettings
from ticktape.depset import dependency_set
from ticktape.infra.nats_server import start_nats_server
from ticktape.replay.fileformat import SessionFile
from ticktape.replay.importer import default_prefix, default_stream
from ticktape.replay.simulate import simulate_session
from ticktape.testing.bus import stream_messages

OTHER = {
    "signal": {"strategies": [{"kind": "ema_cross", "name": "fast5", "fast": 5, "slow": 21}]},
    "risk": {"accounts": [{"name": "paper-main", "strategies": ["*"]}]},
}


def run(coro_fn, url: str):
    async def go():
        nc = await nats.connect(url)
        try:
            return await coro_fn(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(go())


@pytest.fixture
def recorded(nats_url):
    """Two sessions on TICKTAPE: s1 with the defaults, then s2 with another signal config."""
    bars = sorted(
        wave_bars("BTCUSDT", 240) + wave_bars("ETHUSDT", 240, period=30), key=lambda b: (b.open_time, b.symbol)
    )
    meta1, recs1 = simulate_session(bars[:240], {}, "20250101T000000Z-aaaaaa")
    meta2, recs2 = simulate_session(bars[240:], OTHER, "20250101T010000Z-bbbbbb", history=recs1)

    async def publish(js):
        await ensure_streams(js, NatsSettings(url=nats_url))
        for rec in recs1 + recs2:
            ack = await js.publish(rec.subject, rec.data, headers=dict(rec.headers))
            assert ack.seq == rec.seq

    run(publish, nats_url)
    return (meta1, recs1), (meta2, recs2)


def messages(url: str, stream: str):
    return run(lambda js: stream_messages(js, stream), url)


def strip_time(records):
    return [(r.stream, r.seq, r.subject, r.headers, r.data, r.in_session) for r in records]


def test_export_holds_the_history_and_marks_the_session(nats_url, recorded, tmp_path):
    (_, recs1), (meta2, recs2) = recorded
    path = tmp_path / "s2.ttsession.gz"
    assert main(["export", meta2.session_id, str(path), "--nats", nats_url]) == 0
    with SessionFile(path) as f:
        assert f.session == meta2
        got = list(f.records())
    assert f.header.counts.messages == len(recs1) + len(recs2) and f.header.counts.in_session == len(recs2)
    expected = [msgspec.structs.replace(r, in_session=False) for r in recs1] + recs2
    assert strip_time(got) == strip_time(expected)
    assert all(r.time > 0 for r in got)


def test_export_then_import_then_export_gives_the_same_file(nats_url, recorded, tmp_path):
    _, (meta2, _) = recorded
    first, second = tmp_path / "first.gz", tmp_path / "second.gz"
    assert main(["export", meta2.session_id, str(first), "--nats", nats_url]) == 0
    live_before = len(messages(nats_url, subjects.EVENTS_STREAM))
    assert main(["import", str(first), "--nats", nats_url]) == 0
    imported = default_stream(meta2.session_id)
    assert main(["export", meta2.session_id, str(second), "--nats", nats_url, "--stream", imported]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert len(messages(nats_url, subjects.EVENTS_STREAM)) == live_before, "the live stream was touched"
    stored = messages(nats_url, imported)
    assert stored and all(m.subject.startswith(default_prefix(meta2.session_id)) for m in stored)


def test_import_never_reuses_an_existing_stream(nats_url, recorded, tmp_path):
    _, (meta2, _) = recorded
    path = tmp_path / "s2.gz"
    assert main(["export", meta2.session_id, str(path), "--nats", nats_url]) == 0
    assert main(["import", str(path), "--nats", nats_url]) == 0
    assert main(["import", str(path), "--nats", nats_url]) == 2
    assert main(["import", str(path), "--nats", nats_url, "--stream", subjects.EVENTS_STREAM]) == 2


def test_import_check_verifies_without_importing(nats_url, recorded, tmp_path):
    _, (meta2, _) = recorded
    path = tmp_path / "s2.gz"
    assert main(["export", meta2.session_id, str(path), "--nats", nats_url]) == 0
    assert main(["import", str(path), "--check"]) == 0
    lines = gzip.decompress(path.read_bytes()).split(b"\n")
    lines[5] = lines[5].replace(b'"seq":', b'"seq":9', 1)
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    assert main(["import", str(path), "--check"]) == 1
    assert main(["import", str(path), "--nats", nats_url, "--stream", "DAMAGED"]) == 1


def test_keep_subjects_restores_the_stream_as_recorded_on_an_empty_server(nats_url, recorded, tmp_path):
    _, (meta2, recs2) = recorded
    path = tmp_path / "s2.gz"
    assert main(["export", meta2.session_id, str(path), "--nats", nats_url]) == 0
    assert main(["import", str(path), "--nats", nats_url, "--keep-subjects", "--stream", "COPY"]) == 2  # overlap
    other = start_nats_server(tmp_path / "other")
    try:
        assert main(["import", str(path), "--nats", other.url, "--keep-subjects", "--stream", "COPY"]) == 0
        stored = messages(other.url, "COPY")
        assert stored[-1].subject == recs2[-1].subject and stored[-1].data == recs2[-1].data
    finally:
        other.stop()


@pytest.mark.parametrize("which", [0, 1])
def test_replay_verify_passes_for_each_session_live_and_imported(nats_url, recorded, tmp_path, which):
    meta = recorded[which][0]
    assert main(["replay", meta.session_id, "--verify", "--nats", nats_url]) == 0
    path = tmp_path / "s.gz"
    assert main(["export", meta.session_id, str(path), "--nats", nats_url]) == 0
    assert main(["import", str(path), "--nats", nats_url]) == 0
    assert (
        main(["replay", meta.session_id, "--verify", "--nats", nats_url, "--stream", default_stream(meta.session_id)])
        == 0
    )
    assert main(["replay", str(path), "--verify"]) == 0


def test_replay_of_an_unknown_session_fails_cleanly(nats_url, recorded):
    assert main(["replay", "no-such-session", "--verify", "--nats", nats_url]) == 2


def test_republish_sends_the_sessions_market_data_to_another_stack_once(nats_url, recorded, tmp_path):
    _, (meta2, recs2) = recorded
    target = start_nats_server(tmp_path / "target")
    try:
        run(lambda js: ensure_streams(js, NatsSettings(url=target.url)), target.url)
        args = ["replay", meta2.session_id, "--to-nats", target.url, "--speed", "0", "--nats", nats_url]
        assert main(args) == 0
        got = Counter(m.subject.split(".")[0] for m in messages(target.url, subjects.EVENTS_STREAM))
        bars = sum(1 for r in recs2 if r.subject.startswith("md.bar."))
        assert got == Counter({"md": bars})
        assert main(args) == 0  # the same ids again: dropped by the duplicate window
        assert len(messages(target.url, subjects.EVENTS_STREAM)) == bars
    finally:
        target.stop()


def test_what_if_reads_a_session_from_the_bus(nats_url, recorded, tmp_path):
    meta1 = recorded[0][0]
    config = tmp_path / "other.yaml"
    config.write_text(json.dumps(OTHER))
    out = tmp_path / "out"
    assert main(["replay", meta1.session_id, "--config", str(config), "--out", str(out), "--nats", nats_url]) == 0
    (path,) = out.glob("*.ttsession.gz")
    assert main(["replay", str(path), "--verify"]) == 0


@pytest.mark.parametrize("recorded_with", ["same", "other", "none"])
def test_replay_verify_says_when_the_dependency_set_differs_before_comparing(nats_url, tmp_path, capsys, recorded_with):
    deps = {"same": dependency_set(), "other": "cp311-linux-x86_64:0123456789abcdef", "none": ""}[recorded_with]
    meta, recs = simulate_session(wave_bars("BTCUSDT", 120), {}, "20250101T000000Z-cccccc", dependencies=deps)
    assert msgspec.json.decode(recs[0].data)["dependencies"] == deps

    async def publish(js):
        await ensure_streams(js, NatsSettings(url=nats_url))
        for rec in recs:
            await js.publish(rec.subject, rec.data, headers=dict(rec.headers))

    run(publish, nats_url)
    capsys.readouterr()
    assert main(["replay", meta.session_id, "--verify", "--nats", nats_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [i for i, line in enumerate(lines) if line.startswith("note: ") and "dependency set" in line]
    if recorded_with == "same":
        assert not notes
    else:
        assert notes and notes[0] < next(i for i, line in enumerate(lines) if line.startswith("session "))
        assert (deps or "names no dependency set") in lines[notes[0]] and dependency_set() in lines[notes[0]]
    assert main(["replay", meta.session_id, "--verify", "--nats", nats_url, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dependencies"] == {"recorded": deps, "current": dependency_set(), "same": recorded_with == "same"}


def test_replay_verify_names_a_forged_event_injected_on_the_stream_as_foreign(nats_url, tmp_path, capsys):
    """Someone with publish rights puts a signal no strategy made on the stream mid-session; risk
    and execution act on it. The report names it as foreign input, and nothing else diverges."""
    from tests.unit.test_replay_verify import forged_session

    meta, recs, forged_id = forged_session()
    forged = next(r for r in recs if r.subject.startswith("signals.") and forged_id.encode() in r.data)

    async def publish(js):
        await ensure_streams(js, NatsSettings(url=nats_url))
        for rec in recs:
            ack = await js.publish(rec.subject, rec.data, headers=dict(rec.headers))
            assert ack.seq == rec.seq

    run(publish, nats_url)
    path = tmp_path / "forged.ttsession.gz"
    assert main(["export", meta.session_id, str(path), "--nats", nats_url]) == 0
    for source in ([meta.session_id, "--nats", nats_url], [str(path)]):
        capsys.readouterr()
        assert main(["replay", *source, "--verify", "--json"]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["ok"] is False
        assert doc["foreign"] == [
            {
                "core": "signal",
                "seq": forged.seq,
                "subject": forged.subject,
                "event_id": forged_id,
                "type": "signal.generated",
            }
        ]
        assert doc["divergence"]["kind"] == "foreign" and doc["divergence"]["recorded_seq"] == forged.seq
        assert main(["replay", *source, "--verify"]) == 1
        text = capsys.readouterr().out
        assert f"foreign: event {forged_id} on {forged.subject} was not produced by any core" in text
        assert "MISMATCH" not in text
