"""`ticktape proto`: regenerate or check proto/."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("proto", help="regenerate proto/ (JSON Schemas and AsyncAPI) from the code")
    p.add_argument("--check", action="store_true", help="exit 1 if proto/ differs from the code")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ticktape.proto import main

    return main(check=args.check)
