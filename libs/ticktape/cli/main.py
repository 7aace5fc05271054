"""Entry point of the `ticktape` command: each subcommand lives in its own module under
ticktape.cli and registers itself with `add_parser(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = (
    "ticktape.cli.up",
    "ticktape.cli.proto",
    "ticktape.cli.sessions",
    "ticktape.cli.export",
    "ticktape.cli.replay",
    "ticktape.cli.audit",
    "ticktape.cli.control",
    "ticktape.cli.bus",
    "ticktape.cli.status",
    "ticktape.cli.strategies",
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "venue-sim":  # the simulator owns its own argument parser
        from venuesim.cli import main as venue_sim_main

        return venue_sim_main(argv[1:])
    parser = argparse.ArgumentParser(prog="ticktape", description="event-sourced crypto trading on NATS JetStream")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("venue-sim", help="serve recorded market data over the venues' wire protocols (see --help)")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
