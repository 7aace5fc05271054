"""Replay across the change to trading on history: a session recorded before `signal.trade_backfilled`
existed (its signal core traded on backfilled bars) still verifies byte for byte; sessions recorded
since state the key, so each replays the way it ran."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from tests.support.backfill import new_symbol_then_outage
from ticktape import config as cfg
from ticktape import subjects
from ticktape.cli.main import main
from ticktape.corespec import load_specs
from ticktape.events import BarClosed, Event, OrderFilled, SignalGenerated
from ticktape.replay.fileformat import SessionFile
from ticktape.replay.records import Record, SessionMeta
from ticktape.replay.simulate import simulate_session
from ticktape.replay.verify import Verifier
from ticktape.replay.whatif import merge_config
from ticktape.sessions import effective_config

# Recorded by the code before this change (commit 4cfa0e4; see make_pre_backfill_guard.py there).
OLD = Path(__file__).parents[1] / "fixtures" / "sessions" / "pre-backfill-guard.ttsession.gz"


def read(path: Path) -> tuple[SessionMeta, list[Record]]:
    with SessionFile(path) as f:
        return f.session, list(f.records())


def verify(meta: SessionMeta, records: list[Record]):
    verifier = Verifier(load_specs(meta.config_doc(), names=meta.services or None), meta)
    for rec in records:
        verifier.feed(rec)
    return verifier.finish()


def decoded(records: list[Record]) -> list[Event]:
    return [subjects.decode_on(r.subject, r.data) for r in records]


def history_signals(events: list[Event]) -> list[SignalGenerated]:
    bars = {e.event_id: e for e in events if isinstance(e, BarClosed)}
    return [e for e in events if isinstance(e, SignalGenerated) and bars[e.causation_id or ""].backfilled]


@pytest.fixture(scope="module")
def old() -> tuple[SessionMeta, list[Record]]:
    return read(OLD)


def test_the_old_recording_traded_on_history_and_states_no_trade_backfilled(old):
    meta, records = old
    events = decoded(records)
    assert json.loads(meta.config) == {} and meta.services == ("signal", "risk", "execution")
    assert len(history_signals(events)) >= 10  # the new symbol's history and the outage's repair
    assert sum(isinstance(e, OrderFilled) for e in events) >= 5


def test_a_recording_made_before_the_key_existed_still_verifies_byte_for_byte(old):
    result = verify(*old)
    assert result.ok, result.divergences[:1]
    assert {f.family: f.recorded_count for f in result.families}["signals"] == 18
    assert main(["replay", str(OLD), "--verify"]) == 0  # the CLI reads the file the same way


def test_read_with_todays_default_the_old_recording_would_not_verify(old):
    """The proof above is not vacuous: the recorded config is what keeps the old behaviour."""
    meta, records = old
    today = msgspec.structs.replace(meta, config=json.dumps({"signal": {"trade_backfilled": False}}))
    result = verify(today, records)
    assert not result.ok and result.divergences[0].core == "signal"


def test_a_recorded_config_without_the_key_is_read_as_the_old_code_ran_it():
    assert cfg.recorded_as_run({})["signal"] == {"trade_backfilled": True, "event_version": 1}
    five = cfg.recorded_as_run({"signal": {"timeframe": "5m"}})["signal"]
    assert five == {"timeframe": "5m", "trade_backfilled": True, "event_version": 1}
    stated = {"trade_backfilled": False, "event_version": 2}
    assert cfg.recorded_as_run({"signal": stated})["signal"] == stated
    assert cfg.recorded_as_run({"signal": "oops"})["signal"] == "oops"  # left for the decoder to name
    meta = msgspec.structs.replace(read(OLD)[0], config="{}")
    assert meta.config_doc()["signal"]["trade_backfilled"] is True


def test_a_new_recording_states_the_key_so_its_replay_keeps_todays_behaviour():
    text, _ = effective_config({"signal": {"timeframe": "1m"}})
    assert json.loads(text)["signal"] == {"timeframe": "1m", "trade_backfilled": False, "event_version": 2}
    assert json.loads(effective_config({})[0])["signal"] == {"trade_backfilled": False, "event_version": 2}
    kept, _ = effective_config({"signal": {"trade_backfilled": True}})
    assert json.loads(kept)["signal"] == {"trade_backfilled": True, "event_version": 2}
    for doc in ({}, {"signal": {"trade_backfilled": True}}, {"risk": {"accounts": []}}):
        stated = json.loads(effective_config(doc)[0])
        assert cfg.recorded_as_run(stated) == stated == cfg.state_defaults(stated)


def test_a_new_session_with_history_verifies_and_signals_only_on_live_bars():
    meta, records = simulate_session(new_symbol_then_outage("BTCUSDT"), {}, "20250101T000000Z-4e4e4e")
    events = decoded(records)
    assert any(isinstance(e, BarClosed) and e.backfilled for e in events)
    assert history_signals(events) == [] and any(isinstance(e, SignalGenerated) for e in events)
    result = verify(meta, records)
    assert result.ok, result.divergences[:1]


def test_a_what_if_of_an_old_session_keeps_its_signal_section_unless_it_names_one(old):
    meta, _ = old
    kept = merge_config(meta.config_doc(), {"risk": {}})
    assert kept["signal"]["trade_backfilled"] is True
    assert "trade_backfilled" not in merge_config(meta.config_doc(), {"signal": {"timeframe": "1m"}})["signal"]
