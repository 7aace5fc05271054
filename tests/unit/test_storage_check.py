"""The storage check (ticktape.storage): an alert for each stream or disk at or above the
threshold, repeated only after repeat_ns while it stays there, and at once after it went below."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ticktape import storage, subjects
from ticktape.events.codec import decode, encode

SEC = 1_000_000_000
GIB = 1024**3


def _check(usages, now_ns=100 * SEC, last_alert=None, threshold=0.8, repeat_ns=3600 * SEC):
    return storage.check(usages, threshold=threshold, now_ns=now_ns, last_alert=last_alert or {}, repeat_ns=repeat_ns)


def test_stream_above_threshold_then_one_alert_with_its_numbers():
    usage = storage.stream_usage("TICKTAPE", 9 * GIB, 10 * GIB)
    assert usage is not None
    (alert,) = _check([usage])
    assert (alert.resource, alert.name, alert.used_bytes, alert.limit_bytes) == (
        "stream",
        "TICKTAPE",
        9 * GIB,
        10 * GIB,
    )
    assert alert.fraction == 0.9 and alert.threshold == 0.8 and alert.ts_event == 100 * SEC
    assert subjects.for_event(alert) == "ops.storage.stream"
    assert decode(encode(alert)) == alert


def test_below_threshold_then_no_alert():
    usages = [storage.stream_usage("T", 79, 100), storage.disk_usage("/data", 10, 100)]
    assert _check([u for u in usages if u is not None]) == []


def test_stream_without_byte_limit_is_not_measured():
    assert storage.stream_usage("T", 10**12, None) is None
    assert storage.stream_usage("T", 10**12, -1) is None


def test_disk_at_threshold_then_alert():
    (alert,) = _check([storage.disk_usage("/var/lib/ticktape/postgres", 80, 100)])
    assert (alert.resource, alert.name, alert.fraction) == ("disk", "/var/lib/ticktape/postgres", 0.8)
    assert subjects.for_event(alert) == "ops.storage.disk"


def test_alert_repeats_only_after_repeat_interval_while_above():
    usages = [storage.stream_usage("T", 90, 100)]
    first = _check(usages, now_ns=0)
    last = storage.remember({}, usages, first, 0.8)
    assert _check(usages, now_ns=10 * SEC, last_alert=last, repeat_ns=60 * SEC) == []
    (again,) = _check(usages, now_ns=60 * SEC, last_alert=last, repeat_ns=60 * SEC)
    assert again.event_id != first[0].event_id


def test_store_back_below_threshold_then_next_crossing_alerts_at_once():
    high, low = [storage.stream_usage("T", 90, 100)], [storage.stream_usage("T", 50, 100)]
    last = storage.remember({}, high, _check(high, now_ns=0), 0.8)
    last = storage.remember(last, low, _check(low, now_ns=1 * SEC, last_alert=last), 0.8)
    assert last == {}
    assert len(_check(high, now_ns=2 * SEC, last_alert=last, repeat_ns=3600 * SEC)) == 1


def test_same_check_twice_gives_same_ids():
    usages = [storage.stream_usage("T", 95, 100), storage.disk_usage("/d", 95, 100)]
    assert [a.event_id for a in _check(usages)] == [a.event_id for a in _check(usages)]


@given(
    used=st.integers(min_value=0, max_value=10**13),
    limit=st.integers(min_value=1, max_value=10**13),
    threshold=st.floats(min_value=0.01, max_value=1.0),
)
def test_alert_iff_fraction_reaches_threshold(used, limit, threshold):
    alerts = _check([storage.disk_usage("/d", used, limit)], threshold=threshold)
    assert (len(alerts) == 1) == (used / limit >= threshold)
