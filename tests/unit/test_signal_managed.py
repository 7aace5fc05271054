"""Managed strategies in the signal core: StrategyChanged events add (warmed up from the kept bars,
signalling only on live bars), pause, resume and retire strategies while it runs; a strategy it
cannot run is refused with a StrategyQuarantined naming the key path; the same inputs give the
same outputs."""

from __future__ import annotations

import math
from typing import Any

import pytest

from services.signal.config import EmaCrossConfig, SignalConfig
from services.signal.core import SignalCore
from ticktape import ids, subjects
from ticktape.clock import MINUTE_NS
from ticktape.events import BarClosed, Event, SignalGenerated, StrategyChanged, StrategyQuarantined
from ticktape.events.codec import decode, encode
from ticktape.strategy.history import BarHistory

T0 = 1_700_000_040 * 1_000_000_000 - (1_700_000_040 * 1_000_000_000) % MINUTE_NS
CROSS = {"fast": 3, "slow": 8}


def bar(i: int, *, symbol: str = "BTCUSDT", timeframe: str = "1m", backfilled: bool = False) -> BarClosed:
    """Bar i of a sine wave (period 40), so EMA crossovers happen every half period or so."""
    span = MINUTE_NS if timeframe == "1m" else 60 * MINUTE_NS
    open_time = T0 + i * span
    price = 100.0 + 10.0 * math.sin(2 * math.pi * i / 40) + (3.0 if symbol != "BTCUSDT" else 0.0)
    return BarClosed(
        event_id=ids.bar_id("binance_usdm", symbol, timeframe, open_time),
        ts_event=open_time + span - 1_000_000,
        ts_init=open_time + span,
        venue="binance_usdm",
        symbol=symbol,
        timeframe=timeframe,
        open_time=open_time,
        close_time=open_time + span - 1_000_000,
        open=price,
        high=price + 0.5,
        low=price - 0.5,
        close=price,
        volume=1.0,
        quote_volume=price,
        backfilled=backfilled,
    )


def change(
    name: str, revision: int, status: str = "live", *, kind: str = "ema_cross", params: Any = None, **entry: Any
) -> StrategyChanged:
    action = {"live": "add" if revision == 1 else "resume", "paused": "pause", "retired": "retire"}[status]
    return StrategyChanged(
        event_id=ids.derive("strategy", name, revision),
        ts_event=T0 + revision,
        ts_init=T0 + revision,
        strategy=name,
        revision=revision,
        action=action,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        kind=kind,
        params=CROSS if params is None else params,
        **entry,
    )


def make(**kw: Any) -> SignalCore:
    return SignalCore(SignalConfig(strategies=(EmaCrossConfig(name="configured", fast=3, slow=8),), **kw))


def feed(core: SignalCore, bars: range, **kw: Any) -> list[Event]:
    return [out for i in bars for out in core.handle(bar(i, **kw))]


def of(outputs: list[Event], name: str) -> list[tuple[str, int, float]]:
    return [
        (o.side, o.bar_open_time, o.target) for o in outputs if isinstance(o, SignalGenerated) and o.strategy == name
    ]


def test_added_strategy_warms_up_then_signals_only_on_live_bars_as_if_it_had_always_run() -> None:
    reference = SignalCore(SignalConfig(strategies=(EmaCrossConfig(name="m", fast=3, slow=8),)))
    ref_out = feed(reference, range(0, 130))
    core = make()
    feed(core, range(0, 70))
    assert core.handle(change("m", 1)) == []  # warm-up signals nothing
    out = feed(core, range(70, 130))
    mine = of(out, "m")
    # the first live bar signals the side the warm-up reached (the reference had it already) ...
    side_at_70 = [s for s, t, _ in of(ref_out, "m") if t <= T0 + 70 * MINUTE_NS][-1]
    assert mine[0] == (side_at_70, T0 + 70 * MINUTE_NS, 1.0 if side_at_70 == "long" else -1.0)
    # ... and every later signal is the reference's: the warm-up fed it every kept bar, in order
    assert mine[1:] == [s for s in of(ref_out, "m") if s[1] > T0 + 70 * MINUTE_NS]
    assert len(mine) > 3


def test_added_strategy_without_warm_up_starts_cold() -> None:
    core = make(warmup_bars=0)
    feed(core, range(0, 70))
    core.handle(change("m", 1))
    out = feed(core, range(70, 77))  # ema_cross 3/8 needs 8 bars of its own
    assert of(out, "m") == []


def test_pause_stops_signals_and_resume_signals_the_difference_on_the_next_live_bar() -> None:
    reference = SignalCore(SignalConfig(strategies=(EmaCrossConfig(name="m", fast=3, slow=8),)))
    ref = of(feed(reference, range(0, 160)), "m")
    core = make()
    feed(core, range(0, 30))
    core.handle(change("m", 1))
    before = of(feed(core, range(30, 60)), "m")
    assert before
    assert core.handle(change("m", 2, "paused")) == []
    paused = feed(core, range(60, 100))
    assert of(paused, "m") == [] and of(paused, "configured")  # the others keep signalling
    core.handle(change("m", 3, "live"))
    after = of(feed(core, range(100, 160)), "m")
    side_at_99 = [s for s, t, _ in ref if t <= T0 + 99 * MINUTE_NS][-1]
    last_signalled = before[-1][0]
    if side_at_99 != last_signalled:  # the difference, once, on the first live bar after resume
        assert after[0][:2] == (side_at_99, T0 + 100 * MINUTE_NS)
        after = after[1:]
    assert after == [s for s in ref if s[1] >= T0 + 100 * MINUTE_NS]  # it stayed warm while paused


def test_added_paused_warms_up_and_signals_nothing_until_resumed() -> None:
    core = make()
    feed(core, range(0, 50))
    core.handle(change("m", 1, "paused"))
    assert of(feed(core, range(50, 90)), "m") == []
    core.handle(change("m", 2, "live"))
    assert of(feed(core, range(90, 91)), "m")  # warm: its side at once


def test_retire_stops_it_for_good() -> None:
    core = make()
    feed(core, range(0, 30))
    core.handle(change("m", 1))
    assert of(feed(core, range(30, 60)), "m")
    core.handle(change("m", 2, "retired"))
    assert of(feed(core, range(60, 120)), "m") == []
    core.handle(change("m", 3, "live"))  # nothing brings a retired strategy back
    assert of(feed(core, range(120, 160)), "m") == []


def test_a_revision_applied_already_is_ignored() -> None:
    core = make()
    core.handle(change("m", 1))
    core.handle(change("m", 2, "paused"))
    again = change("m", 1)
    assert core.handle(again.__class__(**{**_fields(again), "event_id": "retried"})) == []
    assert of(feed(core, range(0, 60)), "m") == []  # still paused


def _fields(event: StrategyChanged) -> dict[str, Any]:
    return {f: getattr(event, f) for f in event.__struct_fields__}


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ({"kind": "no_such_kind"}, "kind: unknown strategy kind"),
        ({"params": {"fast": "three"}}, "params.fast: Expected `int`"),
        ({"params": {"fast": 9, "slow": 3}}, "params: fast must be < slow"),
        ({"timeframes": ("4h",)}, "timeframes: ema_cross uses 4h"),
        ({"symbols": ()}, "symbols must not be empty"),
        ({"name": "configured"}, "id: the configuration already runs a strategy named 'configured'"),
    ],
)
def test_a_strategy_the_core_cannot_run_is_refused_naming_the_key_not_crashing(
    entry: dict[str, Any], path: str
) -> None:
    core = make()
    name = entry.pop("name", "bad")
    event = change(name, 1, **entry)
    assert path in (core.refusal(event) or "")  # what the CLI asks first: no state changed
    assert of(feed(core, range(0, 3)), "configured") == []
    (out,) = core.handle(event)
    assert isinstance(out, StrategyQuarantined) and out.strategy == name and out.reason == "invalid"
    assert path in out.error and out.causation_id == event.event_id
    assert subjects.for_event(out) == f"signals.{name}.quarantined"
    assert of(feed(core, range(3, 60)), "configured")  # the configured strategy runs on


def test_history_declared_beyond_warmup_bars_grows_the_windows() -> None:
    core = make(warmup_bars=5)
    feed(core, range(0, 40))
    core.handle(change("d", 1, kind="donchian_breakout", params={"period": 20}))
    out = feed(core, range(40, 120))
    assert of(out, "d")  # it read 20 bars: the windows grew to its history from the add on


def test_managed_timeframes_are_read_and_the_changes_consumed() -> None:
    core = make(managed_timeframes=("1m", "1h"))
    assert core.filter_subjects == ("md.bar.*.*.1m", "md.bar.*.*.1h", "strategies.>")
    for i in range(0, 30):
        core.handle(bar(i, timeframe="1h"))
    core.handle(change("h", 1, timeframes=("1h",), symbols=("BTC*",)))
    out = [o for i in range(30, 70) for o in core.handle(bar(i, timeframe="1h"))]
    assert of(out, "h") and all(o.timeframe == "1h" for o in out if isinstance(o, SignalGenerated))


def test_the_same_inputs_replay_to_the_same_bytes() -> None:
    def run() -> list[bytes]:
        core = make()
        inputs: list[Any] = [bar(i, symbol=s) for i in range(0, 40) for s in ("BTCUSDT", "ETHUSDT")]
        inputs += [change("m", 1, symbols=("ETH*",)), change("bad", 1, params={"fast": 0})]
        inputs += [bar(i, symbol=s) for i in range(40, 80) for s in ("BTCUSDT", "ETHUSDT")]
        inputs += [change("m", 2, "paused")]
        inputs += [bar(i, symbol=s) for i in range(80, 100) for s in ("BTCUSDT", "ETHUSDT")]
        inputs += [change("m", 3, "live")]
        inputs += [bar(i, symbol=s) for i in range(100, 140) for s in ("BTCUSDT", "ETHUSDT")]
        return [encode(o) for event in inputs for o in core.handle(event)]

    first = run()
    assert first == run()
    assert any(b'"strategy":"m"' in b and b"ETHUSDT" in b for b in first)
    assert not any(b'"strategy":"m"' in b and b"BTCUSDT" in b for b in first)  # its selector


def test_bar_history_grow_keeps_what_it_had() -> None:
    history = BarHistory({"1m": 3})
    for i in range(5):
        history.add(bar(i))
    history.grow("1m", 10)
    for i in range(5, 8):
        history.add(bar(i))
    got = history.last("binance_usdm", "BTCUSDT", "1m", 10)
    assert [int((t - T0) // MINUTE_NS) for t in got.open_time] == [2, 3, 4, 5, 6, 7]
    assert history.series("1m") == [("binance_usdm", "BTCUSDT")]


def test_a_session_with_managed_changes_verifies_and_a_what_if_runs_them_too() -> None:
    from tests.support.bars import wave_bars
    from ticktape.corespec import load_specs
    from ticktape.replay.simulate import simulate_session
    from ticktape.replay.verify import Verifier
    from ticktape.replay.whatif import WhatIf

    config = {"accounts": [{"name": "paper-main", "strategies": ["*"]}]}
    market = sorted(wave_bars("BTCUSDT", 200) + wave_bars("ETHUSDT", 200, period=30), key=lambda b: b.open_time)
    t = market[100].ts_init
    add, pause = change("m", 1, symbols=("ETH*",)), change("m", 2, "paused")
    add = add.__class__(**{**_fields(add), "ts_event": t, "ts_init": t})
    inputs: list[Any] = [*market[:100], add, *market[100:160], pause, *market[160:]]
    meta, records = simulate_session(inputs, config, "s1")
    signalled = [decode(r.data) for r in records if r.subject.startswith("signals.m.")]
    assert signalled and all(s.symbol == "ETHUSDT" for s in signalled)  # type: ignore[union-attr]
    assert any(r.subject.startswith("orders.") for r in records)

    verifier = Verifier(load_specs(meta.config_doc(), names=meta.services or None), meta)
    for rec in records:
        verifier.feed(rec)
    result = verifier.finish()
    assert result.ok, result.divergences[:2]

    what_if = WhatIf(meta, config, load_specs(config), code="test")
    produced = [event for rec in records for _, event in what_if.feed(rec)]
    assert [e for e in produced if isinstance(e, SignalGenerated) and e.strategy == "m"] == signalled
