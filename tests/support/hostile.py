"""Hostile inputs for the session-file reader, and measuring what a child process costs."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def gzip_bomb(path: Path, line_mib: int, first_line: bytes = b"") -> None:
    """A gzip whose line (after first_line, when given) is line_mib MiB of zeros: ~4 KB on disk
    per MiB it expands to."""
    chunk = b"0" * 2**20
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as gz:
        gz.write(first_line)
        for _ in range(line_mib):
            gz.write(chunk)
        gz.write(b"\n")


# Runs `python -m <module> <args>` and, at exit, writes its peak resident memory (VmHWM, in KiB)
# to the file named by TT_PEAK_FILE. VmHWM belongs to the address space made by exec, whereas
# getrusage's ru_maxrss also counts what the forked child inherited from a large parent (pytest).
_MEASURED = """
import atexit, os, runpy, sys
def _report():
    with open("/proc/self/status") as status, open(os.environ["TT_PEAK_FILE"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(_report)
module = sys.argv.pop(1)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def peak_rss_mib(module: str, *args: str) -> tuple[int, str, int]:
    """(exit code, stderr, peak resident memory in MiB) of `python -m module args...`."""
    with tempfile.NamedTemporaryFile(suffix=".peak") as peak:
        done = subprocess.run(
            [sys.executable, "-c", _MEASURED, module, *args],
            env={**os.environ, "TT_PEAK_FILE": peak.name},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stderr, int(Path(peak.name).read_text()) // 1024
