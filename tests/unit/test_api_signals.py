"""The API's signals endpoint and strategy list over strategy-agnostic signals: diagnostics for
every signal, the EMA kinds' k/n/agree/votes kept at the top level (version-1 signals upcast
included), quarantined strategies named with their reason."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from services.api import answers
from services.api import queries as q
from services.api.readmodel import ReadModel
from ticktape.events import SignalGenerated, StrategyQuarantined
from ticktape.events.codec import decode

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"


def sample(name: str) -> SignalGenerated | StrategyQuarantined:
    event = decode((FIXTURES / name).read_bytes().removesuffix(b"\n"))
    assert isinstance(event, SignalGenerated | StrategyQuarantined)
    return event


def answer(model: ReadModel, symbol: str, **query: str) -> dict:
    found = answers.signals(model, symbol, msgspec.convert(query, q.SignalsQuery))
    assert found is not None
    return json.loads(msgspec.json.encode(found))


def test_signals_show_diagnostics_and_keep_votes_for_the_ema_kinds_of_either_version() -> None:
    v1, v2, plugin = (
        sample(n) for n in ("signal.generated.v1.json", "signal.generated.v2.json", "signal.generated.v2-lookback.json")
    )
    assert isinstance(v1, SignalGenerated) and isinstance(v2, SignalGenerated) and isinstance(plugin, SignalGenerated)
    model = ReadModel()
    for seq, event in enumerate((v1, v2, plugin), 1):
        model.apply(event, seq)
    old = answer(model, v1.symbol, venue=v1.venue)["signals"]
    (one,) = old
    raw = json.loads((FIXTURES / "signal.generated.v1.json").read_bytes())
    assert one["version"] == 1 and one["type"] == "signal.generated"
    assert {k: one[k] for k in ("k", "n", "agree", "votes")} == {k: raw[k] for k in ("k", "n", "agree", "votes")}
    assert one["diagnostics"]["votes"] == raw["votes"] and one["target"] == v1.target
    new = {s["strategy"]: s for s in answer(model, v2.symbol, venue=v2.venue)["signals"]}
    assert new.keys() == {"ensemble9", "lb"}
    assert new["ensemble9"]["votes"] == v2.diagnostics["votes"] and new["ensemble9"]["version"] == 2
    assert new["lb"]["diagnostics"] == plugin.diagnostics
    assert not {"k", "n", "agree", "votes"} & new["lb"].keys()  # not an EMA kind: diagnostics only


def test_a_quarantined_strategy_is_listed_with_its_reason() -> None:
    report = sample("signal.strategy.quarantined.v1.json")
    assert isinstance(report, StrategyQuarantined)
    model = ReadModel()
    model.apply(report, 1)
    status = answers.scheduler_status(model, (), (("bad", report.kind), ("ok", "ema_cross")))
    listed = {s.name: s.quarantined for s in status.strategies}
    assert listed == {"bad": f"bad_output: {report.error}", "ok": None}
