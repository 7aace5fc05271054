"""`ticktape up`: start (or find) NATS and PostgreSQL, then run every service under supervision,
recorded as a session (SessionStarted before the services start, SessionStopped after)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import msgspec

from ticktape import config as cfg
from ticktape import registry, sessions
from ticktape.bus import creds, permissions
from ticktape.infra import nats_auth
from ticktape.infra.nats_server import InfraError
from ticktape.infra.stack import ensure_nats, ensure_postgres
from ticktape.redact import redact_text
from ticktape.supervisor import Supervisor, child_env

LIVE_REFUSAL = (
    "live trading is not available in this build: ticktape runs execution in dry-run (paper) mode "
    "only. Remove --live; no order will reach an exchange."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run the whole stack in the foreground")
    p.add_argument("--config", help="path to ticktape.yaml (default: ./ticktape.yaml if present)")
    p.add_argument("--home", help="state directory (default: TICKTAPE_HOME or ./.ticktape)")
    p.add_argument("--venue-sim", dest="venue_sim", help="point every venue endpoint at this venue simulator URL")
    p.add_argument("--services", help="comma-separated subset of services to run")
    p.add_argument("--live", action="store_true", help="refused: live trading is not available")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.live:
        print(f"ticktape up: {LIVE_REFUSAL}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if args.config:
        env["TICKTAPE_CONFIG"] = str(Path(args.config).resolve())
    if args.home:
        env["TICKTAPE_HOME"] = args.home
    if args.venue_sim:
        env["TICKTAPE_VENUE_SIM"] = args.venue_sim
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
    try:
        nats_url, nats_server = ensure_nats(common)
        bus = nats_auth.for_stack(common)
    except (InfraError, creds.CredentialsError) as exc:
        print(f"ticktape up: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    try:
        pg_dsn, pg_server = ensure_postgres(common)
    except InfraError as exc:
        if nats_server is not None:
            nats_server.stop()
        print(f"ticktape up: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    children_env = child_env(env, TICKTAPE_NATS_URL=nats_url, TICKTAPE_PG_DSN=pg_dsn, TICKTAPE_HOME=str(home))
    # each service connects with its own credentials file (its path, never the password, is passed)
    service_env = {s: {"TICKTAPE_NATS__CREDS": path} for s in services if (path := bus.for_role(s))}
    shown_url = redact_text(nats_url)  # what is printed never carries a token or password
    print(f"ticktape up: NATS {shown_url} ({'embedded' if nats_server else 'existing'}), state in {home}", flush=True)
    print(f"ticktape up: PostgreSQL {'embedded' if pg_server else 'external'}; dry-run (paper) trading", flush=True)
    observer = bus.for_role(permissions.OBSERVER)
    if observer:
        print(f"ticktape up: bus credentials (one per role) in {bus.directory}", flush=True)
        print(f"ticktape up: watch signals with: nats --context {observer} sub 'signals.>'", flush=True)
    else:
        print(f"ticktape up: watch signals with: nats sub --server {shown_url} 'signals.>'", flush=True)
    admin = msgspec.structs.replace(common.nats, url=nats_url, creds=bus.for_role(permissions.ADMIN))
    try:
        return _run_session(children_env, home, services, admin, service_env)
    finally:
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
) -> int:
    """Record the session around the supervisor: the producers stop first; the cores (services
    with a replayable core) once their durables have drained their input; the sinks (archivers)
    last, after the session's stop record, once they have stored everything (ticktape.registry)."""
    try:
        recorder = sessions.SessionRecorder(nats, cfg.load_raw(env=env), services)
        recorder.start()
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
    infos = [registry.get(s) for s in services]
    producers = tuple(i.name for i in infos if i.kind == "producer")
    core_durables = tuple(d for i in infos if i.kind == "core" for d in i.durables)
    sinks = tuple(i.name for i in infos if i.kind == "sink")
    sink_durables = tuple(d for i in infos if i.kind == "sink" for d in i.durables)
    stopped: list[str] = []

    def record_stop() -> None:
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
        drain=lambda alive: recorder.drain(core_durables, alive),
        stop_last=sinks,
        before_last=record_stop,
        drain_last=lambda alive: recorder.drain(sink_durables, alive),
        extra_env=service_env,
    )
    code = supervisor.run()
    if not stopped:
        record_stop()
    return code
