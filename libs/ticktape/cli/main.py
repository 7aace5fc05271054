"""Entry point of the `ticktape` command."""

from __future__ import annotations

import argparse
import sys

from ticktape.cli import up


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "venue-sim":
        from venuesim.cli import main as venue_sim_main

        return venue_sim_main(argv[1:])
    parser = argparse.ArgumentParser(prog="ticktape", description="event-sourced crypto trading on NATS JetStream")
    sub = parser.add_subparsers(dest="command", required=True)
    up.add_parser(sub)
    sub.add_parser("venue-sim", help="serve recorded bars over Binance's wire protocols (see --help)")
    p = sub.add_parser("proto", help="regenerate proto/ (JSON Schemas and AsyncAPI) from the code")
    p.add_argument("--check", action="store_true", help="exit 1 if proto/ differs from the code")
    args = parser.parse_args(argv)
    if args.command == "proto":
        from ticktape.proto import main as proto_main

        return proto_main(check=args.check)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
