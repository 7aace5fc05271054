"""A strategy that takes 2 ms a bar (it sleeps): the expensive strategy of the auto worker count's
tests, whose measured cost must show (and shrink with its rotation)."""

from __future__ import annotations

import time

from ticktape.strategy import Context, NoParams, Strategy, Target


class Slow(Strategy[NoParams]):
    def on_bar(self, ctx: Context) -> Target | None:
        time.sleep(0.002)
        return None
