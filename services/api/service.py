"""The API service's shell: follows the event log and the dead-letter stream into the read model
(ephemeral consumers from the first message: the projection is rebuilt at every start), probes
what the log does not hold (processes, durables) every api.poll_s, serves HTTP, and publishes the
operator's control commands (with the operator's credential when the bus has authorization)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any, cast

import nats.errors
from aiohttp import web
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from services.api import answers
from services.api import strategies as st
from services.api import views as v
from services.api.config import ApiConfig
from services.api.health import ConsumerProbe, Probe
from services.api.http import make_app
from services.api.readmodel import ReadModel
from ticktape import config as cfg
from ticktape import registry, runtime, subjects
from ticktape import strategies_table as table
from ticktape.bus.connect import connect
from ticktape.bus.publisher import msg_headers
from ticktape.bus.reader import follow
from ticktape.control import control_event
from ticktape.events import StrategyChanged
from ticktape.events.codec import DecodeError, encode
from ticktape.events.strategies import StrategyAction
from ticktape.serviceinfo import ServiceInfo
from ticktape.supervisor import alive, pid_of
from ticktape.workers import MAX_WORKERS, child_name, configured_count
from ticktape.workers import durable as workers_durable

NAME = "api"
FETCH = 1024
URL_FILE = "api.url"  # in <home>/run: where this API listens, for scripts and tests


def load(raw: dict[str, Any]) -> ApiConfig:
    return cfg.load_section(NAME, ApiConfig, raw)


class Shell:
    """The Backend of services.api.http: the read model, the latest probe, control publishing."""

    def __init__(self, rt: runtime.Runtime, config: ApiConfig) -> None:
        self.rt = rt
        self.config = config
        self.token = os.environ.get(config.token_env) or None
        self.model = ReadModel(max_orders=config.max_orders, max_fills=config.max_fills)
        self._last_seq = 0
        self._followed: dict[str, int] = {}  # stream -> the last sequence read (decodable or not)
        self.workers: tuple[v.Worker, ...] = ()
        self._services: dict[str, bool | None] = {}
        self._consumers: tuple[ConsumerProbe, ...] = ()
        self._acked: dict[str, tuple[int, int]] = {}  # durable -> (ack floor, when)
        self._operator: Client | None = None
        self.run_dir = Path(rt.common.home) / "run"
        self.undecodable = 0

    def now_ns(self) -> int:
        return self.rt.clock.now_ns()

    def followed(self) -> int:
        return self._followed.get(self.rt.common.nats.stream, 0)

    async def stream_last_seq(self) -> int:
        """The events stream's last sequence, asked now (the last known when the server does not answer)."""
        with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
            info = await asyncio.wait_for(self.rt.js.stream_info(self.rt.common.nats.stream), timeout=2.0)
            self._last_seq = info.state.last_seq
        return self._last_seq

    def probe(self) -> Probe:
        return Probe(now_ns=self.now_ns(), services=dict(self._services), consumers=self._consumers)

    # --- the projection -------------------------------------------------------------------------

    async def follow(self, stream: str) -> None:
        """Apply every message of `stream` in order, from the first, for as long as it runs
        (ticktape.bus.reader.follow: a consumer lost with a server restart is made again)."""
        async for msg in follow(
            self.rt.js,
            stream,
            (),
            start_seq=1,
            stop=self.rt.stop,
            log=self.rt.log,
            what="the stream",
            batch=FETCH,
            fetch_timeout=1.0,
            check_every=5,
            name_prefix="api",
        ):
            seq = msg.metadata.sequence.stream
            self._followed[stream] = seq
            try:
                event = subjects.decode_on(msg.subject, msg.data)
            except DecodeError:
                self.undecodable += 1  # its consumers dead-letter it; the read model skips it
                continue
            self.model.apply(event, seq, int(msg.metadata.timestamp.timestamp() * 1e9))

    # --- what the log does not hold -------------------------------------------------------------

    def _expected(self) -> list[str]:
        """The services of the current session (but this one), else those with a pid file (of
        their own, or of their first worker's)."""
        if self.model.sessions:
            latest = list(self.model.sessions.values())[-1]
            names = [s for s in latest.services if s != NAME]
            if names:
                return names
        return [
            s
            for s in registry.names()
            if s != NAME and any(pid_of(self.run_dir, p) is not None for p in (s, child_name(s, 0, MAX_WORKERS)))
        ]

    def _worker_count(self, info: ServiceInfo) -> int:
        """How many worker processes the service runs as (answers.worker_count; one unless it
        declares workers), with this API's own configuration as the fallback."""
        if info.workers is None:
            return 1
        return answers.worker_count(self.model, info.name, configured_count(self.rt.raw, info.name) or 1)

    async def poll(self) -> None:
        while not self.rt.stop.is_set():
            with contextlib.suppress(nats.errors.Error, OSError):
                await self._poll_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rt.stop.wait(), timeout=self.config.poll_s)

    def _alive(self, process: str) -> bool | None:
        """Whether the process of that name (its pid file) lives; None without a run directory."""
        if not self.run_dir.is_dir():
            return None
        pid = pid_of(self.run_dir, process)
        return pid is not None and alive(pid)

    async def _poll_once(self) -> None:
        """Each expected service's processes (its workers' with signal.workers > 1) and durables."""
        services: dict[str, bool | None] = {}
        consumers: list[ConsumerProbe] = []
        workers: list[v.Worker] = []
        now = self.now_ns()
        for name in self._expected():
            try:
                info = registry.get(name)
            except Exception:  # noqa: BLE001 - a service of an older session this build does not know
                services[name] = self._alive(name)
                continue
            count = self._worker_count(info)
            for index in range(count):
                process = child_name(name, index, count)
                services[process] = self._alive(process)
                for base in info.durables:
                    durable = workers_durable(base, index, count)
                    probe, floor = await self._consumer(name, durable)
                    consumers.append(probe)
                    if info.workers is None:
                        continue
                    rate = None
                    if probe.present:
                        before = self._acked.get(durable)
                        if before is not None and now > before[1]:
                            rate = max(0.0, (floor - before[0]) / ((now - before[1]) / 1e9))
                        self._acked[durable] = (floor, now)
                    workers.append(
                        v.Worker(
                            service=name,
                            durable=durable,
                            present=probe.present,
                            pending=probe.pending,
                            ack_pending=probe.ack_pending,
                            rate_per_s=rate,
                            alive=services[process],
                            process=process,
                            index=index,
                            workers=count,
                        )
                    )
        self._services, self._consumers, self.workers = services, tuple(consumers), tuple(workers)

    async def _consumer(self, service: str, durable: str) -> tuple[ConsumerProbe, int]:
        """(the durable on the events stream, its ack floor as a consumer sequence)."""
        try:
            ci = await self.rt.js.consumer_info(self.rt.common.nats.stream, durable)
        except NotFoundError:
            return ConsumerProbe(service, durable, present=False), 0
        floor = ci.ack_floor.consumer_seq if ci.ack_floor is not None else 0
        return ConsumerProbe(service, durable, True, ci.num_pending or 0, ci.num_ack_pending or 0), floor

    # --- control ----------------------------------------------------------------------------

    async def _operator_nc(self) -> Client:
        """The connection operator commands are published on: the operator's when configured."""
        if not self.config.operator_creds:
            return self.rt.nc
        if self._operator is None or self._operator.is_closed:
            self._operator = await connect(self.rt.common.nats.url, "api-operator", creds=self.config.operator_creds)
        return self._operator

    async def control(self, command: str, request: v.ControlRequest | v.StopRequest) -> v.ControlAccepted:
        nc = await self._operator_nc()
        flatten = isinstance(request, v.StopRequest) and request.flatten
        event = control_event(command, request.reason, request.account, self.now_ns(), flatten=flatten)
        subject = subjects.for_event(event)
        ack = await nc.jetstream(timeout=5).publish(subject, encode(event), headers=msg_headers(event))
        self.rt.log.info(
            "control command published",
            command=command,
            account=request.account,
            flatten=flatten,
            event_id=event.event_id,
        )
        return v.ControlAccepted(
            command=command,  # type: ignore[arg-type]
            event_id=event.event_id,
            subject=subject,
            stream_seq=ack.seq,
            account=request.account,
            reason=request.reason,
            flatten=flatten,
        )

    async def strategy_change(
        self, action: str, strategy_id: str, request: st.StrategyRequest | None
    ) -> st.StrategyAccepted:
        """A managed strategy's change as `ticktape strategies` makes it (ticktape.strategies_table):
        checked, stored in PostgreSQL and published as the operator before the commit."""
        import psycopg

        dsn = self.rt.common.postgres.dsn
        if not dsn:
            raise st.NoDatabase("no PostgreSQL is configured (postgres.dsn) on this API")
        check = table.checker(self.rt.raw, self.rt.common) if action == "add" else None
        new = None
        if request is not None:
            new = {
                "kind": request.kind,
                "params": request.params,
                "venue": request.venue,
                "symbols": list(request.symbols),
                "timeframes": list(request.timeframes),
                "account": request.account,
                "status": "paused" if request.paused else "live",
            }
        nc = await self._operator_nc()
        seq = 0

        async def publish(event: StrategyChanged) -> None:
            nonlocal seq
            ack = await nc.jetstream(timeout=5).publish(
                subjects.for_event(event), encode(event), headers=msg_headers(event)
            )
            seq = ack.seq

        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await table.apply_migrations(conn)
            change = cast(StrategyAction, action)  # the routes name only the four actions
            event = await table.apply(conn, strategy_id, change, self.now_ns(), publish, new=new, check=check)
        self.rt.log.info("strategy changed", strategy=event.strategy, action=event.action, revision=event.revision)
        held = self.model.managed.get(event.strategy)
        return st.StrategyAccepted(
            action=event.action,
            strategy=st.view(event, created_ns=held.created_ns if held is not None else event.ts_event),
            event_id=event.event_id,
            subject=subjects.for_event(event),
            stream_seq=seq,
        )

    async def close(self) -> None:
        if self._operator is not None:
            with contextlib.suppress(Exception):
                await self._operator.close()


async def serve(rt: runtime.Runtime, config: ApiConfig) -> None:
    shell = Shell(rt, config)
    settings = rt.common.nats
    tasks = [
        asyncio.create_task(shell.follow(settings.stream)),
        asyncio.create_task(shell.follow(settings.dlq_stream)),
        asyncio.create_task(shell.poll()),
    ]
    runner = web.AppRunner(make_app(shell, rt.log), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except OSError as exc:
        rt.log.error("cannot listen", host=config.host, port=config.port, error=exc.strerror or repr(exc))
        raise SystemExit(cfg.EXIT_CONFIG) from None
    server = site._server
    sockets = getattr(server, "sockets", None) or ()
    port = sockets[0].getsockname()[1] if sockets else config.port
    url = f"http://{config.host}:{port}"
    with contextlib.suppress(OSError):
        rt.log.info("API listening", url=url, reads=config.reads, control=shell.token is not None)
        shell.run_dir.mkdir(parents=True, exist_ok=True)
        (shell.run_dir / URL_FILE).write_text(url)
    try:
        await rt.stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await shell.close()


def main() -> None:
    runtime.run(NAME, load, serve)
