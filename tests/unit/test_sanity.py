"""The hard sanity bounds and the finite-output check every core applies."""

from __future__ import annotations

import math

import msgspec
import pytest

from ticktape.events import MarketDataStatus, ShardStatus, SignalGenerated, codec
from ticktape.sanity import NonFiniteOutput, amount_problem, ensure_finite, nonfinite_field, price_problem


def signal(fast_ema: float = 1.0, price: float = 100.0) -> SignalGenerated:
    vote = {"head": "h", "fast": 2, "slow": 4, "fast_ema": 1.0, "slow_ema": 1.0, "vote": 1}
    return SignalGenerated(
        event_id="s",
        ts_event=1,
        ts_init=1,
        strategy="x",
        venue="v",
        symbol="S",
        timeframe="1m",
        side="long",
        previous_side="flat",
        price=price,
        bar_open_time=0,
        target=1.0,
        diagnostics={"k": 1, "n": 2, "agree": 1, "votes": [vote, {**vote, "fast_ema": fast_ema}]},
    )


def test_msgspec_writes_non_finite_floats_as_null_which_no_consumer_decodes() -> None:
    """Why the check exists: the encoder does not refuse inf, and the decoder refuses null."""
    data = codec.encode(signal(price=math.inf))
    assert b'"price":null' in data
    with pytest.raises(codec.DecodeError):
        codec.decode(data)


def test_json_cannot_carry_non_finite_numbers_onto_the_bus() -> None:
    data = codec.encode(signal())
    for bad in (b"1e309", b"-1e309", b"NaN", b"Infinity"):
        with pytest.raises(codec.DecodeError):
            codec.decode(data.replace(b'"price":100.0', b'"price":' + bad))
    assert codec.decode(data.replace(b'"price":100.0', b'"price":1e308')).price == 1e308  # finite: the cores judge it


def test_nonfinite_field_names_the_path_in_nested_structs() -> None:
    assert nonfinite_field(signal()) is None
    assert nonfinite_field(signal(price=math.nan)) == "price=nan"
    assert nonfinite_field(signal(fast_ema=-math.inf)) == "diagnostics['votes'][1]['fast_ema']=-inf"
    status = MarketDataStatus(
        event_id="m",
        ts_event=1,
        ts_init=1,
        venue="v",
        shards=(
            ShardStatus(
                shard=0, connected=True, symbols=1, last_frame_age_ms=None, reconnects=0, frames_per_s=math.inf
            ),
        ),
    )
    assert nonfinite_field(status) == "shards[0].frames_per_s=inf"


def test_nonfinite_field_looks_into_int_fields_and_skips_only_text_and_flags() -> None:
    """Struct constructors do not check types: a core's arithmetic may leave a float in a field
    typed int, so only text, flags and string literals are skipped."""
    assert nonfinite_field(msgspec.structs.replace(signal(), bar_open_time=math.inf)) == "bar_open_time=inf"
    assert nonfinite_field(msgspec.structs.replace(signal(), symbol=math.nan)) is None  # a str field: not arithmetic


def test_ensure_finite_raises_naming_the_event_and_field() -> None:
    ensure_finite([signal(), signal(fast_ema=2.0)])
    with pytest.raises(NonFiniteOutput, match=r"SignalGenerated .*\['votes'\]\[1\]\['fast_ema'\]=nan"):
        ensure_finite([signal(), signal(fast_ema=math.nan)])


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0.0, 1e-320, 1e-13, 1e13, 1e308])
def test_price_problem_when_outside_the_band_then_says_why(value: float) -> None:
    assert price_problem("close", value) is not None


@pytest.mark.parametrize("value", [1e-12, 0.0001, 1.0, 65_000.0, 1e12])
def test_price_problem_when_sane_then_none(value: float) -> None:
    assert price_problem("close", value) is None


def test_amount_problem_allows_zero_and_refuses_negative_non_finite_and_absurd() -> None:
    assert amount_problem("volume", 0.0) is None and amount_problem("volume", 1e20) is None
    assert all(amount_problem("volume", v) for v in (-1.0, math.nan, math.inf, 1e31))
