"""Verifying a recording: per core, its recorded inputs in stream order must reproduce its
recorded outputs byte for byte; divergences are found and named."""

from __future__ import annotations

import json

import msgspec
import pytest

from tests.support.bars import wave_bars
from ticktape.corespec import load_specs
from ticktape.replay.records import Record, SessionMeta
from ticktape.replay.simulate import simulate_session
from ticktape.replay.verify import FAMILIES, Verifier
from ticktape.sessions import UNDRAINED, effective_config

OTHER = {
    "signal": {"strategies": [{"kind": "ema_cross", "name": "fast5", "fast": 5, "slow": 21}]},
    "risk": {"accounts": [{"name": "paper-main", "strategies": ["*"]}]},
}


def bars(n: int = 240):
    both = wave_bars("BTCUSDT", n) + wave_bars("ETHUSDT", n, period=30)
    return sorted(both, key=lambda b: (b.open_time, b.symbol))


def verify(meta: SessionMeta, records: list[Record]):
    verifier = Verifier(load_specs(meta.config_doc(), names=meta.services or None), meta)
    for rec in records:
        if meta.stop_seq is None or rec.seq <= meta.stop_seq:
            verifier.feed(rec)
    return verifier.finish()


@pytest.fixture(scope="module")
def recorded():
    return simulate_session(bars(), {}, "s1")


def with_data(rec: Record, data: bytes) -> Record:
    return msgspec.structs.replace(rec, data=data)


def test_an_untouched_recording_verifies_with_equal_digests_per_family(recorded):
    result = verify(*recorded)
    assert result.ok, result.divergences[:1]
    assert [f.family for f in result.families] == list(FAMILIES)
    assert all(f.recorded_count > 0 and f.recorded == f.replayed for f in result.families)
    assert result.cores == ("signal", "risk", "execution") and not result.unconfirmed


def test_a_recorded_fill_that_differs_is_the_divergence_with_both_versions(recorded):
    meta, records = recorded
    i = next(i for i, r in enumerate(records) if r.subject.startswith("fills."))
    doc = json.loads(records[i].data)
    doc["price"] += 1.0
    altered = records[:i] + [with_data(records[i], json.dumps(doc, separators=(",", ":")).encode())] + records[i + 1 :]
    result = verify(meta, altered)
    assert not result.ok
    first = result.divergences[0]
    assert first.core == "execution" and first.recorded_seq == records[i].seq
    assert first.replayed == records[i].data and first.recorded != first.replayed
    assert next(f for f in result.families if f.family == "fills").ok is False


def test_an_output_missing_from_the_recording_is_found(recorded):
    meta, records = recorded
    i = next(i for i, r in enumerate(records) if r.subject.startswith("accounts."))
    result = verify(meta, records[:i] + records[i + 1 :])
    assert not result.ok and result.divergences[0].core == "execution"
    assert result.divergences[0].replayed == records[i].data


def test_an_event_live_published_but_replay_never_produces_is_found(recorded):
    meta, records = recorded
    i = next(i for i, r in enumerate(records) if r.subject.startswith("signals."))
    doc = json.loads(records[i].data)
    doc["event_id"] = "f" * 32
    extra = with_data(records[i], json.dumps(doc, separators=(",", ":")).encode())
    result = verify(meta, records[: i + 1] + [extra] + records[i + 1 :])
    assert not result.ok and result.divergences[0].core == "signal"


def _tail_cut(meta: SessionMeta, records: list[Record]) -> list[Record]:
    """The recording as if the last bar's outputs had not been processed when the session stopped."""
    last_bar = max(
        i
        for i, r in enumerate(records)
        if r.subject.startswith("md.bar.") and not records[i + 1].subject.startswith(("md.", "sessions."))
    )
    return records[: last_bar + 1] + [records[-1]]


def test_an_undrained_session_reports_outputs_of_unprocessed_input_as_unconfirmed(recorded):
    meta, records = recorded
    result = verify(msgspec.structs.replace(meta, reason=UNDRAINED), _tail_cut(meta, records))
    assert result.ok and result.unconfirmed


def test_a_cleanly_stopped_session_must_have_published_everything(recorded):
    meta, records = recorded
    result = verify(meta, _tail_cut(meta, records))
    assert not result.ok
    assert "did not publish" in result.divergences[0].reason


def test_only_the_cores_the_session_ran_are_verified(recorded):
    meta, records = recorded
    result = verify(msgspec.structs.replace(meta, services=("market_data", "signal")), records)
    assert result.ok and result.cores == ("signal",)
    assert [f.family for f in result.families] == ["signals"]


def test_a_session_after_a_config_change_verifies_on_top_of_the_earlier_sessions_outputs():
    all_bars = bars(300)
    first = simulate_session(all_bars[:300], {}, "s1")
    meta2, second = simulate_session(all_bars[300:], OTHER, "s2", history=first[1])
    records = first[1] + second
    assert any(r.subject.startswith("signals.fast5.") for r in second)
    assert verify(meta2, records).ok
    assert verify(first[0], records).ok
    wrong = msgspec.structs.replace(meta2, config=effective_config({})[0])
    assert not verify(wrong, records).ok


def forged_session(n_bars: int = 240) -> tuple[SessionMeta, list[Record], str]:
    """A session in which someone published a signal no strategy made (a copy of a genuine one
    with another id, one bar later): the cores downstream took it as input, as they would live."""
    from ticktape import subjects
    from ticktape.events import SignalGenerated

    all_bars = bars(n_bars)
    _, clean = simulate_session(all_bars, {}, "s0")
    genuine = next(
        e for r in clean if r.subject.startswith("signals.") for e in [subjects.decode_on(r.subject, r.data)]
    )
    assert isinstance(genuine, SignalGenerated)
    forged = msgspec.structs.replace(genuine, event_id="f" * 32)
    at = next(i for i, b in enumerate(all_bars) if b.event_id == genuine.causation_id) + 2
    meta, records = simulate_session([*all_bars[:at], forged, *all_bars[at:]], {}, "s1")
    return meta, records, forged.event_id


def test_a_forged_signal_injected_into_the_session_is_named_foreign_not_a_mismatch():
    meta, records, forged_id = forged_session()
    forged = next(r for r in records if forged_id.encode() in r.data and r.subject.startswith("signals."))
    result = verify(meta, records)
    assert not result.ok
    assert [d.kind for d in result.divergences] == ["foreign"]  # everything the cores made still replays
    (d,) = result.foreign
    assert (d.core, d.event_id, d.recorded_seq, d.recorded_subject, d.type) == (
        "signal",
        forged_id,
        forged.seq,
        forged.subject,
        "signal.generated",
    )
    assert d.reason == f"foreign: event {forged_id} on {forged.subject} was not produced by any core (injected?)"
    assert next(f for f in result.families if f.family == "signals").ok is False


def test_a_genuine_output_published_twice_is_foreign_the_second_time(recorded):
    meta, records = recorded
    i = next(i for i, r in enumerate(records) if r.subject.startswith("positions."))
    result = verify(meta, records[: i + 1] + [records[i]] + records[i + 1 :])
    assert [(d.kind, d.core) for d in result.divergences] == [("foreign", "execution")]


def test_a_core_producing_other_bytes_is_a_mismatch_not_foreign(recorded):
    meta, records = recorded
    i = next(i for i, r in enumerate(records) if r.subject.startswith("fills."))
    doc = json.loads(records[i].data)
    doc["price"] += 1.0
    altered = records[:i] + [with_data(records[i], json.dumps(doc, separators=(",", ":")).encode())] + records[i + 1 :]
    result = verify(meta, altered)
    assert result.divergences[0].kind == "mismatch" and not result.foreign


def test_a_session_without_a_core_to_replay_does_not_verify(recorded):
    """Nothing replayed is nothing proven: a session that ran no core, or whose cores this build
    does not have, fails instead of "verifying"."""
    meta, records = recorded
    producers_only = msgspec.structs.replace(meta, services=("market_data", "symbol_registry"))
    result = verify(producers_only, records)
    assert not result.ok and result.cores == ()
    assert any("no core to replay" in p for p in result.problems)
    renamed = msgspec.structs.replace(meta, services=(*meta.services, "old_signal"))
    result = verify(renamed, records)
    assert not result.ok and any("'old_signal'" in p for p in result.problems)
    assert result.cores == ("signal", "risk", "execution") and not result.divergences  # the rest still ran
