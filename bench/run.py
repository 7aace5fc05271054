"""Run every benchmark in turn (or only the named ones); each writes bench/results/<name>.json.

Usage: python bench/run.py [--list] [--only NAME[,NAME...]]   (NAME with or without .py)"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "md_decode.py",
    "md_publish.py",
    "md_burst.py",
    "md_burst_stack.py",
    "replay_vs_nautilus.py",
    "replay_command.py",
    "restart.py",
    "strategies_scale.py",
    "tick_to_order.py",
    "ws_client.py",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the benchmarks and exit")
    parser.add_argument("--only", metavar="NAME[,NAME]", help="run only these benchmarks, in the order given")
    args = parser.parse_args()
    if args.list:
        print("\n".join(name.removesuffix(".py") for name in BENCHMARKS))
        return 0
    chosen = BENCHMARKS
    if args.only:
        chosen = tuple(n if n.endswith(".py") else f"{n}.py" for n in (s.strip() for s in args.only.split(",")) if n)
        unknown = [n for n in chosen if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; one of: {', '.join(BENCHMARKS)}")
    failed = []
    for name in chosen:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
