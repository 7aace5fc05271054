"""SignalGenerated's versions: bytes of every released version (tests/fixtures/events/) decode,
are upcast, and encode back to the same bytes; version 2 carries target and diagnostics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticktape.events import SignalGenerated, StrategyQuarantined, type_tag
from ticktape.events.codec import CURRENT_VERSION, DecodeError, decode, encode
from ticktape.events.signals import SignalGeneratedV1, Vote

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
SAMPLES = sorted(FIXTURES.glob("*.json"))
NAME = re.compile(r"^(?P<tag>[a-z_.]+)\.v(?P<version>\d+)(-[\w-]+)?\.json$")


def sample(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().removesuffix(b"\n")


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_decodes_and_encodes_back_to_its_bytes(path: Path) -> None:
    data = path.read_bytes().removesuffix(b"\n")
    m = NAME.match(path.name)
    assert m, f"{path.name}: name it <type tag>.v<version>[-variant].json"
    event = decode(data)
    assert (type_tag(type(event)), event.version) == (m["tag"], int(m["version"]))
    assert encode(event) == data
    assert decode(encode(event)) == event


def test_a_sample_of_every_version_of_every_versioned_event_is_kept() -> None:
    kept = {(m["tag"], int(m["version"])) for p in SAMPLES if (m := NAME.match(p.name))}
    for cls, current in CURRENT_VERSION.items():
        for version in range(1, current + 1):
            assert (type_tag(cls), version) in kept, f"no sample of {type_tag(cls)} version {version}"


def test_version_1_is_upcast_with_its_votes_in_diagnostics_and_the_target_of_its_side() -> None:
    data = sample("signal.generated.v1.json")
    raw = json.loads(data)
    event = decode(data)
    assert isinstance(event, SignalGenerated) and event.version == 1
    assert event.target == {"long": 1.0, "short": -1.0, "flat": 0.0}[raw["side"]]
    assert event.diagnostics == {k: raw[k] for k in ("k", "n", "agree", "votes")}
    assert len(event.diagnostics["votes"]) == raw["n"] == 9
    for field in ("event_id", "strategy", "symbol", "side", "previous_side", "price", "bar_open_time"):
        assert getattr(event, field) == raw[field]


def test_the_same_decision_in_version_2_carries_the_votes_under_diagnostics() -> None:
    old = decode(sample("signal.generated.v1-ema_cross.json"))
    assert isinstance(old, SignalGenerated)
    new = json.loads(encode(msgspec.structs.replace(old, version=2)))
    assert new["version"] == 2 and "votes" not in new and "k" not in new
    assert new["target"] == old.target and new["diagnostics"]["votes"] == json.loads(encode(old))["votes"]


def test_version_2_samples_carry_target_and_diagnostics() -> None:
    weighted = decode(sample("signal.generated.v2-weight.json"))
    assert isinstance(weighted, SignalGenerated)
    assert (weighted.side, weighted.previous_side, weighted.target) == ("long", "long", 0.5)
    lookback = decode(sample("signal.generated.v2-lookback.json"))
    assert isinstance(lookback, SignalGenerated)
    assert set(lookback.diagnostics) == {"change", "window", "first_open"}
    quarantined = decode(sample("signal.strategy.quarantined.v1.json"))
    assert isinstance(quarantined, StrategyQuarantined) and quarantined.reason == "bad_output"


def without_votes(doc: dict) -> None:
    del doc["votes"]


def v2_fields_numbered_1(doc: dict) -> None:
    for key in ("k", "n", "agree", "votes"):
        del doc[key]
    doc.update(target=1.0, diagnostics={})


def version_as_text(doc: dict) -> None:
    doc["version"] = "1"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (without_votes, "signal.generated version 1"),
        (v2_fields_numbered_1, "signal.generated version 1"),
        (version_as_text, "invalid event"),
    ],
)
def test_a_malformed_old_version_is_refused(edit, message) -> None:
    doc = json.loads(sample("signal.generated.v1.json"))
    edit(doc)
    with pytest.raises(DecodeError, match=message):
        decode(json.dumps(doc).encode())


def test_a_newer_version_decodes_keeping_its_number_and_ignoring_unknown_fields() -> None:
    doc = json.loads(sample("signal.generated.v2.json"))
    doc.update(version=3, confidence=0.7)
    event = decode(json.dumps(doc).encode())
    assert isinstance(event, SignalGenerated) and event.version == 3
    assert json.loads(encode(event))["version"] == 3


def test_a_version_1_event_that_version_1_cannot_express_is_not_written() -> None:
    event = decode(sample("signal.generated.v2-weight.json"))
    with pytest.raises(ValueError, match="needs diagnostics k, n, agree and votes"):
        encode(msgspec.structs.replace(event, version=1))
    ema = decode(sample("signal.generated.v1.json"))
    with pytest.raises(ValueError, match="target of its side"):
        encode(msgspec.structs.replace(ema, target=0.5))


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
votes = st.lists(
    st.builds(
        Vote,
        head=st.text(min_size=1, max_size=8),
        fast=st.integers(1, 100),
        slow=st.integers(1, 100),
        fast_ema=finite,
        slow_ema=finite,
        vote=st.sampled_from([-1, 0, 1]),
    ),
    max_size=9,
).map(tuple)


@given(
    side=st.sampled_from(["long", "short", "flat"]),
    previous=st.sampled_from(["long", "short", "flat"]),
    price=finite,
    k=st.integers(0, 9),
    agree=st.integers(0, 9),
    votes=votes,
)
def test_any_version_1_event_round_trips_to_its_bytes(side, previous, price, k, agree, votes) -> None:
    old = SignalGeneratedV1(
        event_id="e",
        ts_event=1,
        ts_init=2,
        causation_id="c",
        strategy="s",
        venue="v",
        symbol="BTCUSDT",
        timeframe="1m",
        side=side,
        previous_side=previous,
        price=price,
        bar_open_time=0,
        k=k,
        n=len(votes),
        agree=agree,
        votes=votes,
    )
    data = msgspec.json.encode(old)
    event = decode(data)
    assert isinstance(event, SignalGenerated) and encode(event) == data
