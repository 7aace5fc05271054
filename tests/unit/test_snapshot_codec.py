"""Snapshots of core state (ticktape.snapshots.codec): deterministic bytes, exact restore, and a
core restored from a snapshot mid-stream produces exactly what an uninterrupted core produces."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field

import pytest

from tests.unit.test_replay_verify import bars
from ticktape import subjects
from ticktape.corespec import load_specs
from ticktape.events.codec import encode
from ticktape.replay.simulate import simulate_session
from ticktape.snapshots import codec
from ticktape.snapshots.codec import BadSnapshot, StateSnapshots, Unsnapshottable


@dataclass
class _Leg:
    qty: float
    tags: set[str] = field(default_factory=set)


class _Core(StateSnapshots):
    def __init__(self) -> None:
        self.config = {"fixed": True}
        self.by_key: dict[tuple[str, str], _Leg] = {}
        self.index: dict[str, _Leg] = {}
        self.window: deque[float] = deque(maxlen=3)
        self.seen: set[str] = set()
        self.frozen = frozenset({"b", "a"})

    def add(self, key: tuple[str, str], qty: float) -> None:
        leg = self.by_key.setdefault(key, _Leg(0.0))
        leg.qty += qty
        leg.tags.add(key[1])
        self.index[key[1]] = leg  # the same object under two keys
        self.window.append(qty)
        self.seen.add(f"{key[0]}:{key[1]}")


def _filled(order: list[tuple[tuple[str, str], float]]) -> _Core:
    core = _Core()
    for key, qty in order:
        core.add(key, qty)
    return core


STEPS = [(("b", "ETH"), 1.5), (("a", "BTC"), -0.0), (("a", "SOL"), math.nan), (("b", "ETH"), 2.0)]


def test_restore_then_the_state_is_equal_shared_objects_stay_shared_and_config_is_the_cores_own():
    before = _filled(STEPS)
    restored = _Core()
    restored.config = {"fixed": "mine"}
    restored.restore(before.snapshot())
    assert restored.snapshot() == before.snapshot()
    assert restored.config == {"fixed": "mine"}  # configuration is not state
    assert restored.index["ETH"] is restored.by_key[("b", "ETH")]
    assert list(restored.by_key) == list(before.by_key)  # insertion order kept
    assert restored.window.maxlen == 3 and len(restored.window) == 3
    assert math.copysign(1, restored.window[0]) == -1  # -0.0 exactly
    assert math.isnan(restored.by_key[("a", "SOL")].qty)


def test_same_state_reached_in_another_set_order_then_the_bytes_are_equal():
    a = _filled(STEPS)
    b = _filled(STEPS)
    b.seen = set(sorted(a.seen, reverse=True))  # same members, another insertion (and maybe iteration) order
    assert a.snapshot() == b.snapshot()
    b.seen.add("x")
    assert a.snapshot() != b.snapshot()


def test_state_that_is_not_plain_data_then_unsnapshottable_naming_where():
    core = _filled(STEPS)
    core.index["ETH"].tags = threading.Lock()  # type: ignore[assignment]
    with pytest.raises(Unsnapshottable, match=r"^_Core\.by_key\[\('b', 'ETH'\)\]\.tags: _thread:lock"):
        core.snapshot()


def test_snapshot_of_another_class_or_garbage_then_bad_snapshot_and_the_core_is_unchanged():
    class Other(StateSnapshots):
        def __init__(self) -> None:
            self.x = 1

    core = _filled(STEPS)
    before = core.snapshot()
    with pytest.raises(BadSnapshot):
        core.restore(Other().snapshot())
    with pytest.raises(BadSnapshot):
        core.restore(b"\xc1 not msgpack")
    assert core.snapshot() == before


@pytest.mark.parametrize("named", ["os:_wrap_close", "antigravity:Nothing", "threading:Lock"])
def test_a_class_that_is_not_plain_data_or_not_loaded_is_never_instantiated(named):
    node = ["O", codec._name(_Core), [["x", ["O", named, []]]]]
    with pytest.raises(BadSnapshot, match=named):
        _Core().restore(codec._encoder.encode(node))


@pytest.fixture(scope="module")
def recorded():
    return simulate_session(bars(), {}, "s1")


@pytest.mark.parametrize("name", ["signal", "risk", "execution"])
def test_snapshot_and_resume_then_outputs_and_state_are_byte_identical_to_an_uninterrupted_run(recorded, name):
    meta, records = recorded

    def fresh():
        return load_specs(meta.config_doc(), names=[name])[0].core

    spec = load_specs(meta.config_doc(), names=[name])[0]
    inputs = [
        subjects.decode_on(r.subject, r.data)
        for r in records
        if any(subjects.matches(f, r.subject) for f in spec.filter_subjects)
    ]
    whole = fresh()
    expected = [encode(o) for e in inputs for o in whole.handle(e)]
    assert len(expected) > 20
    for cut in (1, len(inputs) // 3, len(inputs) - 5):
        first = fresh()
        got = [encode(o) for e in inputs[:cut] for o in first.handle(e)]
        resumed = fresh()
        assert resumed.origin() == fresh().origin()  # same configuration: a snapshot fits
        resumed.restore(first.snapshot())
        got += [encode(o) for e in inputs[cut:] for o in resumed.handle(e)]
        assert got == expected, f"cut at {cut}"
        assert resumed.snapshot() == whole.snapshot()
        # a redelivery of an input handled before the snapshot is answered from the restored memo
        again = inputs[cut - 1]
        assert [encode(o) for o in resumed.handle(again)] == [encode(o) for o in first.handle(again)]


LIBRARY = [
    {"kind": "rsi_reversion", "name": "rsi"},
    {"kind": "bollinger_breakout", "name": "bb"},
    {"kind": "donchian_breakout", "name": "dc", "params": {"period": 20}},
    {"kind": "macd", "name": "macd"},
    {"kind": "mtf_trend", "name": "mtf", "params": {"trend_period": 3}, "subscribe": [{"timeframes": ["1m"]}]},
    {"kind": "tests.support.strategies:Lookback", "name": "lookback", "params": {"period": 10}},
    {
        "kind": "consensus",
        "name": "vote",
        "params": {"k": 2, "members": [{"kind": "macd"}, {"kind": "ema_cross", "params": {"fast": 5, "slow": 30}}]},
    },
]


def test_every_library_strategy_and_a_plug_in_resume_from_a_snapshot_with_identical_signals():
    config = {"signal": {"strategies": LIBRARY}}
    inputs = bars(600)

    def fresh():
        return load_specs(config, names=["signal"])[0].core

    whole = fresh()
    expected = [encode(o) for b in inputs for o in whole.handle(b)]
    assert len(expected) > 20
    first = fresh()
    cut = 450
    got = [encode(o) for b in inputs[:cut] for o in first.handle(b)]
    resumed = fresh()
    resumed.restore(first.snapshot())
    got += [encode(o) for b in inputs[cut:] for o in resumed.handle(b)]
    assert got == expected
    assert resumed.snapshot() == whole.snapshot()


def test_another_configuration_then_another_origin(recorded):
    meta, _ = recorded
    doc = meta.config_doc()
    base = load_specs(doc, names=["risk"])[0].core
    other_doc = {**doc, "risk": {**(doc.get("risk") or {}), "max_drawdown": 0.5}}
    other = load_specs(other_doc, names=["risk"])[0].core
    assert base.origin() != other.origin()
    assert base.snapshot() == other.snapshot()  # same (empty) state: the configuration is not state
