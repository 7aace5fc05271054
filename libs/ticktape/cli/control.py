"""`ticktape stop [--account A] [--flatten]` and `ticktape resume`: publish control.emergency_stop /
control.resume with the operator's credential, the only role the bus lets publish control events
(ticktape.bus.permissions). Risk then rejects every new signal that does not reduce a position and
execution cancels what is pending, until a resume; with --flatten execution also closes every
position of the account(s) with reduce-only orders (paper: filled at once at the mark)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import nats
import nats.errors

from ticktape import config as cfg
from ticktape import subjects
from ticktape.bus.connect import connect_command
from ticktape.bus.creds import CredentialsError
from ticktape.bus.permissions import OPERATOR
from ticktape.bus.publisher import msg_headers
from ticktape.cli.sessions import add_creds_arg, bus_creds, describe_error
from ticktape.control import COMMANDS, control_event
from ticktape.events import EmergencyStop, ResumeTrading
from ticktape.events.codec import encode


def add_parser(sub: argparse._SubParsersAction) -> None:
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--reason", default="operator", help="why (recorded in the event; default 'operator')")
        p.add_argument("--account", default="*", help="sub-account ('*', the default: every sub-account)")
        if name == "stop":
            p.add_argument(
                "--flatten",
                action="store_true",
                help="also close every position of the account(s) with reduce-only orders (paper: at the mark)",
            )
        p.add_argument("--nats", metavar="URL", help="NATS server (default: nats.url of the config, TICKTAPE_NATS_URL)")
        add_creds_arg(p, OPERATOR)
        p.set_defaults(func=run, control=name)


def run(args: argparse.Namespace) -> int:
    name = f"ticktape {args.control}"
    try:
        url = args.nats or cfg.load_common(cfg.load_raw()).nats.url
        creds = bus_creds(args, OPERATOR)
        flatten = bool(getattr(args, "flatten", False))
        event = control_event(args.control, args.reason, args.account, time.time_ns(), flatten=flatten)
        seq = asyncio.run(_publish(url, creds, event))
    except (cfg.ConfigError, CredentialsError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - unreachable server, refused credentials or subject
        print(f"{name}: {describe_error(exc)}", file=sys.stderr)
        return 2
    what = " (flatten)" if isinstance(event, EmergencyStop) and event.flatten is True else ""
    print(f"{name}: {subjects.for_event(event)}{what} published (event {event.event_id}, stream seq {seq})")
    return 0


async def _publish(url: str, creds: str | None, event: EmergencyStop | ResumeTrading) -> int:
    """Publish and wait for JetStream's ack; a refused publish says so instead of timing out."""
    nc, errors = await connect_command(url, "ticktape-operator", creds)
    try:
        try:
            ack = await nc.jetstream(timeout=5).publish(
                subjects.for_event(event), encode(event), headers=msg_headers(event)
            )
        except nats.errors.TimeoutError:
            if errors:
                raise RuntimeError(f"the server refused it: {errors[-1]}") from None
            raise
        return ack.seq
    finally:
        await nc.close()
