"""The replay progress bar counts bars among the messages and ends with the rates."""

from __future__ import annotations

import io

from ticktape.replay.progress import Progress


def test_counts_bars_and_reports_rates_on_close() -> None:
    out = io.StringIO()
    progress = Progress(4, "replay", stream=out)
    for subject in (
        "md.bar.binance_usdm.BTCUSDT.1m",
        "signals.ema.binance_usdm.BTCUSDT",
        "md.bar.x.Y.5m",
        "control.stop",
    ):
        progress.advance(subject=subject)
    progress.close()
    assert (progress.count, progress.bars) == (4, 2)
    final = out.getvalue().rsplit("\n", 2)[-2]
    assert final.startswith("replay: 4 messages, 2 bars in ")
    assert final.endswith(" bars/s")


def test_messages_without_subject_are_not_bars() -> None:
    progress = Progress(None, "what-if", stream=io.StringIO())
    progress.advance(3)
    assert (progress.count, progress.bars) == (3, 0)
