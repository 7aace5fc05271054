"""The signal shell as four workers on a real nats-server: each reads the events stream through its
own durable (signal-p0..p3) and handles the bars of its partition only, the others acked unread;
together they publish every signal of one core, each once."""

from __future__ import annotations

import collections

import pytest
from nats.js.errors import NotFoundError

from services.signal.config import SignalConfig
from services.signal.core import SignalCore
from services.signal.service import serve as serve_signal
from tests.support.partitioned import VENUE, partitioned_bars
from ticktape import subjects, workers
from ticktape.bus.durable import carry_over
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import SignalGenerated
from ticktape.events.codec import encode
from ticktape.sessions import wait_drained
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.services import common_settings, running_service

STREAM = "TICKTAPE"


@pytest.fixture
async def js(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    return js


async def _drained(js, durable: str) -> bool:
    try:
        await js.consumer_info(STREAM, durable)
    except NotFoundError:
        return False
    return await wait_drained(js, STREAM, [durable], timeout=2)


async def test_four_workers_when_each_reads_its_durable_then_each_handles_only_its_partition(nats_url, js, monkeypatch):
    bars = partitioned_bars(120)
    core = SignalCore(SignalConfig())
    expected = [out for bar in bars for out in core.handle(bar)]
    assert {workers.partition(4, VENUE, s.symbol) for s in expected} == {0, 1, 2, 3}
    await publish_batch(js, [(b, {}) for b in bars])
    received, published = [], []
    for index in range(4):  # one after the other: a worker's index comes from its environment
        monkeypatch.setenv(workers.ENV, str(index))
        async with running_service("signal", serve_signal, SignalConfig(workers=4), common_settings(nats_url)) as rt:
            await eventually(lambda i=index: _drained(js, f"signal-p{i}"), timeout=30, what=f"worker {index} done")
            received.append(rt.metrics.value("ticktape_received"))
            published.append(rt.metrics.value("ticktape_published"))
    partition_sizes = collections.Counter(workers.partition(4, b.venue, b.symbol) for b in bars)
    assert received == [partition_sizes[i] for i in range(4)]
    got = [e for e in await stream_events(js, STREAM, [subjects.ALL_SIGNALS]) if isinstance(e, SignalGenerated)]
    assert sum(published) == len(got) == len(expected)  # no worker published another's signals
    per_symbol: dict[str, list[bytes]] = collections.defaultdict(list)
    for s in got:
        per_symbol[s.symbol].append(encode(s))
    reference: dict[str, list[bytes]] = collections.defaultdict(list)
    for s in expected:
        reference[s.symbol].append(encode(s))
    assert per_symbol == reference


async def _run_workers(nats_url, js, monkeypatch, count: int) -> float:
    """Run the signal service as `count` workers, one after the other, each until its durable is
    drained; the signals they published in all."""
    published = 0.0
    for index in range(count):
        monkeypatch.setenv(workers.ENV, str(index))
        config = SignalConfig(workers=count)
        async with running_service("signal", serve_signal, config, common_settings(nats_url)) as rt:
            name = workers.durable("signal", index, count)
            await eventually(lambda n=name: _drained(js, n), timeout=30, what=f"{name} done")
            published += rt.metrics.value("ticktape_published")
    return published


async def test_worker_count_changed_between_runs_then_new_durables_go_on_where_the_old_stopped(
    nats_url, js, monkeypatch
):
    bars = partitioned_bars(150)
    core = SignalCore(SignalConfig())
    expected = [[out for out in core.handle(bar)] for bar in bars]
    third = len(bars) // 3
    siblings = workers.every_durable("signal")
    phases = [(1, 0, third), (4, third, 2 * third), (2, 2 * third, len(bars))]  # 1 -> 4 -> 2 workers
    for count, start, stop in phases:
        await publish_batch(js, [(b, {}) for b in bars[start:stop]])
        done = await carry_over(js, STREAM, [workers.durable("signal", i, count) for i in range(count)], siblings)
        if start:
            assert done, "the new layout's durables were created from the old ones"
        assert await _run_workers(nats_url, js, monkeypatch, count) == sum(len(outs) for outs in expected[start:stop])
        names = [c.name for c in await js.consumers_info(STREAM)]
        assert sorted(names) == sorted(workers.durable("signal", i, count) for i in range(count))
    got = [e for e in await stream_events(js, STREAM, [subjects.ALL_SIGNALS]) if isinstance(e, SignalGenerated)]
    assert [encode(s) for s in sorted(got, key=lambda s: s.event_id)] == [
        encode(s) for s in sorted((o for outs in expected for o in outs), key=lambda s: s.event_id)
    ]
