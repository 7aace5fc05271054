"""`ticktape up`: start (or find) NATS and PostgreSQL, then run every service under supervision,
recorded as a session (SessionStarted before the services start, SessionStopped after).

`--live` runs the live-trading gate (ticktape.live) before anything trades: the configuration and
the credentials first (before any server starts), the bus's authorization once NATS is there,
then every live account is shown and a countdown runs (Ctrl-C: nothing starts, exit 0; `--yes`
skips it). Only then does up set `live` (TICKTAPE_LIVE) for the services it starts, and hand the
live accounts' credential variables to execution alone; a build that cannot trade live
(ticktape.live.can_trade_live: execution's live path, and reconciliation on start) stops there
instead (exit 69)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import msgspec

from ticktape import accounts as accts
from ticktape import config as cfg
from ticktape import live as live_gate
from ticktape import registry, sessions, shutdown, telemetry_metrics
from ticktape.bus import creds, permissions
from ticktape.bus.connect import connect
from ticktape.bus.durable import carry_over
from ticktape.infra import cluster, nats_auth
from ticktape.infra.nats_server import InfraError, NatsServer
from ticktape.infra.postgres import PostgresServer
from ticktape.infra.stack import ensure_nats, ensure_postgres
from ticktape.metrics import SupervisorMetrics, metrics_url, service_ports
from ticktape.redact import redact_text
from ticktape.supervisor import Server, StopSignals, Supervisor, child_env
from ticktape.workers import WorkerPlan, child_name, every_durable

API = "api"  # the HTTP API service (services.api): up chooses its port and prints its URL
# What `--live` meets while execution has no live path: the whole gate runs, then this (exit 69).
LIVE_REFUSAL = live_gate.UNAVAILABLE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run the whole stack in the foreground")
    p.add_argument("--config", help="path to ticktape.yaml (default: ./ticktape.yaml if present)")
    p.add_argument("--home", help="state directory (default: TICKTAPE_HOME or ./.ticktape)")
    p.add_argument("--venue-sim", dest="venue_sim", help="point every venue endpoint at this venue simulator URL")
    p.add_argument("--services", help="comma-separated subset of services to run")
    p.add_argument(
        "--live",
        action="store_true",
        help="trade the accounts with mode: live, after checking their credentials and the bus's authorization, "
        "showing each one's venue, endpoint and limits, and a 5 s countdown (Ctrl-C starts nothing)",
    )
    p.add_argument("--yes", action="store_true", help="with --live: skip the countdown (unattended starts)")
    # the countdown's length, for tests; the operator's is always COUNTDOWN_S
    p.add_argument("--countdown-s", type=_positive_int, default=live_gate.COUNTDOWN_S, help=argparse.SUPPRESS)
    p.add_argument(
        "--otlp",
        metavar="URL",
        help="send every service's traces and metrics to this OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318 "
        "(sets telemetry.otlp_endpoint; telemetry.otlp_metrics: false sends traces only)",
    )
    p.add_argument(
        "--cluster",
        type=int,
        choices=cluster.SIZES,
        metavar="N",
        help=f"run an embedded NATS cluster of N nodes ({' or '.join(map(str, cluster.SIZES))}) on loopback, "
        "streams replicated on every node (nats.replicas = N)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Ctrl-C/SIGTERM/SIGHUP are caught before anything starts and until everything has stopped
    # (ticktape.supervisor.StopSignals): a signal never finds the default action while a child lives
    signals = StopSignals().install()
    try:
        return _run(args, signals)
    finally:
        signals.ignore()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1 (use --yes to skip the countdown)")
    return value


def _run(args: argparse.Namespace, signals: StopSignals) -> int:
    if args.yes and not args.live:
        print("ticktape up: --yes only skips the countdown of --live", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if args.config:
        env["TICKTAPE_CONFIG"] = str(Path(args.config).resolve())
    if args.home:
        env["TICKTAPE_HOME"] = args.home
    if args.venue_sim:
        env["TICKTAPE_VENUE_SIM"] = args.venue_sim
    if args.cluster:
        env["TICKTAPE_NATS__REPLICAS"] = str(args.cluster)  # every stream on every node (R3: R=3)
    if args.otlp:
        url = urlsplit(args.otlp)
        if url.scheme not in ("http", "https") or not url.netloc:
            print(
                f"ticktape up: --otlp wants an http(s) URL such as http://127.0.0.1:4318 "
                f"(got {redact_text(args.otlp)!r})",
                file=sys.stderr,
            )
            return 2
        env["TICKTAPE_TELEMETRY__OTLP_ENDPOINT"] = args.otlp  # every child reads it as its config key
    try:
        raw = cfg.load_raw(env=env)
        common = cfg.load_common(raw)
    except cfg.ConfigError as exc:
        print(f"ticktape up: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    home = Path(common.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    known = registry.names()
    wanted = {s.strip() for s in args.services.split(",")} if args.services else set(known)
    unknown = sorted(wanted - set(known))
    if unknown:
        print(f"ticktape up: unknown service {unknown[0]!r}; allowed: {', '.join(known)}", file=sys.stderr)
        return 2
    services = tuple(s for s in known if s in wanted)  # started in the registry's order
    try:  # how many workers each service runs as (`auto`: measured now, written into the session's config)
        every = {s: registry.worker_plan(registry.get(s), raw) for s in services}
        plans = {s: p for s, p in every.items() if p.count > 1 or p.requested == "auto"}
    except cfg.ConfigError as exc:
        print(f"ticktape up: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    for name, plan in plans.items():
        env[f"TICKTAPE_{name.upper()}__WORKERS"] = str(plan.count)
    try:  # the live gate's first part: configuration and credentials, before anything starts
        live = live_gate.plan(args.live, raw, common, env, services)
    except cfg.ConfigError as exc:
        print(f"ticktape up: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except live_gate.Refused as exc:
        print(f"ticktape up: {exc}", file=sys.stderr)
        return exc.code
    # venue credentials stay in `env` (for execution alone, below): the embedded servers, which
    # inherit this process's environment, never hold one
    for variable in {v for a in common.accounts for v in accts.credential_variables(a)}:
        os.environ.pop(variable, None)
    try:
        extra_workers = tuple(child_name(s, i, p.count) for s, p in plans.items() for i in range(1, p.count))
        metrics = _serve_metrics(
            common.telemetry.metrics_port, services, known, common.telemetry.metrics_host, extra_workers
        )
        api = _api_address(raw, services)
    except cfg.ConfigError as exc:
        print(f"ticktape up: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    try:
        nats_server: NatsServer | cluster.NatsCluster | None
        if args.cluster:
            nats_server = cluster.start_cluster(common, args.cluster)
            nats_url = nats_server.url
        else:
            nats_url, nats_server = ensure_nats(common)
        if isinstance(nats_server, NatsServer):
            signals.started.append(nats_server.process)
        elif nats_server is not None:
            signals.started.extend(nats_server.processes)  # every node of a cluster
        bus = nats_auth.for_stack(common)
    except (InfraError, creds.CredentialsError) as exc:
        print(f"ticktape up: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    if live:  # the rest of the gate: the bus, what will trade where, the countdown
        code = _live_start(live, raw, nats_url, bus, args, signals)
        if code is not None:
            if nats_server is not None:
                nats_server.stop()
            return code
        env[live_gate.ENV] = "true"  # every service it starts loads the live accounts (cfg.load_accounts)
    try:
        pg_dsn, pg_server = ensure_postgres(common)
        if pg_server is not None:
            signals.started.append(pg_server.process)
    except InfraError as exc:
        if nats_server is not None:
            nats_server.stop()
        print(f"ticktape up: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    # no service holds a venue credential but execution, and it only those of the live accounts
    base_env, venue_credentials = live_gate.split_credentials(env, common.accounts, live)
    children_env = child_env(base_env, TICKTAPE_NATS_URL=nats_url, TICKTAPE_PG_DSN=pg_dsn, TICKTAPE_HOME=str(home))
    # each service connects with its own credentials file (its path, never the password, is passed)
    service_env = {s: {"TICKTAPE_NATS__CREDS": path} for s in services if (path := bus.for_role(s))}
    if venue_credentials:
        service_env.setdefault("execution", {}).update(venue_credentials)
    if api is not None:  # chosen here so that it is known (and printed) before the API starts
        service_env.setdefault(API, {})["TICKTAPE_API__PORT"] = str(api[1])
        if operator := bus.for_role(permissions.OPERATOR):  # control commands go out as the operator
            service_env[API]["TICKTAPE_API__OPERATOR_CREDS"] = operator
    for name, port in (metrics.ports if metrics else {}).items():  # each its own port, not the base
        service_env.setdefault(name, {})["TICKTAPE_TELEMETRY__METRICS_PORT"] = str(port)
    shown_url = redact_text(nats_url)  # what is printed never carries a token or password
    print(f"ticktape up: NATS {shown_url} ({'embedded' if nats_server else 'existing'}), state in {home}", flush=True)
    if isinstance(nats_server, cluster.NatsCluster):
        nodes = ", ".join(f"{n.name} {n.url}" for n in nats_server.nodes)
        print(f"ticktape up: NATS cluster (R{common.nats.replicas} streams), nodes {nodes}", flush=True)
    trading = f"LIVE trading: {', '.join(item.account.name for item in live)}" if live else "dry-run (paper) trading"
    print(f"ticktape up: PostgreSQL {'embedded' if pg_server else 'external'}; {trading}", flush=True)
    if metrics is not None:  # `ticktape up` itself first, then each service in start order
        for port in (metrics.base, *metrics.ports.values()):
            print(f"ticktape up: metrics {metrics_url(common.telemetry.metrics_host, port)}", flush=True)
    otlp = common.telemetry.otlp_endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if otlp:
        sent = "traces and metrics" if common.telemetry.otlp_metrics else "traces"
        print(f"ticktape up: OTLP {redact_text(otlp)} ({sent} of every service)", flush=True)
    # restarts per service: served on the base port, pushed over OTLP with the services' metrics
    supervisor_metrics = metrics.registry if metrics else None
    if otlp and common.telemetry.otlp_metrics:
        supervisor_metrics = supervisor_metrics or SupervisorMetrics()
        telemetry_metrics.setup("up", supervisor_metrics.registry, otlp)
    if api is not None:
        print(f"ticktape up: API http://{_url_host(api[0])}:{api[1]}", flush=True)
    observer = bus.for_role(permissions.OBSERVER)
    if observer:
        print(f"ticktape up: bus credentials (one per role) in {bus.directory}", flush=True)
        print(f"ticktape up: watch signals with: nats --context {observer} sub 'signals.>'", flush=True)
    else:
        print(f"ticktape up: watch signals with: nats sub --server {shown_url} 'signals.>'", flush=True)
    admin = msgspec.structs.replace(common.nats, url=nats_url, creds=bus.for_role(permissions.ADMIN))
    # stopped by the supervisor after the services (and killed with them when the stop runs out
    # of time or is interrupted); stopped here too when the session never started
    # the embedded PostgreSQL and nats-server (every node of a cluster) are also restarted when
    # they die, with the same ports, name and data
    servers: list[Server] = [s for s in (pg_server, nats_server) if isinstance(s, PostgresServer | NatsServer)]
    if isinstance(nats_server, cluster.NatsCluster):
        servers.extend(nats_server.servers.values())
    infra: list[subprocess.Popen[bytes]] = []
    try:
        if signals.first is not None:  # asked to stop while the servers started: no session
            return 0
        return _run_session(
            children_env,
            home,
            services,
            admin,
            service_env,
            common.supervisor,
            infra,
            signals,
            servers,
            supervisor_metrics,
            operator_creds=bus.for_role(permissions.OPERATOR),
            plans=plans,
        )
    finally:
        telemetry_metrics.shutdown()
        if pg_server is not None:
            pg_server.stop()
        if nats_server is not None:
            nats_server.stop()


def _run_session(
    env: dict[str, str],
    home: Path,
    services: tuple[str, ...],
    nats: cfg.NatsSettings,
    service_env: dict[str, dict[str, str]] | None = None,
    stopping: cfg.SupervisorSettings | None = None,
    infra: Sequence[subprocess.Popen[bytes]] = (),
    signals: StopSignals | None = None,
    servers: Sequence[Server] = (),
    metrics: SupervisorMetrics | None = None,
    operator_creds: str | None = None,
    plans: Mapping[str, WorkerPlan] | None = None,
) -> int:
    """Record the session around the supervisor: the producers stop first; the cores (services
    with a replayable core) once their durables have drained their input, with the accounts'
    on_shutdown policies applied in the drain (ticktape.shutdown); the sinks (archivers) last,
    after the session's stop record, once they have stored everything (ticktape.registry)."""
    infos = [registry.get(s) for s in services]
    counts = {name: plan.count for name, plan in (plans or {}).items()}
    try:  # a service whose worker count changed: its new durables go on where the old ones stopped
        for line in asyncio.run(asyncio.wait_for(_carry_over(nats, infos, counts), 30)):
            print(f"ticktape up: {line}", flush=True)
    except Exception as exc:  # noqa: BLE001 - no consistent start position, no run
        print(f"ticktape up: cannot prepare the workers' durables ({redact_text(repr(exc))})", file=sys.stderr)
        return 1
    try:
        raw = cfg.load_raw(env=env)
        # a policy is applied only by a session that runs execution (ticktape.shutdown)
        accounts = cfg.load_accounts(raw) if "execution" in services else ()
        recorder = sessions.SessionRecorder(nats, raw, services)
        started = recorder.start()
        for name, plan in (plans or {}).items():  # after SessionStarted: the choice is part of the session
            recorder.record(plan.event(name, started))
    except cfg.ConfigError as exc:
        print(f"ticktape up: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - no session record, no run
        print(
            f"ticktape up: cannot record the session start on NATS ({redact_text(repr(exc))}); not starting",
            file=sys.stderr,
        )
        return 1
    env = dict(env, TICKTAPE_SESSION_ID=recorder.session_id)
    print(f"ticktape up: session {recorder.session_id} (config {recorder.config_hash})", flush=True)
    for name, plan in (plans or {}).items():
        why = (
            f"auto: {plan.strategies} strategies at {plan.evaluation_ns / 1e6:.3f} ms a bar, {plan.symbols} symbols, "
            f"budget {plan.budget_ns / 1e6:.0f} ms, {plan.cpus} CPUs"
            if plan.requested == "auto"
            else "configured"
        )
        print(f"ticktape up: {name} runs as {plan.count} worker(s) ({why})", flush=True)
    producers = tuple(i.name for i in infos if i.kind == "producer")
    core_durables = tuple(d for i in infos if i.kind == "core" for d in registry.durables(i, counts.get(i.name, 1)))
    sinks = tuple(i.name for i in infos if i.kind in ("sink", "view"))  # views answer to the end
    sink_durables = tuple(d for i in infos if i.kind == "sink" for d in i.durables)
    stopped: list[str] = []
    attempted: list[bool] = []
    settings = stopping or cfg.SupervisorSettings()

    def record_stop() -> None:
        attempted.append(True)
        reason = (
            sessions.CONFIG_ERROR
            if supervisor.exit_code == cfg.EXIT_CONFIG
            else sessions.STOPPED
            if supervisor.drained
            else sessions.UNDRAINED
        )
        try:
            recorder.stop(reason)
            stopped.append(reason)
        except Exception as exc:  # noqa: BLE001 - the run is over either way
            print(f"ticktape up: cannot record the session stop on NATS ({redact_text(repr(exc))})", file=sys.stderr)

    supervisor = Supervisor(
        env,
        home / "run",
        services,
        stop_first=producers,
        drain=lambda alive: shutdown.drain_and_apply(
            lambda a, timeout: recorder.drain(core_durables, a, timeout),
            alive,
            accounts,
            recorder.session_id,
            nats.url,
            operator_creds,
            settings.shutdown_timeout_s,
            _say,
            flat=shutdown.flat_on(recorder.nats.url, recorder.nats.creds, recorder.nats.stream),
        ),
        stop_last=sinks,
        before_last=record_stop,
        drain_last=lambda alive: recorder.drain(sink_durables, alive),
        extra_env=service_env,
        workers=counts,
        grace=settings.service_grace_s,
        stop_timeout=settings.stop_timeout_s,
        infra=infra,
        signals=signals,
        servers=servers,
        metrics=metrics,
    )
    code = supervisor.run()
    if not attempted:
        record_stop()
    return code


async def _carry_over(
    nats: cfg.NatsSettings, infos: Sequence[registry.ServiceInfo], counts: Mapping[str, int]
) -> list[str]:
    """ticktape.bus.durable.carry_over for each service that runs as workers (ServiceInfo.workers)."""
    split = [i for i in infos if i.workers is not None]
    if not split:
        return []
    nc = await connect(nats.url, "session", creds=nats.creds)
    try:
        js = nc.jetstream()
        lines = []
        for info in split:
            siblings = [d for base in info.durables for d in every_durable(base)]
            lines += await carry_over(js, nats.stream, registry.durables(info, counts.get(info.name, 1)), siblings)
        return lines
    finally:
        await nc.drain()


def _live_start(
    live: tuple[live_gate.LiveAccount, ...],
    raw: dict[str, Any],
    nats_url: str,
    bus: nats_auth.BusCredentials,
    args: argparse.Namespace,
    signals: StopSignals,
) -> int | None:
    """The gate once NATS is there: its authorization, then every live account shown and the
    countdown. An exit code when nothing may start (a refusal, 78; a stop during the countdown,
    0; no live path in execution, 69), None when live trading starts."""
    problem = live_gate.bus_problem(nats_url, bus.directory)
    if problem:
        print(f"ticktape up: {problem}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    try:
        lines = live_gate.announce(live, raw)
    except cfg.ConfigError as exc:
        print(f"ticktape up: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    for line in lines:
        print(f"ticktape up: {line}", flush=True)
    if args.yes:
        print("ticktape up: --yes: no countdown", flush=True)
    else:
        print("ticktape up: Ctrl-C now starts nothing", flush=True)
        if not live_gate.countdown(args.countdown_s, lambda: signals.first is not None):
            print("ticktape up: stopped during the countdown; nothing was started", file=sys.stderr, flush=True)
            return 0
    if not live_gate.can_trade_live():
        print(f"ticktape up: {LIVE_REFUSAL}", file=sys.stderr, flush=True)
        return live_gate.EXIT_UNAVAILABLE
    return None


def _say(text: str) -> None:
    print(f"[ticktape] {text}", file=sys.stderr, flush=True)  # as the supervisor's own lines


class _Metrics(NamedTuple):
    base: int
    ports: dict[str, int]
    registry: SupervisorMetrics


def _serve_metrics(
    base: int, services: tuple[str, ...], known: tuple[str, ...], host: str = "127.0.0.1", workers: Sequence[str] = ()
) -> _Metrics | None:
    """telemetry.metrics_port is a base port: `ticktape up` serves its own metrics (restarts per
    service) there and gives service i of the registry base + 1 + i (ticktape.metrics.service_ports);
    the further `workers` of a service run as several (its first has the service's port) the ports
    after the registry's, in order.
    Every port is checked before anything starts: one already taken is a config error here, not a
    service that exits at start. None when metrics are off (port 0)."""
    if not base:
        return None
    try:
        ports = service_ports(base, services, known)
    except ValueError as exc:
        raise cfg.ConfigError(str(exc)) from None
    for j, name in enumerate(workers):
        ports[name] = base + 1 + len(known) + j
        if ports[name] > 65535:
            raise cfg.ConfigError(
                f"telemetry.metrics_port {base} leaves no port for worker {name}; choose a lower base"
            )
    for name, port in ports.items():
        if not _free(port, host):
            raise cfg.ConfigError(
                f"telemetry.metrics_port: port {port} (for {name}: base {base} + 1 + its index) is in use; "
                "choose a base whose next ports are free"
            )
    registry = SupervisorMetrics()
    try:
        registry.serve(base, host)
    except OSError as exc:
        raise cfg.ConfigError(
            f"telemetry.metrics_port: cannot serve `ticktape up`'s metrics on {host}:{base} "
            f"({exc.strerror or exc}); choose a free base port"
        ) from None
    return _Metrics(base, ports, registry)


def _api_address(raw: dict[str, Any], services: tuple[str, ...]) -> tuple[str, int] | None:
    """(host, port) of the API when it runs: api.port, or a free port when it is 0. A port that is
    taken is a config error here rather than an API that exits at start."""
    if API not in services:
        return None
    settings = cfg.load_section(API, registry.config_type(registry.get(API)), raw)
    host, port = str(settings.host), int(settings.port)
    if port == 0:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, 0))
            except OSError as exc:
                raise cfg.ConfigError(f"api.host: cannot listen on {host!r} ({exc.strerror or exc})") from None
            return host, int(sock.getsockname()[1])
    try:
        free = _free(port, host)
    except cfg.ConfigError:
        raise cfg.ConfigError(f"api.host: cannot listen on {host!r}") from None
    if not free:
        raise cfg.ConfigError(f"api.port: port {port} on {host} is in use; choose another, or 0 for a free one")
    return host, port


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether host:port (telemetry.metrics_host) can be bound now, as the services' HTTP servers
    bind it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        raise cfg.ConfigError(f"telemetry.metrics_host {host!r} cannot be bound: {exc}") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
    return True
