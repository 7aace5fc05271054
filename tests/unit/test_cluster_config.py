"""The configuration of an embedded NATS cluster's nodes (ticktape.infra.cluster) and the
comma-separated server lists clients accept (ticktape.bus.connect)."""

from __future__ import annotations

import json
import re

import pytest

from ticktape.bus.connect import server_urls
from ticktape.infra.cluster import CLUSTER_NAME, ROUTE_USER, Node, cluster_config, plan
from ticktape.infra.nats_server import InfraError

NODES = [Node(f"n{i}", "127.0.0.1", 4221 + i, 6221 + i) for i in (1, 2, 3)]
PASSWORD = "r" * 43


def block(node: Node) -> dict:
    name, cluster = cluster_config(node, NODES, PASSWORD)
    assert name == f'server_name: "{node.name}"'
    assert cluster.startswith("cluster {")
    return json.loads(cluster.removeprefix("cluster "))


def test_each_node_listens_on_its_own_port_and_routes_to_every_other_node():
    for node in NODES:
        conf = block(node)
        assert conf["name"] == CLUSTER_NAME
        assert conf["listen"] == f"127.0.0.1:{node.cluster_port}"
        ports = sorted(int(r.rsplit(":", 1)[1]) for r in conf["routes"])
        assert ports == sorted(n.cluster_port for n in NODES if n is not node)


def test_routes_authenticate_with_the_route_user_on_both_ends():
    conf = block(NODES[0])
    assert conf["authorization"] == {"user": ROUTE_USER, "password": PASSWORD}
    for route in conf["routes"]:
        assert re.fullmatch(rf"nats-route://{ROUTE_USER}:{PASSWORD}@127\.0\.0\.1:\d+", route), route


@pytest.mark.parametrize("size", [1, 2, 4])
def test_plan_refuses_a_cluster_without_a_fault_tolerant_majority(size):
    with pytest.raises(InfraError, match="3 or 5"):
        plan("127.0.0.1", size)


def test_a_url_may_list_the_servers_of_a_cluster():
    assert server_urls("nats://a:1") == ["nats://a:1"]
    assert server_urls("nats://a:1, nats://b:2,nats://c:3") == ["nats://a:1", "nats://b:2", "nats://c:3"]
    with pytest.raises(ValueError, match="no NATS server"):
        server_urls(" , ")
