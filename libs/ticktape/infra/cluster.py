"""A NATS cluster of embedded nats-servers on loopback (`ticktape up --cluster 3`): the streams are
replicated on every node (nats.replicas = the cluster's size), so the stack survives the loss of a
minority of nodes without losing an acknowledged event.

Each node is a `nats-server -js` with its own store under <home>/nats-cluster/n<i>, the same
configuration as the single embedded server (a user per role, max_payload, the fsync policy) plus
a `server_name` and a `cluster` block with explicit routes to every other node. Routes authenticate
with a user of their own (a random password per start, only in the nodes' 0600 configuration
files): a route is a full-trust link, so without it any local process could join the cluster and
bypass the per-role permissions. Ports are chosen free at start and kept for a node's restart, so
the client URL list (comma-separated, as nats.url accepts it) stays valid."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import msgspec
from nats.errors import Error as NatsError

from ticktape.bus import permissions
from ticktape.bus.connect import connect, server_urls
from ticktape.bus.provision import ensure_streams
from ticktape.config import CommonSettings, NatsSettings
from ticktape.infra import nats_auth
from ticktape.infra.nats_server import InfraError, NatsServer, start_nats_server
from ticktape.infra.ports import free_port, is_loopback, port_open
from ticktape.infra.stack import embedded_config

CLUSTER_NAME = "ticktape"
ROUTE_USER = "route"
SIZES = (3, 5)  # odd: a majority survives the loss of one node (two of five)


@dataclass(frozen=True)
class Node:
    """One node's identity and ports (fixed for the cluster's life, restarts included)."""

    name: str
    host: str
    client_port: int
    cluster_port: int

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"


def plan(host: str, size: int, first_port: int = 0) -> list[Node]:
    """`size` nodes on `host` with free ports; the first takes first_port when it is not 0."""
    if size not in SIZES:
        raise InfraError(f"a cluster has {' or '.join(map(str, SIZES))} nodes (got {size})")
    return [
        Node(f"n{i}", host, first_port if i == 1 and first_port else free_port(host), free_port(host))
        for i in range(1, size + 1)
    ]


def cluster_config(node: Node, nodes: Sequence[Node], route_password: str) -> list[str]:
    """The node's name and cluster block: it listens for routes on its cluster port, demands the
    route user's password there and connects to every other node with it."""
    routes = [f"nats-route://{ROUTE_USER}:{route_password}@{n.host}:{n.cluster_port}" for n in nodes if n != node]
    block = {
        "name": CLUSTER_NAME,
        "listen": f"{node.host}:{node.cluster_port}",
        "authorization": {"user": ROUTE_USER, "password": route_password},
        "routes": routes,
    }
    return [f"server_name: {json.dumps(node.name)}", f"cluster {json.dumps(block, indent=2)}"]


@dataclass
class NatsCluster:
    """The running nodes; `url` lists every node's client URL, comma-separated."""

    home: Path
    nodes: list[Node]
    configs: dict[str, list[str]] = field(repr=False)
    servers: dict[str, NatsServer] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def store_dir(self, node: Node) -> Path:
        return self.home / node.name

    def start(self, node: Node) -> NatsServer:
        """Start (or restart, with the same ports, name and store) one node."""
        server = start_nats_server(
            self.store_dir(node), host=node.host, port=node.client_port, config=self.configs[node.name]
        )
        server.name = f"nats-server {node.name}"  # as ticktape.supervisor names it, should it restart it
        self.servers[node.name] = server
        return server

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [s.process for s in self.servers.values()]

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.name in self.servers and self.servers[n.name].process.poll() is None]

    def stop(self, timeout: float = 10.0) -> None:
        for server in self.servers.values():  # signal every node, then wait: they shut down together
            if server.process.poll() is None:
                server.process.terminate()
        for server in self.servers.values():
            server.stop(timeout)


def start_cluster(common: CommonSettings, size: int, *, timeout: float = 30.0) -> NatsCluster:
    """Start `size` nodes on the loopback host of nats.url (the first on its port unless 0),
    admitting only ticktape's roles, and provision the streams with `size` replicas (the cluster
    is ready once they are placed)."""
    parsed = urlparse(server_urls(common.nats.url)[0])
    host, port = parsed.hostname or "127.0.0.1", 4222 if parsed.port is None else parsed.port
    if not is_loopback(host):
        raise InfraError(f"an embedded cluster only starts on loopback (nats.url is {common.nats.url})")
    if port and port_open(host, port):
        raise InfraError(
            f"a NATS server already answers at {host}:{port}; --cluster starts its own nodes: "
            "stop that server or set nats.url to port 0 (free ports)"
        )
    nodes = plan(host, size, port)
    route_password = secrets.token_urlsafe(32)
    base = embedded_config(common)
    cluster = NatsCluster(
        Path(common.home).resolve() / "nats-cluster",
        nodes,
        {n.name: [*base, *cluster_config(n, nodes, route_password)] for n in nodes},
    )
    try:
        for node in nodes:
            cluster.start(node)
        nats_auth.publish_url(common, cluster.url)
        creds = nats_auth.for_stack(common).for_role(permissions.ADMIN)
        asyncio.run(provision(cluster.url, msgspec.structs.replace(common.nats, replicas=size), creds, timeout))
    except BaseException:
        cluster.stop()
        raise
    return cluster


async def provision(url: str, settings: NatsSettings, creds: str | None, timeout: float) -> None:
    """Create the streams, replicated on every node, as soon as the cluster can place them: first
    JetStream's API does not answer (no meta leader yet), then the new leader may not know every
    node yet and refuses a replicated stream ("no suitable peers for placement")."""
    deadline = time.monotonic() + timeout
    nc = await asyncio.wait_for(connect(url, "cluster-start", creds=creds), timeout)
    try:
        js = nc.jetstream(timeout=2.0)
        while True:
            try:
                await ensure_streams(js, settings, attempts=1)
                return
            except NatsError as exc:  # timeouts and API refusals alike, until the deadline
                if time.monotonic() > deadline:
                    raise InfraError(
                        f"the NATS cluster at {url} could not place R{settings.replicas} streams within "
                        f"{timeout}s ({exc!r})"
                    ) from None
                await asyncio.sleep(0.2)
    finally:
        await nc.close()
