"""An embedded three-node NATS cluster (ticktape.infra.cluster) with ticktape's authorization: R3
streams on every node, clients that know every node through a comma-separated URL, and a node
lost and restarted without losing an acknowledged event."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus import creds
from ticktape.bus.connect import connect, has_jetstream
from ticktape.bus.permissions import ADMIN
from ticktape.bus.publisher import publish_batch
from ticktape.bus.reader import read_range
from ticktape.config import CommonSettings, NatsSettings
from ticktape.events.codec import decode
from ticktape.infra.cluster import NatsCluster, plan, start_cluster
from ticktape.infra.stack import ensure_nats
from ticktape.testing import eventually
from ticktape.testing.auth import anonymous_reply
from ticktape.testing.stack import wait_for

pytestmark = pytest.mark.timeout(120)


BARS = wave_bars(n=20)


@pytest.fixture
def cluster(tmp_path):
    common = CommonSettings(home=str(tmp_path), nats=NatsSettings(url="nats://127.0.0.1:0", replicas=3))
    running = start_cluster(common, 3)
    try:
        yield running, tmp_path / "creds"
    finally:
        running.stop()


def test_plan_gives_distinct_free_ports_and_the_first_node_the_configured_port():
    nodes = plan("127.0.0.1", 3, first_port=4999)
    assert [n.name for n in nodes] == ["n1", "n2", "n3"]
    assert nodes[0].client_port == 4999
    ports = [p for n in nodes for p in (n.client_port, n.cluster_port)]
    assert len(set(ports)) == len(ports)


async def test_r3_streams_survive_the_loss_and_return_of_a_node(cluster: tuple[NatsCluster, Path]):
    running, creds_dir = cluster
    admin, market_data = creds.path_for(creds_dir, ADMIN), creds.path_for(creds_dir, "market_data")
    assert [n.name for n in running.alive()] == ["n1", "n2", "n3"]
    assert all(anonymous_reply(n.url) == "-ERR 'Authorization Violation'" for n in running.nodes)

    nc = await connect(running.url, "test", creds=admin)
    publisher = await connect(running.url, "test-md", creds=market_data)
    try:
        js, pub = nc.jetstream(timeout=5), publisher.jetstream(timeout=5)
        info = await js.stream_info(subjects.EVENTS_STREAM)  # provisioned by start_cluster
        assert info.config.num_replicas == 3 and info.cluster is not None
        assert sorted([info.cluster.leader or "", *(p.name for p in info.cluster.replicas or [])]) == ["n1", "n2", "n3"]
        await publish_batch(pub, [(b, {}) for b in BARS[:10]], attempts=20)

        leader = next(n for n in running.nodes if n.name == info.cluster.leader)
        os.kill(running.servers[leader.name].process.pid, signal.SIGKILL)
        await eventually(lambda: leader not in running.alive(), timeout=10)

        async def new_leader() -> bool:  # stream_info raises during the election: eventually() retries
            now = await js.stream_info(subjects.EVENTS_STREAM)
            return bool(now.cluster and now.cluster.leader not in (None, leader.name))

        await eventually(new_leader, timeout=30, what="a new stream leader")
        await publish_batch(pub, [(b, {}) for b in BARS[5:]], attempts=20)  # 5..9 again: dropped

        running.start(leader)  # same name, ports and store: it catches up from the others

        async def caught_up() -> bool:
            now = await js.stream_info(subjects.EVENTS_STREAM)
            peers = {p.name: p.current for p in (now.cluster.replicas or [])} if now.cluster else {}
            return peers.get(leader.name) is True

        await eventually(caught_up, timeout=30, what=f"{leader.name} current again")
    finally:
        await publisher.close()
        await nc.close()

    nc = await connect(leader.url, "test", creds=admin)  # through the restarted node
    try:
        ids = [decode(m.data).event_id async for m in read_range(nc.jetstream(), subjects.EVENTS_STREAM, [">"])]
    finally:
        await nc.close()
    assert ids == [b.event_id for b in BARS]  # each once, in order


def test_a_running_cluster_given_as_a_list_of_servers_is_used_even_with_its_first_node_down(cluster, tmp_path):
    running, creds_dir = cluster
    common = CommonSettings(home=str(tmp_path / "other"), nats=NatsSettings(url=running.url, creds_dir=str(creds_dir)))
    assert ensure_nats(common) == (running.url, None)
    running.servers["n1"].kill()
    # n1 may have led JetStream's meta group: until the others elect a leader, JetStream does not answer
    admin = str(creds.path_for(creds_dir, ADMIN))
    wait_for(lambda: asyncio.run(has_jetstream(running.url, creds=admin)), timeout=30, what="a new meta leader")
    assert ensure_nats(common) == (running.url, None)  # one attempt per server, in order
