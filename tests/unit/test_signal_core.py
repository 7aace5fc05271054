"""The signal core with the built-in kinds: warm-up, side changes, votes, redeliveries,
quarantine, determinism. (The plug-in API itself: test_signal_plugins.py.)"""

from __future__ import annotations

import math
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.signal.config import EmaCrossConfig, EnsembleConfig, SignalConfig, StrategyEntry
from services.signal.core import FILTER_SUBJECTS, SignalCore, filter_subjects
from services.signal.ema import Ema
from services.signal.strategies import BUILTINS
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS
from ticktape.errors import InvalidInput
from ticktape.events import BarClosed, Event, SignalGenerated, StrategyQuarantined
from ticktape.strategy import Context, Strategy, Target

T0 = 1_700_000_000 * 1_000_000_000


def bar(i: int, close: float, *, symbol: str = "BTCUSDT", timeframe: str = "1m") -> BarClosed:
    open_time = T0 + i * MINUTE_NS
    close_time = open_time + MINUTE_NS - NS_PER_MS
    return BarClosed(
        event_id=ids.bar_id("binance", symbol, timeframe, open_time),
        ts_event=close_time,
        ts_init=close_time + 5,
        venue="binance",
        symbol=symbol,
        timeframe=timeframe,
        open_time=open_time,
        close_time=close_time,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
        quote_volume=close,
    )


def feed(core: SignalCore, closes: list[float], start: int = 0, **kw: str) -> list[Event]:
    out: list[Event] = []
    for i, c in enumerate(closes, start):
        out.extend(core.handle(bar(i, c, **kw)))
    return out


def cross_core(fast: int = 2, slow: int = 4, **kw: bool) -> SignalCore:
    cfg = SignalConfig(strategies=(EmaCrossConfig(name="x", fast=fast, slow=slow, **kw),))
    return SignalCore(cfg)


RISING = [100.0 + i for i in range(10)]
FALLING = [100.0 - i for i in range(10)]


def test_ema_cross_during_warm_up_then_no_signal() -> None:
    core = cross_core(fast=2, slow=4)
    assert feed(core, RISING[:3]) == []
    (sig,) = core.handle(bar(3, RISING[3]))
    assert isinstance(sig, SignalGenerated)
    d = sig.diagnostics
    assert (sig.side, sig.previous_side, d["agree"], d["k"], d["n"]) == ("long", "flat", 1, 1, 1)
    assert (sig.version, sig.target) == (2, 1.0)


def test_ema_cross_when_side_unchanged_then_emits_nothing_more() -> None:
    core = cross_core()
    out = feed(core, RISING)
    assert [s.side for s in out] == ["long"]  # type: ignore[union-attr]


def test_ema_cross_when_trend_reverses_then_emits_short_with_previous_side() -> None:
    core = cross_core()
    out = feed(core, RISING + [RISING[-1] - 3 * i for i in range(1, 6)])
    assert [(s.previous_side, s.side) for s in out] == [  # type: ignore[union-attr]
        ("flat", "long"),
        ("long", "short"),
    ]


def test_ema_cross_when_short_not_allowed_then_goes_flat() -> None:
    core = cross_core(allow_short=False)
    out = feed(core, RISING + [RISING[-1] - 3 * i for i in range(1, 6)])
    assert [s.side for s in out] == ["long", "flat"]  # type: ignore[union-attr]
    assert out[-1].diagnostics["agree"] == 1  # type: ignore[union-attr]
    assert [s.target for s in out] == [1.0, 0.0]  # type: ignore[union-attr]


def test_ema_cross_when_warm_and_flat_then_first_signal_waits_for_a_side() -> None:
    core = cross_core()
    assert feed(core, [100.0] * 8) == []  # fast == slow: vote 0, side flat == initial flat


def test_signal_when_emitted_then_carries_votes_and_inputs() -> None:
    core = cross_core(fast=2, slow=4)
    closes = RISING[:4]
    (sig,) = feed(core, closes)
    fast, slow = Ema(2), Ema(4)
    for c in closes:
        f, s = fast.update(c), slow.update(c)
    (vote,) = sig.diagnostics["votes"]  # type: ignore[union-attr]
    assert vote == {"head": "ema_2_4", "fast": 2, "slow": 4, "fast_ema": f, "slow_ema": s, "vote": 1}
    assert sig.price == closes[-1]  # type: ignore[union-attr]


def test_signal_envelope_when_emitted_then_derived_from_the_bar() -> None:
    core = cross_core()
    out = feed(core, RISING[:4])
    b = bar(3, RISING[3])
    (sig,) = out
    assert sig.event_id == ids.child_id(b.event_id, "signal.x", 0)
    assert sig.causation_id == b.event_id
    assert sig.correlation_id == b.event_id
    assert (sig.ts_event, sig.ts_init) == (b.close_time, b.ts_init)
    assert (sig.bar_open_time, sig.timeframe) == (b.open_time, "1m")  # type: ignore[union-attr]


# Falls for 8 bars, then two rises: the two fast heads turn up, the slowest still points down.
K_OF_N_PATH = [100.0 - i for i in range(8)] + [95.0, 98.0]
HEADS = ((2, 4), (3, 6), (4, 8))


def agree(sig: Event) -> int:
    assert isinstance(sig, SignalGenerated)
    return int(sig.diagnostics["agree"])


def test_ensemble_when_k_heads_agree_then_emits_long() -> None:
    core = SignalCore(SignalConfig(strategies=(EnsembleConfig(name="e", heads=HEADS, k=2),)))
    out = feed(core, K_OF_N_PATH)
    assert [(s.side, agree(s)) for s in out] == [("short", 3), ("long", 2)]  # type: ignore[union-attr]
    votes = out[-1].diagnostics["votes"]  # type: ignore[union-attr]
    assert [v["vote"] for v in votes] == [1, 1, -1]
    assert [v["head"] for v in votes] == ["ema_2_4", "ema_3_6", "ema_4_8"]


def test_ensemble_when_fewer_than_k_heads_agree_then_stays_on_previous_side() -> None:
    core = SignalCore(SignalConfig(strategies=(EnsembleConfig(name="e", heads=HEADS, k=3),)))
    out = feed(core, K_OF_N_PATH)
    # 2 up, 1 down with k = 3: flat, agree = max(2, 1)
    assert [(s.previous_side, s.side, agree(s)) for s in out] == [  # type: ignore[union-attr]
        ("flat", "short", 3),
        ("short", "flat", 2),
    ]


@settings(max_examples=50, deadline=None)
@given(steps=st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=1, max_size=120))
def test_ensemble_when_signal_emitted_then_side_follows_votes(steps: list[float]) -> None:
    closes = [100.0]
    for s in steps:
        closes.append(closes[-1] * (1 + s))
    core = SignalCore(SignalConfig(strategies=(EnsembleConfig(name="e", heads=HEADS, k=2),)))
    previous = "flat"
    for sig in feed(core, closes):
        assert isinstance(sig, SignalGenerated)
        ups = sum(v["vote"] == 1 for v in sig.diagnostics["votes"])
        downs = sum(v["vote"] == -1 for v in sig.diagnostics["votes"])
        expected = "long" if ups >= 2 else "short" if downs >= 2 else "flat"
        assert sig.side == expected != sig.previous_side == previous
        previous = sig.side


def test_signal_when_bar_redelivered_then_same_outputs_and_state_applied_once() -> None:
    clean, noisy = cross_core(), cross_core()
    expected = feed(clean, RISING + FALLING)
    got: list[Event] = []
    for i, c in enumerate(RISING + FALLING):
        first = noisy.handle(bar(i, c))
        got.extend(first)
        assert noisy.handle(bar(i, c)) == first
    assert got == expected
    assert len(got) == 2


def test_signal_when_redelivery_older_than_memory_then_ignored_not_reapplied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.signal.core.REMEMBERED", 2)
    core = cross_core()
    (sig,) = feed(core, RISING[:4])
    assert core.handle(bar(3, RISING[3])) == [sig]
    feed(core, RISING[4:7], start=4)
    assert core.handle(bar(3, RISING[3])) == []  # forgotten, and too old to apply


def test_signal_when_bar_late_or_out_of_order_then_ignored() -> None:
    clean, noisy = cross_core(), cross_core()
    expected = feed(clean, RISING + FALLING)
    got: list[Event] = []
    for i, c in enumerate(RISING + FALLING):
        got.extend(noisy.handle(bar(i, c)))
        if i > 0:  # a different bar event for an open time already passed, e.g. a bad backfill
            late = msgspec.structs.replace(bar(i - 1, 1e9), event_id=f"late-{i}")
            assert noisy.handle(late) == []
    assert got == expected


def test_signal_when_other_timeframe_then_ignored() -> None:
    core = cross_core()
    assert feed(core, RISING, timeframe="5m") == []
    assert feed(core, RISING[:4])  # the 1m state was untouched


def test_signal_when_symbols_interleave_then_state_is_per_symbol() -> None:
    core = cross_core()
    out: list[Event] = []
    for i in range(10):
        out += core.handle(bar(i, RISING[i], symbol="BTCUSDT"))
        out += core.handle(bar(i, FALLING[i], symbol="ETHUSDT"))
    assert [(s.symbol, s.side) for s in out] == [  # type: ignore[union-attr]
        ("BTCUSDT", "long"),
        ("ETHUSDT", "short"),
    ]


class Exploding(Strategy):
    """A strategy with a bug: raises on its third bar."""

    def __init__(self, params: object, *, name: str) -> None:
        super().__init__(params, name=name)
        self.calls = 0

    def on_bar(self, ctx: Context) -> Target | None:
        self.calls += 1
        if self.calls == 3:
            raise ZeroDivisionError("division by zero")
        return None


@pytest.mark.parametrize("version", [1, 2])
def test_signal_when_strategy_raises_then_quarantined_and_others_keep_running(version: int) -> None:
    entries = (StrategyEntry(kind="exploding"), EmaCrossConfig(name="x", fast=2, slow=4))
    core = SignalCore(SignalConfig(strategies=entries, event_version=2), kinds={**BUILTINS, "exploding": Exploding})
    if version == 1:  # version 1 runs the built-ins only; quarantining one is silent (as before #10)
        entries = (EmaCrossConfig(name="x", fast=2, slow=4), EnsembleConfig(name="e", heads=HEADS, k=2))
        core = SignalCore(SignalConfig(strategies=entries, event_version=1))
        (run_e,) = [r for r in core._runs if r.name == "e"]
        bad = Exploding(None, name="e")
        run_e.strategy = bad
    else:
        bad = core.strategies[0]  # type: ignore[assignment]
    out = feed(core, RISING + FALLING)
    signals = [e for e in out if isinstance(e, SignalGenerated)]
    assert [e.version for e in signals] == [version] * 2
    assert [msgspec.structs.replace(e, version=2) for e in signals] == feed(cross_core(), RISING + FALLING)
    name = "exploding" if version == 2 else "e"
    assert core.quarantined == {name: "ZeroDivisionError: division by zero"}
    assert core.quarantined_count == 1
    assert isinstance(bad, Exploding) and bad.calls == 3  # never called again
    reports = [e for e in out if isinstance(e, StrategyQuarantined)]
    if version == 1:
        assert reports == []
    else:
        (report,) = reports
        third = bar(2, RISING[2])
        assert (report.strategy, report.kind, report.reason) == ("exploding", "exploding", "raised")
        assert report.error == "ZeroDivisionError: division by zero"
        assert (report.symbol, report.bar_open_time, report.causation_id) == (
            "BTCUSDT",
            third.open_time,
            third.event_id,
        )
        assert report.event_id == ids.child_id(third.event_id, "quarantine.exploding", 0)
        assert out.index(report) == 0


@pytest.mark.parametrize("close", [math.nan, math.inf, 0.0, -1.0, 1e308, 1e-320])
def test_signal_when_bar_is_invalid_then_rejected_as_input_and_no_strategy_quarantined(close) -> None:
    core = SignalCore(SignalConfig())
    with pytest.raises(InvalidInput):
        core.handle(bar(0, close))
    assert core.quarantined == {}
    # the bad bar changed nothing: the same sound bars then give what a fresh core gives
    fresh = SignalCore(SignalConfig())
    assert feed(core, RISING * 5) == feed(fresh, RISING * 5) != []


def test_signal_when_same_bars_fed_twice_then_outputs_are_byte_identical() -> None:
    rng = random.Random(7)
    closes = [100.0]
    for _ in range(600):
        closes.append(closes[-1] * (1 + rng.gauss(0, 0.004)))

    def run() -> list[bytes]:
        return [msgspec.json.encode(e) for e in feed(SignalCore(SignalConfig()), closes)]

    first = run()
    assert len(first) > 5
    assert first == run()


def test_default_config_when_a_few_hundred_bars_then_both_strategies_signal() -> None:
    rng = random.Random(11)
    closes = [100.0]
    for _ in range(300):
        closes.append(closes[-1] * (1 + rng.gauss(0, 0.004)))
    strategies = {s.strategy for s in feed(SignalCore(SignalConfig()), closes)}  # type: ignore[union-attr]
    assert strategies == {"ensemble9", "ema_cross_9_21"}


def test_filter_subjects_when_listed_then_cover_bars() -> None:
    assert FILTER_SUBJECTS == ("md.bar.*.*.*",)
    assert filter_subjects(SignalConfig(timeframe="5m")) == ("md.bar.*.*.5m",)
    assert SignalCore(SignalConfig(timeframe="5m")).filter_subjects == ("md.bar.*.*.5m", "strategies.>")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"strategies": [{"kind": "ema_cross"}, {"kind": "ema_cross"}]}, "strategy names must be unique"),
        ({"strategies": []}, "strategies must not be empty"),
        ({"timeframe": "7m"}, "timeframe must be one of"),
        ({"strategies": [{"kind": "ema_cross", "name": "a.b"}]}, r"\$\.strategies\[0\]\.name"),
        ({"strategies": [{"kind": "a.b"}]}, r"\$\.strategies\[0\]\.kind"),
        ({"strategies": [{"kind": "pkg.mod:Cls"}]}, "name is required for kind 'pkg.mod:Cls'"),
        ({"strategies": [{"kind": "mine", "fast": 3}]}, "only the built-in kinds"),
        ({"strategies": [{"kind": "ema_cross", "fast": 3, "params": {"slow": 8}}]}, "either under params or flat"),
        ({"strategies": [{"kind": "ema_cross", "subscribe": [{"timeframes": ["2m"]}]}]}, "timeframes must be among"),
        ({"event_version": 1, "strategies": [{"kind": "mine"}]}, "event_version 1 runs only the built-in kinds"),
        ({"event_version": 3}, r"\$\.event_version"),
        ({"strategys": []}, "unknown field"),
    ],
)
def test_signal_config_when_invalid_then_error_names_the_key(section: dict, message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(section, SignalConfig)


def test_signal_config_when_section_empty_then_defaults_apply() -> None:
    cfg = msgspec.convert({}, SignalConfig)
    assert cfg == SignalConfig()
    ensemble, cross = cfg.strategies
    assert (ensemble.kind, ensemble.name, ensemble.params) == ("ensemble", "ensemble9", {})
    assert (cross.kind, cross.name, cross.params) == ("ema_cross", "ema_cross_9_21", {})
    assert cfg.event_version == 2
    strategies = SignalCore(cfg).strategies
    assert (len(strategies[0].params.heads), strategies[0].params.k) == (9, 5)  # type: ignore[attr-defined]
    assert (strategies[1].params.fast, strategies[1].params.slow) == (9, 21)  # type: ignore[attr-defined]


def test_signal_config_when_written_flat_then_read_as_params() -> None:
    flat = msgspec.convert({"strategies": [{"kind": "ema_cross", "name": "f", "fast": 3, "slow": 8}]}, SignalConfig)
    nested = msgspec.convert(
        {"strategies": [{"kind": "ema_cross", "name": "f", "params": {"fast": 3, "slow": 8}}]}, SignalConfig
    )
    assert flat == nested and flat.strategies[0].params == {"fast": 3, "slow": 8}
