"""The batched evaluation of the built-in kinds (services/signal/batched.py) writes the bytes the
per-strategy path writes: the same configuration run by the core as loaded (its built-in entries
in lanes) and with every kind subclassed (which batched.py leaves to on_bar), over real 1m and 1h
bars of two symbols, live and backfilled, compared output for output; and a core restored from a
snapshot taken mid-way continues with the same bytes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from services.signal import batched, loading
from services.signal.config import SignalConfig
from services.signal.core import SignalCore
from services.signal.strategies import BUILTINS
from tests.support import real_bars
from ticktape import config as cfg
from ticktape.events import BarClosed, SignalGenerated
from ticktape.events.codec import decode, encode

MIX: list[dict[str, Any]] = [
    {"kind": "ema_cross", "name": "ema_3_8", "params": {"fast": 3, "slow": 8}},
    {"kind": "ema_cross", "name": "ema_5_13_long", "params": {"fast": 5, "slow": 13, "allow_short": False}},
    {"kind": "ensemble", "name": "ens"},
    {
        "kind": "ensemble",
        "name": "ens3",
        "params": {"heads": [{"fast": 3, "slow": 8}, {"fast": 4, "slow": 9}, {"fast": 8, "slow": 21}], "k": 2},
    },
    {"kind": "rsi_reversion", "name": "rsi14"},
    {
        "kind": "rsi_reversion",
        "name": "rsi7",
        "params": {"period": 7, "oversold": 35.0, "overbought": 65.0, "allow_short": False},
    },
    {"kind": "rsi_reversion", "name": "rsi7b", "params": {"period": 7, "exit": 40.0}},
    # not batched: rotating, and on two timeframes; their outputs go in between the lanes'
    {"kind": "ema_cross", "name": "ema_rot", "params": {"fast": 4, "slow": 10}, "rotate_every": 2},
    {"kind": "macd", "name": "macd"},
    {"kind": "macd", "name": "macd_fast", "params": {"fast": 3, "slow": 10, "signal": 4, "allow_short": False}},
    {"kind": "bollinger_breakout", "name": "bb20"},
    {"kind": "bollinger_breakout", "name": "bb20w", "params": {"width": 1.0}},
    {"kind": "bollinger_breakout", "name": "bb7", "params": {"period": 7, "width": 1.5, "allow_short": False}},
    {"kind": "bollinger_breakout", "name": "bb_1h", "params": {"timeframe": "1h"}},  # never runs on 1m
    {"kind": "ema_cross", "name": "ema_two_tf", "subscribe": [{"timeframes": ["1m", "1h"]}]},
    {"kind": "donchian_breakout", "name": "don20"},
    {"kind": "donchian_breakout", "name": "don20_10", "params": {"exit_period": 10, "allow_short": False}},
    {"kind": "donchian_breakout", "name": "don5_1", "params": {"period": 5, "exit_period": 1}},
    {"kind": "mtf_trend", "name": "mtf", "params": {"trend_period": 3, "entry_period": 20}},
    {"kind": "mtf_trend", "name": "mtf_b", "params": {"trend_period": 5, "entry_period": 7, "allow_short": False}},
    {
        "kind": "consensus",
        "name": "cons",
        "params": {"k": 2, "members": [{"kind": "macd"}, {"kind": "rsi_reversion"}, {"kind": "bollinger_breakout"}]},
    },
    {
        "kind": "consensus",
        "name": "cons_short",
        "params": {
            "k": 3,
            "allow_short": False,
            "members": [
                {"kind": "donchian_breakout", "params": {"period": 10}},
                {"kind": "ema_cross", "params": {"fast": 3, "slow": 8}},
                {"kind": "mtf_trend", "params": {"trend_period": 2}},
                {"kind": "ensemble", "name": "e"},
            ],
        },
    },
]
# every entry runs in a lane but these
PER_STRATEGY = {"ema_rot", "ema_two_tf"}


def config(**extra: Any) -> SignalConfig:
    return cfg.load_section("signal", SignalConfig, {"signal": {"strategies": MIX, **extra}})


def per_strategy(conf: SignalConfig) -> SignalCore:
    """The same configuration with every built-in kind subclassed: on_bar per entry."""
    return SignalCore(conf, kinds={kind: type(k.__name__, (k,), {}) for kind, k in BUILTINS.items()})


@pytest.fixture(scope="module")
def stream() -> list[BarClosed]:
    minutes = real_bars.freqtrade_unittest_btc()[:1500]
    a = real_bars.interleave(minutes, real_bars.resample_hours(minutes), "AAA")
    lean = real_bars.lean_btcbusd()
    b = real_bars.interleave(lean, real_bars.resample_hours(lean), "BBB")
    # two symbols on their own timelines, one stream; the first 200 bars of each backfilled
    out = [msgspec.structs.replace(bar, backfilled=True) if i < 200 else bar for i, bar in enumerate(a)]
    out += [msgspec.structs.replace(bar, backfilled=True) if i < 200 else bar for i, bar in enumerate(b)]
    return out


def outputs(core: SignalCore, bars: list[BarClosed]) -> list[bytes]:
    return [encode(e) for bar in bars for e in core.handle(bar)]


@pytest.mark.parametrize("extra", [{}, {"trade_backfilled": True}])
def test_batched_core_when_run_on_real_bars_then_emits_the_per_strategy_bytes(
    stream: list[BarClosed], extra: dict[str, Any]
) -> None:
    conf = config(**extra)
    core = loading.core(conf)
    fast = outputs(core, stream)
    assert fast == outputs(per_strategy(conf), stream)
    in_lanes = {run.name for lanes in core._lanes.values() for lane in lanes for run in lane.runs}
    assert in_lanes == {e["name"] for e in MIX} - PER_STRATEGY
    signalled = {e.strategy for e in map(decode, fast) if isinstance(e, SignalGenerated)}
    assert signalled >= {"ema_3_8", "rsi14", "macd", "bb20", "don20", "mtf", "cons", "ens", "ema_rot"}


def test_batched_core_when_restored_from_a_snapshot_then_continues_with_the_same_bytes(
    stream: list[BarClosed],
) -> None:
    conf = config()
    whole = outputs(loading.core(conf), stream)
    first = loading.core(conf)
    half = len(stream) // 2 + 37
    head = outputs(first, stream[:half])
    restored = loading.core(conf)
    restored.restore(first.snapshot())
    assert head + outputs(restored, stream[half:]) == whole


def test_batchable_when_a_kind_is_a_subclass_or_a_consensus_of_one_then_not() -> None:
    conf = config()
    plain = per_strategy(conf)
    assert not any(batched.batchable(s) for s in plain.strategies)
    assert all(batched.batchable(s) for s in loading.core(conf).strategies)


def test_batched_only_when_enough_entries_share_the_work() -> None:
    """A few entries run on the per-strategy path (numpy's per-call cost exceeds what batching
    shares); from batched.MIN_ENTRIES batchable entries on, they run in lanes."""
    one = cfg.load_section("signal", SignalConfig, {"signal": {"strategies": [MIX[0]]}})
    assert not any(run.batched for run in loading.core(one)._runs)
    many = [{**MIX[0], "name": f"ema_{i}"} for i in range(batched.MIN_ENTRIES)]
    enough = cfg.load_section("signal", SignalConfig, {"signal": {"strategies": many}})
    assert all(run.batched for run in loading.core(enough)._runs)
