"""A progress bar on stderr for long replays (redrawn at most five times a second), closed by a
final line with the messages and closed bars replayed per second."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_PREFIX = "md.bar."


class Progress:
    def __init__(self, total: int | None, label: str, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.count = 0
        self.bars = 0
        self._start = time.monotonic()
        self._drawn = 0.0

    def advance(self, n: int = 1, subject: str = "") -> None:
        """n more messages; `subject` (of one message) counts it as a bar when it is one."""
        self.count += n
        if subject.startswith(BAR_PREFIX):
            self.bars += 1
        now = time.monotonic()
        if now - self._drawn >= self.interval:
            self._drawn = now
            self._draw(now)

    def close(self) -> None:
        now = time.monotonic()
        self._draw(now)
        elapsed = max(now - self._start, 1e-9)
        self.stream.write(
            f"\n{self.label}: {self.count:,} messages, {self.bars:,} bars in {elapsed:.2f} s: "
            f"{self.count / elapsed:,.0f} msg/s, {self.bars / elapsed:,.0f} bars/s\n"
        )
        self.stream.flush()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self._start
        return self.count / elapsed if elapsed > 0 else 0.0

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.count / elapsed
        if self.total:
            done = min(self.count / self.total, 1.0)
            bar = "#" * int(done * 30)
            text = f"{self.label} [{bar:<30}] {self.count:,}/{self.total:,} {done:4.0%} {rate:,.0f} msg/s"
        else:
            text = f"{self.label} {self.count:,} {rate:,.0f} msg/s"
        self.stream.write("\r" + text)
        self.stream.flush()
