"""Service bootstrap shared by every shell: config, logs, traces, metrics, NATS, signals.

`run(name, load, serve)` loads and validates configuration before touching the network (a bad
config exits 78 with the key path, and the supervisor does not restart it), connects to NATS,
provisions streams, then awaits `serve(runtime, config)` until SIGTERM/SIGINT, and drains."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ticktape import config as cfg
from ticktape import log as logmod
from ticktape import telemetry, telemetry_metrics
from ticktape.bus import creds
from ticktape.bus.connect import connect
from ticktape.bus.deadletter import DeadLetters
from ticktape.bus.provision import ensure_streams, stream_configs
from ticktape.clock import Clock
from ticktape.metrics import ServiceMetrics
from ticktape.snapshots.store import SnapshotStore, bucket_name

C = TypeVar("C")


class LiveClock:
    """The wall clock, for service shells (cores get time only through events)."""

    def now_ns(self) -> int:
        return time.time_ns()


@dataclass
class Runtime:
    name: str
    common: cfg.CommonSettings
    raw: dict[str, Any]
    nc: Client
    js: JetStreamContext
    metrics: ServiceMetrics
    log: Any
    clock: Clock = field(default_factory=LiveClock)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def load(name: str, load_config: Callable[[dict[str, Any]], C]) -> tuple[cfg.CommonSettings, dict[str, Any], C]:
    """Load common and service settings or exit 78 with a message naming the key."""
    try:
        raw = cfg.load_raw()
        common = cfg.load_common(raw)
        service_config = load_config(raw)
        creds.connect_options(common.nats.creds)  # a missing or open credentials file is a config error
    except (cfg.ConfigError, creds.CredentialsError) as exc:
        print(f"ticktape {name}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(cfg.EXIT_CONFIG) from None
    return common, raw, service_config


async def open_runtime(name: str, common: cfg.CommonSettings, raw: dict[str, Any]) -> Runtime:
    logmod.configure(name, common.telemetry.log_level)
    telemetry.setup(name, common.telemetry.otlp_endpoint)
    metrics = ServiceMetrics(name)
    serve_metrics(name, metrics, common.telemetry.metrics_port, common.telemetry.metrics_host)
    if common.telemetry.otlp_metrics:
        telemetry_metrics.setup(name, metrics.registry, common.telemetry.otlp_endpoint)
    log = logmod.get()
    nc = await connect(common.nats.url, name, creds=common.nats.creds)
    js = nc.jetstream()
    if common.nats.creds:
        await await_streams(js, common.nats)  # with bus credentials, only the admin role provisions
    else:
        await ensure_streams(js, common.nats)
    return Runtime(name=name, common=common, raw=raw, nc=nc, js=js, metrics=metrics, log=log)


def serve_metrics(name: str, metrics: ServiceMetrics, port: int, host: str = "127.0.0.1") -> None:
    """Serve the metrics, or exit 78 naming the key when the port cannot be bound: a port taken by
    someone else stays taken, so a restart loop would not help (the supervisor stops instead)."""
    try:
        metrics.serve(port, host)
    except OSError as exc:
        message = (
            f"config error: telemetry.metrics_port: cannot serve metrics on {host}:{port} ({exc.strerror or exc}); "
            "free the port or choose another (under `ticktape up` it is the base: services use base+1..)"
        )
        print(f"ticktape {name}: {message}", file=sys.stderr, flush=True)
        raise SystemExit(cfg.EXIT_CONFIG) from None


async def await_streams(js: JetStreamContext, settings: cfg.NatsSettings, timeout: float = 60.0) -> None:
    """Wait until ticktape's streams exist: under `ticktape up` they do before any service starts;
    a service's credential may read them but not create them (ticktape.bus.permissions)."""
    deadline = time.monotonic() + timeout
    for config in stream_configs(settings):
        while True:
            try:
                await js.stream_info(config.name or "")
                break
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"stream {config.name} does not exist after {timeout:.0f}s: it is created by the admin "
                        "role (`ticktape up`), which this service's credential is not"
                    ) from None
                await asyncio.sleep(0.2)


def run(
    name: str,
    load_config: Callable[[dict[str, Any]], C],
    serve: Callable[[Runtime, C], Coroutine[Any, Any, None]],
) -> None:
    """Entry point of a service process."""
    common, raw, service_config = load(name, load_config)

    async def main() -> None:
        rt = await open_runtime(name, common, raw)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, rt.stop.set)
        digest = (
            cfg.config_hash(common, service_config)
            if isinstance(service_config, msgspec.Struct)
            else cfg.config_hash(common)
        )
        rt.log.info("service starting", nats_url=common.nats.url, config_hash=digest)
        try:
            task = asyncio.create_task(serve(rt, service_config))
            stopper = asyncio.create_task(rt.stop.wait())
            done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()  # re-raise a crash so the supervisor restarts us
            else:
                rt.log.info("stopping: draining")
                try:
                    await asyncio.wait_for(task, timeout=10)
                except TimeoutError:
                    task.cancel()
            stopper.cancel()
        finally:
            try:
                await asyncio.wait_for(rt.nc.drain(), timeout=5)
            except Exception as exc:  # noqa: BLE001 - shutdown: whatever failed the drain, close the connection
                rt.log.warning("drain failed; closing the connection", error=repr(exc))
                await rt.nc.close()
            telemetry.shutdown()
            telemetry_metrics.shutdown()
            rt.log.info("service stopped")

    asyncio.run(main())


async def serve_core(
    rt: Runtime,
    core: Any,
    filter_subjects: tuple[str, ...] | list[str],
    on_processed: Callable[[int], None] | None = None,
    *,
    durable: str | None = None,
    accept: Callable[[str], bool] | None = None,
) -> None:
    """Run a pure core over its inputs from the events stream until rt.stop is set (as one of
    several workers: through its own `durable`, taking the inputs `accept` says are its own)."""
    from ticktape.bus.consumer import CoreConsumer

    nats = rt.common.nats
    consumer = CoreConsumer(
        service=rt.name,
        js=rt.js,
        stream=rt.common.nats.stream,
        filter_subjects=filter_subjects,
        core=core,
        metrics=rt.metrics,
        log=rt.log,
        on_processed=on_processed,
        max_deliver=rt.common.nats.max_deliver,
        max_bytes=rt.common.nats.max_message_bytes,
        dead_letters=dead_letters(rt),
        crash_dir=Path(rt.common.home) / "run" / "crashguard",
        nc=rt.nc,
        durable=durable,
        accept=accept,
        snapshots=SnapshotStore(rt.js, bucket_name(nats, rt.name), durable or rt.name, nats.snapshots_kept)
        if nats.snapshot_every_inputs or nats.snapshot_every_s
        else None,
        snapshot_every_inputs=nats.snapshot_every_inputs,
        snapshot_every_s=nats.snapshot_every_s,
    )
    await consumer.run(rt.stop)


def dead_letters(rt: Runtime) -> DeadLetters:
    """This service's dead-letter sender, with the bus settings' inline bound and bucket."""
    return DeadLetters(
        rt.js,
        rt.name,
        rt.metrics,
        rt.log,
        bucket=rt.common.nats.dlq_payloads_bucket,
        inline_bytes=rt.common.nats.dlq_inline_bytes,
    )


def require_pg_dsn(rt: Runtime) -> str:
    """The PostgreSQL DSN, or exit 78 (a config error the supervisor does not restart)."""
    if not rt.common.postgres.dsn:
        rt.log.error(
            str(
                cfg.ConfigError(
                    "postgres.dsn is not set: run under `ticktape up` (which "
                    "starts an embedded PostgreSQL) or set TICKTAPE_PG_DSN"
                )
            )
        )
        raise SystemExit(cfg.EXIT_CONFIG)
    return rt.common.postgres.dsn
