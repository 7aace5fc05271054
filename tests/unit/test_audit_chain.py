"""The audit hash chain: its exact preimage, and that verification finds any tampering at the
row where it happened."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.audit import chain
from ticktape.audit.chain import GENESIS, Checkpoint, Row, make_row, next_hash, preimage, project, verify
from ticktape.events.codec import encode

STREAM = "TICKTAPE"
BARS = [(subjects.for_event(b), encode(b)) for b in wave_bars(n=8)]


def build(messages: list[tuple[str, bytes]], first_seq: int = 1) -> list[Row]:
    return chain.chain(STREAM, [(first_seq + i, s, d) for i, (s, d) in enumerate(messages)])


def test_preimage_is_the_documented_bytes_and_the_hash_is_pinned():
    data = b'{"a":1}'
    expected = b"ticktape.audit/1\nTICKTAPE\n7\nmd.bar.binance_usdm.BTCUSDT.1m\n7\n" + data
    assert preimage(STREAM, 7, "md.bar.binance_usdm.BTCUSDT.1m", data) == expected
    digest = next_hash(GENESIS, STREAM, 7, "md.bar.binance_usdm.BTCUSDT.1m", data)
    assert digest == hashlib.sha256(bytes(32) + expected).digest()
    # pinned: changing the definition silently would orphan every archived chain
    assert digest.hex() == "682f96b4738fbfe8203acdaa5286e61340260ab61e393a594f1b27caa1974dd5"


def test_preimage_when_fields_shift_between_subject_and_data_then_differs():
    assert preimage(STREAM, 1, "a.b", b"c\nd") != preimage(STREAM, 1, "a.b\nc", b"d")
    assert preimage(STREAM, 11, "x", b"") != preimage(STREAM, 1, "x", b"1")


def test_chain_is_deterministic_and_links_each_row_to_the_previous():
    first, second = build(BARS), build(BARS)
    assert first == second
    assert first[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(first))
    assert len({r.hash for r in first}) == len(first)


def test_verify_when_intact_then_ok_with_count_and_head_hash():
    rows = build(BARS)
    result = verify(rows, STREAM)
    assert result.ok and result.count == len(rows) and result.head == rows[-1].hash
    assert (result.first_seq, result.last_seq, result.gaps) == (1, len(rows), 0)


def test_project_takes_envelope_columns_from_the_bytes():
    bar = wave_bars(n=1)[0]
    p = project(encode(bar))
    assert (p.event_id, p.type, p.ts_event, p.causation_id) == (bar.event_id, "md.bar.closed", bar.ts_event, None)
    assert msgspec.json.decode(p.payload) == msgspec.json.decode(encode(bar))


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe", b"[1,2]", b'{"event_id": 5, "ts_event": "x"}'])
def test_project_when_body_is_not_an_event_then_columns_are_null(data):
    p = project(data)
    assert (p.event_id, p.type, p.ts_event, p.causation_id, p.correlation_id) == (None,) * 5


def test_project_when_jsonb_would_reject_the_body_then_payload_is_null_but_ids_kept():
    p = project(b'{"event_id":"e1","type":"x","note":"nul\\u0000here"}')
    assert p.payload is None and p.event_id == "e1"


messages = st.lists(
    st.tuples(
        st.sampled_from([s for s, _ in BARS] + ["dlq.signal", "sessions.s1"]),
        st.one_of(st.sampled_from([d for _, d in BARS]), st.binary(min_size=1, max_size=40)),
    ),
    min_size=2,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_any_single_byte_change_in_a_rows_data_is_detected_at_that_row(msgs, data):
    rows = build(msgs)
    i = data.draw(st.integers(0, len(rows) - 1), label="row")
    pos = data.draw(st.integers(0, len(rows[i].data) - 1), label="byte")
    old = rows[i].data[pos]
    new = data.draw(st.integers(0, 255).filter(lambda b: b != old), label="value")
    tampered = list(rows)
    tampered[i] = dataclasses.replace(rows[i], data=rows[i].data[:pos] + bytes([new]) + rows[i].data[pos + 1 :])
    broken = verify(tampered, STREAM).broken
    assert broken is not None
    assert (broken.index, broken.seq, broken.kind) == (i, rows[i].seq, "hash")
    assert broken.event_id == rows[i].event_id


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_a_deleted_row_is_detected_at_the_row_after_it(msgs, data):
    rows = build(msgs)
    i = data.draw(st.integers(0, len(rows) - 2), label="deleted")
    broken = verify(rows[:i] + rows[i + 1 :], STREAM).broken
    assert broken is not None
    assert (broken.index, broken.seq, broken.kind) == (i, rows[i + 1].seq, "link")


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_reordered_rows_are_detected_at_the_first_moved_row(msgs, data):
    rows = build(msgs)
    i = data.draw(st.integers(0, len(rows) - 2), label="i")
    j = data.draw(st.integers(i + 1, len(rows) - 1), label="j")
    swapped = list(rows)
    swapped[i], swapped[j] = rows[j], rows[i]
    broken = verify(swapped, STREAM).broken
    assert broken is not None and broken.index == i and broken.seq == rows[j].seq


@settings(max_examples=100, deadline=None)
@given(messages, st.data())
def test_a_changed_subject_is_detected_at_that_row(msgs, data):
    rows = build(msgs)
    i = data.draw(st.integers(0, len(rows) - 1), label="row")
    tampered = rows[:i] + [dataclasses.replace(rows[i], subject=rows[i].subject + "x")] + rows[i + 1 :]
    broken = verify(tampered, STREAM).broken
    assert broken is not None and (broken.index, broken.kind) == (i, "hash")


def test_a_changed_seq_that_keeps_the_order_is_detected_by_the_hash():
    rows = build(BARS)
    rows[-1] = dataclasses.replace(rows[-1], seq=rows[-1].seq + 5)
    broken = verify(rows, STREAM).broken
    assert broken is not None and (broken.index, broken.kind) == (len(rows) - 1, "hash")


def test_an_edited_projection_column_is_detected_even_though_data_is_intact():
    rows = build(BARS)
    rows[3] = dataclasses.replace(rows[3], event_id="someone-else")
    broken = verify(rows, STREAM).broken
    assert broken is not None and (broken.index, broken.kind) == (3, "column")
    assert "event_id" in broken.detail


def test_an_edited_jsonb_payload_is_detected_and_says_which_field():
    rows = build(BARS)
    doc = msgspec.json.decode(rows[2].payload)
    doc["close"] = 1.0
    rows[2] = dataclasses.replace(rows[2], payload=msgspec.json.encode(doc).decode())
    broken = verify(rows, STREAM).broken
    assert broken is not None and (broken.index, broken.kind) == (2, "payload") and "'close'" in broken.detail


def test_payload_as_jsonb_prints_numbers_still_matches():
    row = make_row(GENESIS, STREAM, 1, "x", b'{"a":1e16,"b":1e-05,"c":[1.5,2]}')
    as_jsonb = dataclasses.replace(row, payload='{"a": 10000000000000000, "b": 0.00001, "c": [1.5, 2]}')
    assert verify([as_jsonb], STREAM).ok


def test_a_rewritten_tail_is_caught_by_the_next_checkpoint():
    rows = build(BARS)
    checkpoint = Checkpoint(STREAM, rows[5].seq, rows[5].hash, 6)
    forged = dataclasses.replace(rows[2], data=rows[2].data.replace(b'"close":', b'"close": '))
    assert forged.data != rows[2].data
    rewritten = chain.chain(STREAM, [(r.seq, r.subject, r.data) for r in [forged, *rows[3:]]], rows[1].hash)
    result = verify(rows[:2] + rewritten, STREAM, checkpoints=[checkpoint])
    assert result.broken is not None and (result.broken.seq, result.broken.kind) == (rows[5].seq, "checkpoint")


def test_a_truncated_tail_is_caught_by_a_checkpoint_past_the_end():
    rows = build(BARS)
    checkpoint = Checkpoint(STREAM, rows[-1].seq, rows[-1].hash, len(rows))
    assert verify(rows, STREAM, checkpoints=[checkpoint]).ok
    result = verify(rows[:-2], STREAM, checkpoints=[checkpoint])
    assert result.broken is not None and result.broken.kind == "checkpoint"


def test_a_checkpoint_with_a_wrong_count_is_reported():
    rows = build(BARS)
    result = verify(rows, STREAM, checkpoints=[Checkpoint(STREAM, rows[3].seq, rows[3].hash, 99)])
    assert result.broken is not None and (result.broken.seq, result.broken.kind) == (rows[3].seq, "checkpoint")


def test_seq_gaps_are_allowed_and_counted():
    rows = chain.chain(STREAM, [(1, "a", b"1"), (2, "a", b"2"), (9, "a", b"3")])
    result = verify(rows, STREAM)
    assert result.ok and result.gaps == 1


def test_a_range_links_to_the_hash_before_it():
    rows = build(BARS)
    assert verify(rows[3:], STREAM, prev_hash=rows[2].hash, count_base=None).ok
    assert verify(rows[3:], STREAM, prev_hash=None, count_base=None).ok
    broken = verify(rows[3:], STREAM, prev_hash=rows[1].hash, count_base=None).broken
    assert broken is not None and (broken.index, broken.kind) == (0, "link")


def test_event_id_conflicts_flag_other_bytes_under_a_known_id_never_identical_ones():
    a = b'{"type":"x","event_id":"e1","ts_event":1,"ts_init":1}'
    b = b'{"type":"x","event_id":"e1","ts_event":2,"ts_init":2}'
    c = b'{"type":"x","event_id":"e2","ts_event":1,"ts_init":1}'
    rows = chain.chain("S", [(1, "s", a), (2, "s", a), (3, "s", b), (4, "s", c), (5, "s", b), (6, "s", b"{bad")])
    found = chain.event_id_conflicts(rows, {})
    assert [(f.row.seq, f.first_seq, f.reason) for f in found] == [
        (3, 1, "duplicate_event_id_conflict"),
        (5, 1, "duplicate_event_id_conflict"),
    ]
    # what is already archived counts as the first copy
    archived = {"e2": (9, hashlib.sha256(b"other").digest())}
    assert [(f.row.seq, f.first_seq) for f in chain.event_id_conflicts(rows[3:4], archived)] == [(4, 9)]
