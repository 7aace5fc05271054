"""The signal service as N workers: the partition of the symbols (stable, balanced, NATS's own
hash), the worker layout (durables, children, bus permissions), the configuration's errors, the
auto choice, and replay: N cores over their partitions produce the signals of one core, and a
recording whose partitions' outputs interleave in any order verifies."""

from __future__ import annotations

import collections
import random

import msgspec
import pytest

from services.signal.spec import OUTPUTS
from services.signal.workers import plan
from tests.support.partitioned import VENUE, partitioned_bars
from ticktape import config as cfg
from ticktape import registry, subjects, workers
from ticktape.bus import permissions
from ticktape.config import NatsSettings
from ticktape.corespec import CoreSpec, load_specs
from ticktape.events import BarClosed, SignalGenerated, StrategyChanged, StrategyQuarantined
from ticktape.events.codec import decode, encode
from ticktape.replay.records import Record
from ticktape.replay.simulate import simulate_session
from ticktape.replay.verify import Verifier
from ticktape.supervisor import Supervisor

SIGNAL_ONLY = {"signal": {"workers": 4}}


def test_fnv1a32_when_given_the_reference_vectors_then_matches():
    assert workers.fnv1a32(b"") == 0x811C9DC5
    assert workers.fnv1a32(b"a") == 0xE40C292C
    assert workers.fnv1a32(b"foobar") == 0xBF9CF968


def test_partition_when_computed_again_then_stable_and_equal_to_the_servers():
    # the values nats-server's {{partition(4,1,2)}} gives (tests/integration/test_workers_partition_nats.py)
    assert [workers.partition(4, "binance_usdm", s) for s in ("BTCUSDT", "ADAUSDT", "SOLUSDT", "LTCUSDT")] == [
        0,
        3,
        1,
        2,
    ]
    assert workers.partition(1, "anything", "at_all") == 0


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_partition_when_many_symbols_then_balanced(n):
    symbols = [f"SYM{i}USDT" for i in range(4000)]
    counts = collections.Counter(workers.partition(n, "binance_usdm", s) for s in symbols)
    assert set(counts) == set(range(n))
    assert max(counts.values()) <= 1.25 * len(symbols) / n
    assert min(counts.values()) >= 0.75 * len(symbols) / n


def test_bar_partition_when_any_timeframe_then_the_symbols_and_other_subjects_none():
    found = {workers.bar_partition(f"md.bar.binance_usdm.ADAUSDT.{tf}", 4) for tf in ("1m", "5m", "1h")}
    assert found == {3}
    assert workers.bar_partition("strategies.ema", 4) is None
    assert workers.bar_partition("md.rejected.binance_usdm.ADAUSDT", 4) is None


def test_worker_layout_when_one_or_several_then_durables_and_children_named():
    assert workers.durable("signal", 0, 1) == "signal"
    assert [workers.durable("signal", i, 3) for i in range(3)] == ["signal-p0", "signal-p1", "signal-p2"]
    assert registry.durables(registry.get("signal"), 4) == ("signal-p0", "signal-p1", "signal-p2", "signal-p3")
    assert registry.durables(registry.get("signal")) == ("signal",)
    with pytest.raises(workers.WorkersError, match="worker index 3"):
        workers.durable("signal", 3, 3)
    with pytest.raises(workers.WorkersError, match="1..16"):
        workers.durable("signal", 0, 17)


def test_index_from_env_when_missing_bad_or_out_of_range():
    assert workers.index_from_env(1, {}) == 0
    with pytest.raises(workers.WorkersError, match="4 workers are configured, but TICKTAPE_WORKER"):
        workers.index_from_env(4, {})
    assert workers.index_from_env(4, {workers.ENV: "3"}) == 3
    with pytest.raises(workers.WorkersError, match="TICKTAPE_WORKER must be a worker index"):
        workers.index_from_env(4, {workers.ENV: "x"})
    with pytest.raises(workers.WorkersError, match="not among the 4 workers"):
        workers.index_from_env(4, {workers.ENV: "4"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "signal: workers must be 1..16 or auto (got 0)"),
        (17, "signal: workers must be 1..16 or auto (got 17)"),
        ("many", "signal.workers: Invalid enum value 'many'"),
        (True, "signal.workers: Expected `int | str`, got `bool`"),
    ],
)
def test_config_when_workers_invalid_then_error_names_the_key(value, message):
    with pytest.raises(cfg.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")):
        plan({"signal": {"workers": value}})


def test_config_when_budget_not_positive_then_error_names_the_key():
    with pytest.raises(cfg.ConfigError, match="signal.evaluation_budget_ms"):
        plan({"signal": {"workers": "auto", "evaluation_budget_ms": 0}})


def test_auto_count_when_measured_then_ceil_of_load_over_budget_within_the_cpus():
    ms = 1_000_000
    assert workers.auto_count(symbols=100, evaluation_ns=1 * ms, budget_ns=1000 * ms, cpus=8) == 1
    assert workers.auto_count(symbols=100, evaluation_ns=25 * ms, budget_ns=1000 * ms, cpus=8) == 3
    assert workers.auto_count(symbols=100, evaluation_ns=25 * ms, budget_ns=1000 * ms, cpus=2) == 2
    assert workers.auto_count(symbols=10_000, evaluation_ns=25 * ms, budget_ns=1 * ms, cpus=64) == workers.MAX_WORKERS
    assert workers.auto_count(symbols=0, evaluation_ns=25 * ms, budget_ns=1000 * ms, cpus=8) == 1


def test_plan_when_fixed_or_auto_then_count_and_the_measurement_recorded():
    fixed = plan({"signal": {"workers": 3}})
    assert (fixed.count, fixed.requested, fixed.evaluation_ns) == (3, "3", 0)
    auto = plan({"signal": {"workers": "auto", "evaluation_budget_ms": 0.001}, "symbol_registry": {"top_n": 7}})
    assert auto.requested == "auto" and auto.symbols == 7 and auto.strategies == 2
    assert auto.evaluation_ns > 0 and auto.budget_ns == 1000
    expected = workers.auto_count(auto.symbols, auto.evaluation_ns, auto.budget_ns, auto.cpus)
    assert auto.count == expected and 1 <= auto.count <= auto.cpus


def test_plan_event_when_recorded_then_its_id_derives_from_the_session():
    from ticktape.sessions import started_event

    started = started_event("s1", "{}", code="c", dependencies="", services=["signal"], ts_ns=5)
    one = workers.WorkerPlan(4, "auto", strategies=2, symbols=9, evaluation_ns=10, budget_ns=20, cpus=2)
    event = one.event("signal", started)
    assert event == one.event("signal", started)
    assert (event.workers, event.session_id, event.causation_id, event.ts_event) == (4, "s1", started.event_id, 5)
    assert decode(encode(event)) == event


def test_permissions_when_signal_runs_as_workers_then_every_partition_durable_acks():
    (signal,) = [p for p in permissions.table(NatsSettings()) if p.role == "signal"]
    for i in range(workers.MAX_WORKERS):
        assert f"$JS.ACK.TICKTAPE.signal-p{i}.>" in signal.publish
    assert "$JS.ACK.TICKTAPE.signal.>" in signal.publish
    (risk,) = [p for p in permissions.table(NatsSettings()) if p.role == "risk"]
    assert not any("-p0" in s for s in risk.publish)


def test_supervisor_when_a_service_runs_as_workers_then_one_child_each_with_its_index(tmp_path):
    sup = Supervisor(
        {"BASE": "1"},
        tmp_path,
        ["signal", "risk"],
        extra_env={"signal": {"CREDS": "signal.json"}, "signal-p2": {"PORT": "9"}},
        workers={"signal": 3},
    )
    got = [(c.name, c.service, c.env.get(workers.ENV), c.env.get("CREDS"), c.env.get("PORT")) for c in sup.children]
    assert got == [
        ("signal-p0", "signal", "0", "signal.json", None),
        ("signal-p1", "signal", "1", "signal.json", None),
        ("signal-p2", "signal", "2", "signal.json", "9"),
        ("risk", "risk", None, None, None),
    ]


def _signals_per_symbol(events) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = collections.defaultdict(list)
    for e in events:
        if isinstance(e, SignalGenerated):
            out[e.symbol].append(encode(e))
    return dict(out)


@pytest.fixture(scope="module")
def bars():
    return partitioned_bars(300)


def _run(config, bars):
    (spec,) = load_specs(config, names=["signal"])
    return [out for bar in bars for out in spec.core.handle(bar)]


def test_partitioned_core_when_four_workers_then_the_signals_of_one_byte_for_byte(bars):
    one = _run({"signal": {"workers": 1}}, bars)
    four = _run(SIGNAL_ONLY, bars)
    assert len({s.symbol for s in one}) == 9  # every symbol signals, in all four partitions
    assert {workers.partition(4, VENUE, s.symbol) for s in one} == {0, 1, 2, 3}
    assert _signals_per_symbol(four) == _signals_per_symbol(one)
    assert [encode(e) for e in four] == [encode(e) for e in one]  # same input order, same outputs


def _verify(meta, records):
    verifier = Verifier(load_specs(meta.config_doc(), names=meta.services or None), meta)
    for rec in records:
        verifier.feed(rec)
    return verifier.finish()


def _interleave_partitions(records: list[Record], seed: int) -> list[Record]:
    """The signals moved later by a random number of positions, each partition's kept in order, as
    four workers may publish them: a signal is never recorded before its bar, and a partition's
    never before its previous one."""
    rng = random.Random(seed)
    is_signal = [r.subject.startswith("signals.") for r in records]
    others = [r for r, s in zip(records, is_signal, strict=True) if not s]
    placed: list[tuple[float, int, Record]] = []
    last: dict[int, float] = {}
    position = 0.0
    for r in records:
        if not r.subject.startswith("signals."):
            position += 1
            continue
        lane = workers.lane(decode(r.data), 4)
        at = max(position + rng.random() * 40, last.get(lane, 0.0) + 1e-6)
        last[lane] = at
        placed.append((at, 1, r))
    merged = sorted([(float(i), 0, r) for i, r in enumerate(others, start=1)] + placed, key=lambda t: (t[0], t[1]))
    return [msgspec.structs.replace(r, seq=i + 1) for i, (_, _, r) in enumerate(merged)]


def test_verify_when_four_workers_interleaved_their_signals_then_ok(bars):
    meta, records = simulate_session(bars, SIGNAL_ONLY, "n4")
    meta = msgspec.structs.replace(meta, services=("signal",))
    records = [
        r for r in records if not r.subject.startswith(("risk.", "orders.", "fills.", "positions.", "accounts."))
    ]
    shuffled = _interleave_partitions(records, seed=7)
    assert [r.subject for r in shuffled] != [r.subject for r in records]
    meta = msgspec.structs.replace(meta, stop_seq=shuffled[-1].seq)
    result = _verify(meta, shuffled)
    assert result.ok, result.divergences[:1]
    (fam,) = [f for f in result.families if f.family == "signals"]
    assert fam.recorded_count > 50


def test_verify_when_one_workers_signals_swapped_then_a_mismatch(bars):
    meta, records = simulate_session(bars, SIGNAL_ONLY, "n4")
    meta = msgspec.structs.replace(meta, services=("signal",))
    records = [
        r for r in records if not r.subject.startswith(("risk.", "orders.", "fills.", "positions.", "accounts."))
    ]
    by_lane: dict[int, list[int]] = collections.defaultdict(list)
    for i, r in enumerate(records):
        if r.subject.startswith("signals."):
            by_lane[workers.lane(decode(r.data), 4)].append(i)
    # two signals of one partition caused by one bar (two strategies), swapped: that worker's order broken
    a, b = next((i, j) for lane in by_lane.values() for i, j in zip(lane, lane[1:], strict=False) if j == i + 1)
    swapped = list(records)
    swapped[a], swapped[b] = (
        msgspec.structs.replace(records[b], seq=records[a].seq),
        msgspec.structs.replace(records[a], seq=records[b].seq),
    )
    result = _verify(meta, swapped)
    assert not result.ok
    assert result.divergences[0].kind == "mismatch"


def test_verify_when_one_worker_session_then_still_checked_in_one_order(bars):
    meta, records = simulate_session(bars, {"signal": {"workers": 1}}, "n1")
    meta = msgspec.structs.replace(meta, services=("signal",))
    records = [
        r for r in records if not r.subject.startswith(("risk.", "orders.", "fills.", "positions.", "accounts."))
    ]
    assert _verify(meta, records).ok
    shuffled = _interleave_partitions(records, seed=7)
    assert not _verify(msgspec.structs.replace(meta, stop_seq=shuffled[-1].seq), shuffled).ok


class _EveryWorker:
    """A core that signals each bar, and answers a managed strategy's change with the same event
    in every worker (a refusal, say): each of n workers publishes it, the stream keeps the first."""

    def handle(self, event):
        if isinstance(event, BarClosed):
            return [
                SignalGenerated(
                    event_id=f"sig-{event.event_id}",
                    ts_event=event.close_time,
                    ts_init=event.ts_init,
                    causation_id=event.event_id,
                    strategy="s",
                    venue=event.venue,
                    symbol=event.symbol,
                    timeframe=event.timeframe,
                    side="long",
                    previous_side="flat",
                    price=event.close,
                    bar_open_time=event.open_time,
                    target=1.0,
                )
            ]
        if isinstance(event, StrategyChanged):
            return [
                StrategyQuarantined(
                    event_id=f"refused-{event.event_id}",
                    ts_event=event.ts_event,
                    ts_init=event.ts_init,
                    strategy=event.strategy,
                    kind=event.kind,
                    venue=VENUE,
                    symbol="BTCUSDT",  # partition 0: the lane of worker 0's signals
                    timeframe="1m",
                    bar_open_time=0,
                    reason="invalid",
                    error="no such kind",
                )
            ]
        return []


def test_partitioned_core_when_every_worker_answers_an_input_then_once_in_the_shared_lane(bars):
    core = workers.PartitionedCore([_EveryWorker() for _ in range(4)])
    btc = [b for b in bars if b.symbol == "BTCUSDT"][:2]
    assert workers.partition(4, VENUE, "BTCUSDT") == 0
    change = StrategyChanged(
        event_id="c1", ts_event=1, ts_init=1, strategy="x", revision=1, action="add", status="live", kind="nope"
    )
    (first,) = core.handle(btc[0])
    (refused,) = core.handle(change)
    (second,) = core.handle(btc[1])
    assert [core.lane(first), core.lane(refused), core.lane(second)] == [0, workers.SHARED, 0]
    # live: worker 0 was behind; worker 2 published the refusal before worker 0's first signal
    meta, _ = simulate_session([], {"signal": {"workers": 4}}, "shared")
    log = [btc[0], change, btc[1], refused, first, second]
    records = [
        Record(stream="TICKTAPE", seq=i, subject=subjects.for_event(e), headers={}, time=0, data=encode(e))
        for i, e in enumerate(log, start=1)
    ]
    meta = msgspec.structs.replace(meta, start_seq=1, stop_seq=len(log), services=("signal",))
    spec = CoreSpec("signal", workers.PartitionedCore([_EveryWorker() for _ in range(4)]), (">",), OUTPUTS)
    assert not _verify_with(spec, meta, records).ok  # one order per core: the refusal is out of place
    core = workers.PartitionedCore([_EveryWorker() for _ in range(4)])
    result = _verify_with(CoreSpec("signal", core, (">",), OUTPUTS, lane=core.lane), meta, records)
    assert result.ok, result.divergences[:1]


def _verify_with(spec, meta, records):
    verifier = Verifier([spec], meta)
    for rec in records:
        verifier.feed(rec)
    return verifier.finish()


ROTATING = {
    "strategies": [
        {"kind": "ema_cross", "name": "every_bar"},
        {"kind": "rsi_reversion", "name": "rotating", "rotate_every": 3},
    ]
}


def test_rotation_when_every_three_then_each_symbol_on_one_bar_in_three_and_spread(bars):
    from services.signal import rotation

    keys = {(b.venue, b.symbol) for b in bars}
    slots = collections.Counter(rotation.slot(3, v, s) for v, s in keys)
    assert len(slots) == 3  # nine symbols over three turns
    for venue, symbol in keys:
        due = [rotation.due(3, b) for b in bars if (b.venue, b.symbol) == (venue, symbol)]
        assert sum(due) in (len(due) // 3, len(due) // 3 + 1)
        assert all(due[i] == due[i + 3] for i in range(len(due) - 3))
    assert rotation.due(1, bars[0])


def test_rotation_when_four_workers_then_the_signals_of_one_and_only_on_turns(bars):
    one = _run({"signal": {"workers": 1, **ROTATING}}, bars)
    four = _run({"signal": {"workers": 4, **ROTATING}}, bars)
    assert [encode(e) for e in four] == [encode(e) for e in one]
    from services.signal import rotation

    turns = {b.event_id: rotation.due(3, b) for b in bars}
    rotating = [s for s in one if isinstance(s, SignalGenerated) and s.strategy == "rotating"]
    assert rotating and all(turns[s.causation_id] for s in rotating)
    assert any(not turns[s.causation_id] for s in one if isinstance(s, SignalGenerated))  # the other: every bar


def test_config_when_rotate_every_invalid_then_error_names_the_key():
    with pytest.raises(cfg.ConfigError, match=r"signal.strategies\[0\].rotate_every"):
        plan({"signal": {"strategies": [{"kind": "macd", "rotate_every": 0}]}})


def test_plan_when_a_strategy_rotates_then_its_cost_counts_once_per_turn():
    slow = {"kind": "tests.support.slow_strategy:Slow", "name": "slow"}
    every = plan({"signal": {"workers": "auto", "strategies": [slow]}})
    rotating = plan({"signal": {"workers": "auto", "strategies": [{**slow, "rotate_every": 10}]}})
    assert every.evaluation_ns > 1_000_000  # it takes 2 ms a bar
    assert rotating.evaluation_ns < every.evaluation_ns / 3


def test_status_when_signal_runs_as_workers_then_each_worker_process_is_shown(tmp_path):
    import os

    from ticktape.cli import status

    (tmp_path / "signal-p0.pid").write_text(str(os.getpid()))
    (tmp_path / "signal-p1.pid").write_text("999999999")
    procs = {p.name: p for p in status._processes(tmp_path)}
    assert procs["signal"].pid is None
    assert procs["signal-p0"].alive and not procs["signal-p1"].alive
    assert "signal-p2" not in procs
