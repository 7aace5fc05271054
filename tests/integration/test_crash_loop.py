"""An input that kills its process outright (not an exception: os._exit, as the OOM killer
would) on a real nats-server: after max_deliver deaths in a row it is dead-lettered as a crash
loop and skipped, live and by the state rebuild, instead of crash-looping the service for ever
(the durable is re-created at the ack floor on every start, so JetStream's own delivery count
cannot tell)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support.bars import wave_bars
from tests.support.crashing_core import MAX_DELIVER
from ticktape import subjects
from ticktape.bus.crashguard import CRASH_LOOP, CrashGuard
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import DeadLettered
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def js(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    return js


async def start(nats_url: str, crash_dir: Path, poison: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.crashing_core",
        nats_url,
        str(crash_dir),
        poison,
        cwd=ROOT,
        env=dict(os.environ),
    )


async def outputs(js) -> list[str]:
    return [e.event_id for e in await stream_events(js, subjects.EVENTS_STREAM, [subjects.bars(timeframe="2m")])]


async def letters(js) -> list[DeadLettered]:
    got = await stream_events(js, subjects.DLQ_STREAM, [subjects.dead_letter("crashing")])
    return [e for e in got if isinstance(e, DeadLettered)]


async def test_input_that_kills_the_process_is_dead_lettered_after_max_deliver_deaths_then_skipped(
    nats_url, js, tmp_path
):
    first, poison, after, later = wave_bars(n=4)
    acks = await publish_batch(js, [(b, {}) for b in (first, poison, after)])
    poison_seq = acks[1].seq
    crash_dir = tmp_path / "crashguard"

    deaths = []
    for _ in range(MAX_DELIVER):  # what the supervisor does: start it again after each death
        proc = await start(nats_url, crash_dir, poison.event_id)
        deaths.append(await asyncio.wait_for(proc.wait(), timeout=60))
    assert deaths == [137] * MAX_DELIVER
    assert await outputs(js) == [first.event_id + "-2m"]  # nothing after the poison yet
    assert await letters(js) == []

    proc = await start(nats_url, crash_dir, poison.event_id)  # this start gives up on it
    try:
        await eventually(
            lambda: _has(outputs(js), after.event_id + "-2m"), timeout=60, what="the input behind the poison"
        )
        [letter] = await letters(js)
        assert letter.stream_seq == poison_seq and letter.error.startswith(CRASH_LOOP)
        assert letter.delivery == MAX_DELIVER and letter.source == subjects.bar("binance_usdm", "BTCUSDT", "1m")
        assert proc.returncode is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0

    # A clean restart rebuilds its state over the inputs up to the ack floor: the poison is
    # skipped there too (handling it would kill the process again), and new inputs go through.
    await publish_batch(js, [(later, {})])
    proc = await start(nats_url, crash_dir, poison.event_id)
    try:
        await eventually(lambda: _has(outputs(js), later.event_id + "-2m"), timeout=60, what="a later input")
        assert proc.returncode is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    assert await outputs(js) == [f"{b.event_id}-2m" for b in (first, after, later)]
    assert len(await letters(js)) == 1


async def _has(got, event_id: str) -> bool:
    return event_id in await got


def test_guard_counts_deaths_in_a_row_for_the_same_input_only(tmp_path):
    guard = CrashGuard(tmp_path, "d", limit=2)
    assert guard.on_start() is None  # nothing was in flight
    guard.begin(7)  # the process dies here
    again = CrashGuard(tmp_path, "d", limit=2)
    assert again.on_start() is None  # one death
    again.begin(8)  # a different input this time: the count starts over
    third = CrashGuard(tmp_path, "d", limit=2)
    assert third.on_start() is None
    third.begin(8)
    fourth = CrashGuard(tmp_path, "d", limit=2)
    doomed = fourth.on_start()
    assert doomed is not None and (doomed.stream_seq, doomed.deaths) == (8, 2)
    assert fourth.skipped == frozenset({8})
    fourth.begin(9)
    fourth.clear()  # handled: a later start finds nothing in flight
    fifth = CrashGuard(tmp_path, "d", limit=2)
    assert fifth.on_start() is None and fifth.skipped == frozenset({8})
