"""State snapshots on a real nats-server: a restarted service resumes from its snapshot and then
publishes exactly what an uninterrupted core publishes; `replay --verify` checks every stored
snapshot against the replayed state and fails on one that disagrees."""

from __future__ import annotations

import asyncio

import msgspec
import nats
import pytest

from services.risk.core import FILTER_SUBJECTS, RiskCore
from services.risk.loading import from_raw
from services.risk.service import serve as serve_risk
from services.signal.loading import from_raw as signal_from_raw
from services.signal.service import serve as serve_signal
from tests.integration.test_bus_auth import refused
from tests.support.bars import wave_bars
from ticktape import snapshots, subjects
from ticktape.bus.permissions import ADMIN
from ticktape.bus.provision import ensure_streams
from ticktape.cli.main import main
from ticktape.config import CommonSettings, NatsSettings
from ticktape.corespec import load_specs
from ticktape.events.codec import encode
from ticktape.replay.simulate import simulate_session
from ticktape.snapshots.store import SnapshotStore, bucket_name
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.services import common_settings, running_service

STREAM = "TICKTAPE"


def _bars():
    both = wave_bars("BTCUSDT", 240) + wave_bars("ETHUSDT", 240, period=30)
    return sorted(both, key=lambda b: (b.open_time, b.symbol))


@pytest.fixture(scope="module")
def recorded():
    return simulate_session(_bars(), {}, "20250101T000000Z-aaaaaa")


def _risk_inputs(records):
    return [r for r in records if any(subjects.matches(f, r.subject) for f in FILTER_SUBJECTS)]


async def _risk_outputs(js, n):
    got = await stream_events(js, STREAM, [subjects.ALL_RISK])
    return got if len(got) >= n else None


async def test_restart_from_a_snapshot_then_outputs_are_byte_identical_to_an_uninterrupted_run(
    nats_url, nats_client, recorded
):
    meta, records = recorded
    js = nats_client.jetstream()
    settings = NatsSettings(url=nats_url, snapshot_every_inputs=100, snapshot_every_s=0)
    await ensure_streams(js, settings)
    config = from_raw(meta.config_doc())
    inputs = _risk_inputs(records)
    reference = RiskCore(config)
    expected = [encode(o) for r in inputs for o in reference.handle(subjects.decode_on(r.subject, r.data))]
    half = len(inputs) // 2
    first_half = RiskCore(config)
    expected_first = [o for r in inputs[:half] for o in first_half.handle(subjects.decode_on(r.subject, r.data))]
    assert expected_first and len(expected) > len(expected_first)
    common = msgspec.structs.replace(common_settings(nats_url), nats=settings)

    for r in inputs[:half]:
        await js.publish(r.subject, r.data, headers=dict(r.headers))
    async with running_service("risk", serve_risk, config, common) as rt:
        await eventually(lambda: _risk_outputs(js, len(expected_first)), timeout=20, what="first half's outputs")
    assert rt.metrics.value("ticktape_snapshots", outcome="taken") >= 2  # every 100 inputs, and at the stop
    store = SnapshotStore(js, bucket_name(settings, "risk"), "risk", settings.snapshots_kept)
    latest = await store.latest()
    assert latest is not None and latest.seq == half  # the stop's: every input so far
    assert latest.state == first_half.snapshot()

    for r in inputs[half:]:
        await js.publish(r.subject, r.data, headers=dict(r.headers))
    async with running_service("risk", serve_risk, config, common) as rt:
        got = await eventually(lambda: _risk_outputs(js, len(expected)), timeout=20, what="every output")
        assert rt.metrics.value("ticktape_snapshots", outcome="restored") == 1
    assert [encode(e) for e in got] == expected
    final = await store.latest()
    assert final is not None and final.state == reference.snapshot()


async def test_another_configuration_then_the_snapshot_is_not_restored_and_the_full_rebuild_runs(
    nats_url, nats_client, recorded
):
    meta, records = recorded
    js = nats_client.jetstream()
    settings = NatsSettings(url=nats_url)
    await ensure_streams(js, settings)
    inputs = _risk_inputs(records)[:200]
    for r in inputs:
        await js.publish(r.subject, r.data, headers=dict(r.headers))
    config = from_raw(meta.config_doc())
    common = msgspec.structs.replace(common_settings(nats_url), nats=settings)
    async with running_service("risk", serve_risk, config, common) as rt:
        await eventually(lambda: rt.metrics.value("ticktape_received") >= len(inputs), timeout=20, what="inputs")
    assert rt.metrics.value("ticktape_snapshots", outcome="taken") == 1  # at the stop
    other = msgspec.structs.replace(config, reduce_while_halted=not config.reduce_while_halted)
    async with running_service("risk", serve_risk, other, common) as rt:
        await eventually(
            lambda: rt.metrics.value("ticktape_snapshots", outcome="not_restored") == 1,
            timeout=10,
            what="the snapshot refused",
        )
        assert rt.metrics.value("ticktape_snapshots", outcome="restored") == 0


async def _publish_session(url, records):
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, NatsSettings(url=url))
        for rec in records:
            ack = await js.publish(rec.subject, rec.data, headers=dict(rec.headers))
            assert ack.seq == rec.seq
    finally:
        await nc.close()


async def _store_snapshot(url, meta, records, seq, *, tamper=None):
    """The snapshot risk would have taken at stream sequence `seq` (state after every input up to
    it); tamper(snapshot) alters it before it is stored."""
    spec = load_specs(meta.config_doc(), names=["risk"])[0]
    origin = spec.core.origin()
    for rec in records:
        if rec.seq > seq:
            break
        if any(subjects.matches(f, rec.subject) for f in spec.filter_subjects):
            spec.core.handle(subjects.decode_on(rec.subject, rec.data))
    snap = snapshots.make(spec.core, service="risk", durable="risk", stream=STREAM, seq=seq, origin=origin)
    if tamper is not None:
        snap = tamper(snap)
    nc = await nats.connect(url)
    try:
        await SnapshotStore(nc.jetstream(), bucket_name(NatsSettings(), "risk"), "risk", keep=10).put(snap)
    finally:
        await nc.close()


def _verify(url, meta, capsys):
    capsys.readouterr()
    code = main(["replay", meta.session_id, "--verify", "--nats", url])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("fault", ["state", "digest"])
def test_a_snapshot_that_disagrees_with_the_replayed_state_fails_verify(nats_url, recorded, capsys, fault):
    meta, records = recorded
    asyncio.run(_publish_session(nats_url, records))
    mid = records[len(records) // 2].seq
    asyncio.run(_store_snapshot(nats_url, meta, records, mid))
    code, out = _verify(nats_url, meta, capsys)
    assert code == 0, out
    assert "snapshots: checked against the replayed state: risk 1" in out

    wrong_seq = records[len(records) // 2 + 40].seq
    if fault == "state":  # the state of 40 records later, stored as if it were mid's: digest intact

        async def store_shifted():
            spec = load_specs(meta.config_doc(), names=["risk"])[0]
            for rec in records:
                if rec.seq > wrong_seq:
                    break
                if any(subjects.matches(f, rec.subject) for f in spec.filter_subjects):
                    spec.core.handle(subjects.decode_on(rec.subject, rec.data))
            state = spec.core.snapshot()
            await _store_snapshot(
                nats_url,
                meta,
                records,
                mid + 1,
                tamper=lambda s: msgspec.structs.replace(s, state=state, digest=snapshots.digest(state)),
            )

        asyncio.run(store_shifted())
    else:  # a byte of the state changed, the digest not
        asyncio.run(
            _store_snapshot(
                nats_url,
                meta,
                records,
                mid + 1,
                tamper=lambda s: msgspec.structs.replace(s, state=s.state[:-1] + bytes([s.state[-1] ^ 1])),
            )
        )
    code, out = _verify(nats_url, meta, capsys)
    assert code != 0
    assert f"MISMATCH in risk: snapshot risk.{mid + 1:020d}" in out


async def test_with_bus_credentials_a_service_snapshots_into_its_own_bucket_and_no_other(nats_auth, recorded):
    meta, records = recorded
    admin = await nats_auth.connect(ADMIN)
    await ensure_streams(admin.jetstream(), NatsSettings())  # only the admin provisions
    await admin.close()
    signals = [r for r in records if subjects.matches(subjects.ALL_SIGNALS, r.subject)]
    publisher = await nats_auth.connect("signal")
    try:
        for r in signals:
            await publisher.jetstream().publish(r.subject, r.data, headers=dict(r.headers))
    finally:
        await publisher.close()
    settings = msgspec.structs.replace(nats_auth.settings("risk"), snapshot_every_inputs=10)
    config = from_raw(meta.config_doc())
    async with running_service("risk", serve_risk, config, CommonSettings(nats=settings)) as rt:
        await eventually(lambda: rt.metrics.value("ticktape_received") >= len(signals), timeout=20, what="signals")
    assert rt.metrics.value("ticktape_snapshots", outcome="taken") >= 2
    assert rt.metrics.value("ticktape_snapshots", outcome="failed") == 0
    async with running_service("risk", serve_risk, config, CommonSettings(nats=settings)) as rt:
        await eventually(
            lambda: rt.metrics.value("ticktape_snapshots", outcome="restored") == 1, timeout=10, what="the restore"
        )
    other = bucket_name(settings, "execution")
    assert await refused(nats_auth, "risk", f"$O.{other}.M.cmlzaw")
    assert await refused(nats_auth, "risk", f"$JS.API.STREAM.PURGE.OBJ_{other}")


async def test_a_strategy_whose_state_is_not_plain_data_then_signal_rebuilds_fully_and_says_so(nats_url, nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings(url=nats_url))
    bars = wave_bars(n=30)
    for b in bars:
        await js.publish(subjects.for_event(b), encode(b), headers={"Nats-Msg-Id": b.event_id})
    config = signal_from_raw({"signal": {"strategies": [{"kind": "tests.support.strategies:Guarded", "name": "g"}]}})
    common = common_settings(nats_url)
    for new in (len(bars), 1):  # the first start reads every bar; the restart the one bar after them
        async with running_service("signal", serve_signal, config, common) as rt:
            await eventually(lambda: rt.metrics.value("ticktape_received") >= new, timeout=20, what="bars")  # noqa: B023
        assert rt.metrics.value("ticktape_snapshots", outcome="disabled") == 1
        assert rt.metrics.value("ticktape_snapshots", outcome="taken") == 0
        late = wave_bars(n=len(bars) + 1, start=bars[0].open_time)[-1]
        bars.append(late)
        await js.publish(subjects.for_event(late), encode(late), headers={"Nats-Msg-Id": late.event_id})
    assert [s.side for s in await _signals(js)] == ["long"]
    store = SnapshotStore(js, bucket_name(NatsSettings(), "signal"), "signal")
    assert await store.latest() is None


async def _signals(js):
    return await stream_events(js, STREAM, [subjects.ALL_SIGNALS])
