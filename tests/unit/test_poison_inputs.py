"""Poison inputs never escape a decoder: the regression corpus (tests/support/poison.py) and
Hypothesis fuzzing of every bus decoder with size and depth extremes. Decoders either return an
event or raise DecodeError; dead letters always fit in one bus message."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges import ADAPTERS, adapter_for
from exchanges.base import FrameError
from tests.support.bars import wave_bars
from tests.support.poison import CORPUS
from ticktape import jsonlimits, subjects
from ticktape.audit import chain
from ticktape.bus.deadletter import HEADERS_BYTES, INLINE_BYTES, dead_letter
from ticktape.bus.publisher import PayloadTooLarge, message_size, msg_headers
from ticktape.events import DeadLettered
from ticktape.events.codec import DecodeError, TooDeep, decode, encode

MAX_PAYLOAD = 1024 * 1024
BAR = wave_bars(n=1)[0]
BAR_SUBJECT = subjects.for_event(BAR)
DEEP = {"nested_arrays", "nested_objects", "nested_in_type_tag", "nested_in_unknown_field", "nested_in_headers"}
DEEP |= {"unclosed_arrays", "deep_just_past_the_limit"}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_input_when_decoded_then_decode_error_never_recursion(name):
    data = CORPUS[name]()
    with pytest.raises(DecodeError) as raised:
        decode(data)
    assert isinstance(raised.value, TooDeep) == (name in DEEP)
    with pytest.raises(DecodeError):
        subjects.decode_on(BAR_SUBJECT, data)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_input_when_archived_then_chained_verified_and_deep_ones_flagged(name):
    data = CORPUS[name]()
    row = chain.make_row(chain.GENESIS, "TICKTAPE", 1, BAR_SUBJECT, data)
    assert row.data == data and chain.verify([row], "TICKTAPE").ok
    assert (chain.unprojectable(data) is not None) == (name in DEEP)
    if name in DEEP:
        assert row.payload is None and row.event_id is None


def test_huge_event_id_is_not_projected_so_the_indexed_column_stays_storable():
    row = chain.make_row(chain.GENESIS, "TICKTAPE", 1, BAR_SUBJECT, CORPUS["huge_event_id"]())
    assert row.event_id is None and row.type == "md.bar.closed"


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_input_when_dead_lettered_then_the_letter_fits_and_describes_it(name):
    data = CORPUS[name]()
    letter = dead_letter(
        service="signal",
        source=BAR_SUBJECT,
        error="x" * 10_000,
        payload=data,
        ts_ns=1,
        stream_seq=7,
        headers={"Nats-Msg-Id": "a" * 100_000, "traceparent": "00-abc", "Authorization": "secret"},
        max_bytes=MAX_PAYLOAD,
    )
    assert message_size(encode(letter), msg_headers(letter)) <= MAX_PAYLOAD
    assert letter.payload_size == len(data) and letter.payload_sha256 == hashlib.sha256(data).hexdigest()
    inline = base64.b64decode(letter.payload_b64)
    assert data.startswith(inline) and len(inline) == min(len(data), INLINE_BYTES)
    assert letter.payload_truncated == (len(data) > INLINE_BYTES)
    assert "Authorization" not in letter.headers
    assert sum(len(k) + len(v) + 4 for k, v in letter.headers.items()) <= HEADERS_BYTES
    assert isinstance(decode(encode(letter)), DeadLettered)


def test_dead_letter_when_the_bus_limit_is_tiny_then_payload_then_headers_give_way():
    kwargs: dict[str, Any] = dict(service="s", source="src", error="e", payload=b"p" * 5000, ts_ns=1)
    kwargs["headers"] = {"h": "v" * 500}
    full = dead_letter(**kwargs)
    no_payload = dead_letter(**kwargs, max_bytes=message_size(encode(full), msg_headers(full)) - 1)
    assert no_payload.payload_b64 == "" and no_payload.headers and no_payload.payload_truncated
    bare = dead_letter(**kwargs, max_bytes=message_size(encode(no_payload), msg_headers(no_payload)) - 1)
    assert bare.headers == {} and bare.payload_sha256 == full.payload_sha256
    assert bare.event_id == full.event_id  # same input, same id: deduplicated however it was cut
    with pytest.raises(PayloadTooLarge):
        dead_letter(**kwargs, max_bytes=100)


def test_old_dead_letters_without_the_new_fields_still_decode():
    old = b'{"type":"dlq.dead_lettered","event_id":"x","ts_event":1,"ts_init":1,"service":"signal",'
    old += b'"source":"md.bar.a.b.1m","error":"e","payload_b64":"e25vdA=="}'
    letter = decode(old)
    assert isinstance(letter, DeadLettered) and letter.payload_size is None and not letter.payload_truncated


@pytest.mark.parametrize("venue", sorted(ADAPTERS))
@pytest.mark.parametrize("name", sorted(DEEP))
def test_deep_exchange_frame_or_body_then_frame_error_never_recursion(venue, name):
    adapter, data = adapter_for(venue), CORPUS[name]()
    for parse in (
        adapter.parse,
        lambda d: adapter.parse_backfill(d, "BTCUSDT", "1m"),
        adapter.parse_server_time,
    ):
        with pytest.raises(FrameError):
            parse(data)
    with pytest.raises(FrameError):
        adapter.parse_universe(
            [data] * (2 if venue.startswith("binance") else 1), "USDC" if venue == "hyperliquid" else "USDT"
        )


# --- depth: the scan agrees with a parser -------------------------------------------------------

_text = st.text(alphabet=st.sampled_from(list('[]{}"\\ab,:\n\u00e9\u2028')), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@FUZZ
@given(_json, st.integers(0, 300))
def test_depth_of_any_json_is_its_nesting_with_brackets_in_strings_ignored(value, wrap):
    for _ in range(wrap):
        value = [value]
    data = msgspec.json.encode(value)
    assert jsonlimits.depth(data) == _depth(value)
    if _depth(value) <= jsonlimits.MAX_DEPTH:
        jsonlimits.check_depth(data)
        assert jsonlimits.decode(data) == msgspec.json.decode(data)
    else:
        with pytest.raises(jsonlimits.TooDeep):
            jsonlimits.decode(data)


# --- fuzzing the bus decoders ---------------------------------------------------------------------

_sizes = st.sampled_from([0, 1, 2, 127, 128, 129, 1000, 65_536, 1_048_576, 2_000_000])
_brackets = st.sampled_from([b"[", b"{", b'{"a":', b'{"type":', b'["', b"\\"])


@st.composite
def _poison(draw: st.DrawFn) -> bytes:
    """Valid events cut, padded, nested (at a random spot, from 0 to 200,000 levels) or replaced by
    junk of extreme sizes."""
    base = encode(draw(st.sampled_from(wave_bars(n=3))))
    kind = draw(st.sampled_from(["nest", "pad", "cut", "junk", "field"]))
    if kind == "nest":
        depth = draw(st.sampled_from([1, 127, 128, 129, 1000, 200_000]))
        opener = draw(_brackets)
        at = draw(st.integers(0, len(base)))
        closer = b"]" if opener.startswith(b"[") else b"}"
        return base[:at] + opener * depth + closer * draw(st.sampled_from([0, depth])) + base[at:]
    if kind == "pad":
        return base[:-1] + b',"pad":"' + b"x" * draw(_sizes) + b'"}'
    if kind == "cut":
        return base[: draw(st.integers(0, len(base)))]
    if kind == "field":
        depth = draw(st.sampled_from([0, 128, 129, 5000]))
        return base[:-1] + b',"extra":' + b"[" * depth + b"1" + b"]" * depth + b"}"
    return draw(st.sampled_from([b"x", b"\xff", b"\x00", b"[", b"{"])) * draw(_sizes)


@FUZZ
@given(_poison())
def test_codec_decode_on_poison_returns_an_event_or_raises_decode_error(data):
    try:
        event = decode(data)
    except DecodeError:
        return
    assert encode(event)  # whatever decodes is a whole event


@FUZZ
@given(_poison())
def test_consumer_decode_path_on_poison_returns_an_event_or_raises_decode_error(data):
    try:
        event = subjects.decode_on(BAR_SUBJECT, data)
    except DecodeError:
        return
    assert subjects.for_event(event) == BAR_SUBJECT


@FUZZ
@given(_poison())
def test_audit_projection_on_poison_never_raises_and_verifies(data):
    row = chain.make_row(chain.GENESIS, "TICKTAPE", 1, BAR_SUBJECT, data)
    assert chain.verify([row], "TICKTAPE").ok


@FUZZ
@given(_poison(), st.dictionaries(st.text(max_size=300), st.text(max_size=3000), max_size=8))
def test_dead_letter_of_poison_always_fits_one_bus_message(data, headers):
    letter = dead_letter(
        service="risk", source=BAR_SUBJECT, error="e", payload=data, ts_ns=1, headers=headers, max_bytes=MAX_PAYLOAD
    )
    assert message_size(encode(letter), msg_headers(letter)) <= MAX_PAYLOAD
    assert letter.payload_size == len(data)


def test_default_settings_name_the_bucket_and_bounds_the_dead_letter_code_uses():
    from ticktape.bus.deadletter import DLQ_PAYLOADS_BUCKET
    from ticktape.bus.provision import dlq_payloads_config
    from ticktape.config import NatsSettings

    settings = NatsSettings()
    assert settings.dlq_payloads_bucket == DLQ_PAYLOADS_BUCKET and settings.dlq_inline_bytes == INLINE_BYTES
    stream = dlq_payloads_config(settings)
    assert stream.name == f"OBJ_{DLQ_PAYLOADS_BUCKET}" and stream.max_bytes == settings.dlq_payloads_max_bytes
