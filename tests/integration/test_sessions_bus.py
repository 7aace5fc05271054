"""Session recording on a real nats-server: lifecycle events, `ticktape sessions`, draining."""

from __future__ import annotations

import asyncio
import json

import nats
from nats.js.api import AckPolicy, ConsumerConfig

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.cli.main import main
from ticktape.config import NatsSettings
from ticktape.depset import dependency_set
from ticktape.events import SessionStarted, SessionStopped
from ticktape.events.codec import decode
from ticktape.sessions import STOPPED, SessionRecorder, wait_drained
from ticktape.testing.bus import stream_messages

RAW = {"signal": {"timeframe": "1m"}, "postgres": {"dsn": "postgresql://tt:pw-secret@db:5432/tt"}}


def publish(url: str, events) -> None:
    async def go():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await ensure_streams(js, NatsSettings(url=url))
            await publish_batch(js, [(e, {}) for e in events])
        finally:
            await nc.close()

    asyncio.run(go())


def stored(url: str, filters=(">",)):
    async def go():
        nc = await nats.connect(url)
        try:
            return await stream_messages(nc.jetstream(), subjects.EVENTS_STREAM, filters)
        finally:
            await nc.close()

    return asyncio.run(go())


def sessions_json(url: str, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["sessions", "--nats", url, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_session_is_recorded_around_its_events_and_listed(nats_url, capsys):
    recorder = SessionRecorder(NatsSettings(url=nats_url), RAW, ("market_data", "signal"))
    started = recorder.start()
    publish(nats_url, wave_bars(n=3))
    stopped = recorder.stop(STOPPED)

    msgs = stored(nats_url)
    kinds = [type(decode(m.data)).__name__ for m in msgs]
    assert kinds == ["SessionStarted", "BarClosed", "BarClosed", "BarClosed", "SessionStopped"]
    assert msgs[0].subject == f"sessions.{recorder.session_id}"
    assert msgs[0].headers["Nats-Msg-Id"] == started.event_id and msgs[-1].headers["Nats-Msg-Id"] == stopped.event_id
    assert "pw-secret" not in started.config_json
    # keys whose default changed are stated (config.state_defaults), so a replay knows how it ran
    assert json.loads(started.config_json)["signal"] == {
        "timeframe": "1m",
        "trade_backfilled": False,
        "event_version": 2,
    }

    (row,) = sessions_json(nats_url, capsys)
    assert row["session_id"] == recorder.session_id and row["status"] == STOPPED
    assert row["config_hash"] == recorder.config_hash == started.config_hash
    assert row["code_version"] == started.code_version and row["events"] == 3
    assert row["dependencies"] == started.dependencies == dependency_set()
    assert row["started_ns"] == started.ts_event <= row["stopped_ns"] == stopped.ts_event
    assert row["services"] == ["market_data", "signal"]


def test_sessions_without_a_stop_are_running_or_unterminated(nats_url, capsys):
    first = SessionRecorder(NatsSettings(url=nats_url), {}, ())
    first.start()  # e.g. the supervisor was SIGKILLed: no SessionStopped
    second = SessionRecorder(NatsSettings(url=nats_url), {}, ())
    second.start()
    second.stop(STOPPED)
    third = SessionRecorder(NatsSettings(url=nats_url), {}, ())
    third.start()
    publish(nats_url, wave_bars(n=2))
    rows = sessions_json(nats_url, capsys)
    assert [r["session_id"] for r in rows] == [first.session_id, second.session_id, third.session_id]
    assert [r["status"] for r in rows] == ["unterminated", STOPPED, "running"]
    assert [r["events"] for r in rows] == [0, 0, 2]


def test_the_session_table_lists_each_session(nats_url, capsys):
    recorder = SessionRecorder(NatsSettings(url=nats_url), {}, ())
    recorder.start()
    recorder.stop(STOPPED)
    capsys.readouterr()
    assert main(["sessions", "--nats", nats_url]) == 0
    assert recorder.session_id in capsys.readouterr().out


def test_sessions_on_a_missing_stream_fails_cleanly(nats_url, capsys):
    assert main(["sessions", "--nats", nats_url, "--stream", "NOPE"]) == 2


async def test_drain_waits_until_every_durable_has_consumed_its_input(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    await js.add_consumer(
        subjects.EVENTS_STREAM,
        ConsumerConfig(durable_name="signal", ack_policy=AckPolicy.EXPLICIT, filter_subjects=[subjects.ALL_BARS]),
    )
    await publish_batch(js, [(b, {}) for b in wave_bars(n=5)])
    assert not await wait_drained(js, subjects.EVENTS_STREAM, ["signal", "absent"], timeout=0.3)
    sub = await js.pull_subscribe_bind(consumer="signal", stream=subjects.EVENTS_STREAM)
    for msg in await sub.fetch(5, timeout=5):
        await msg.ack_sync()
    assert await wait_drained(js, subjects.EVENTS_STREAM, ["signal", "absent"], timeout=5)


async def test_drain_gives_up_at_once_when_no_consumer_is_alive(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    await js.add_consumer(
        subjects.EVENTS_STREAM,
        ConsumerConfig(durable_name="risk", ack_policy=AckPolicy.EXPLICIT, filter_subjects=[subjects.ALL_BARS]),
    )
    await publish_batch(js, [(b, {}) for b in wave_bars(n=2)])
    assert not await wait_drained(js, subjects.EVENTS_STREAM, ["risk"], timeout=60, alive=lambda: False)


def test_lifecycle_events_decode_as_session_events(nats_url):
    recorder = SessionRecorder(NatsSettings(url=nats_url), {}, ("signal",))
    recorder.start()
    recorder.stop(STOPPED)
    events = [decode(m.data) for m in stored(nats_url, [subjects.ALL_SESSIONS])]
    assert isinstance(events[0], SessionStarted) and isinstance(events[1], SessionStopped)
    assert events[1].causation_id == events[0].event_id
