"""`ticktape strategies` against a real PostgreSQL and a real nats-server that admits only ticktape's
roles, with the real signal service running: an add is stored, published as the operator with its
(strategy, version) id, and signals on the next bar after a warm-up; a pause stops it within a
bar; a bad entry is refused naming the key path before anything is stored or published; a publish
the bus refuses leaves nothing stored; transitions the status does not allow are refused."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import psycopg
import pytest

from services.signal.config import EmaCrossConfig, SignalConfig
from services.signal.service import serve as serve_signal
from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.permissions import ADMIN, OBSERVER, OPERATOR
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import msg_headers
from ticktape.bus.reader import read_range
from ticktape.cli.main import main as cli_main
from ticktape.config import CommonSettings, NatsSettings
from ticktape.events import SignalGenerated, StrategyChanged
from ticktape.events.codec import decode, encode
from ticktape.testing import eventually
from ticktape.testing.services import running_service

pytestmark = pytest.mark.timeout(120)

CONFIG_YAML = """
signal:
  strategies: [{kind: ema_cross, name: configured, params: {fast: 3, slow: 8}}]
accounts: [{name: paper-main, strategies: ["*"]}]
"""
BARS = wave_bars(n=160, period=40)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "ticktape.yaml"
    path.write_text(CONFIG_YAML + f"home: {tmp_path / 'home'}\n")
    return path


async def ticktape(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in-process (in a thread: it runs its own event loop): exit code, stdout, stderr."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli_main, list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


async def messages(js, filter_subject: str) -> list:
    try:
        return [m async for m in read_range(js, subjects.EVENTS_STREAM, [filter_subject], idle_timeout=0.3)]
    except Exception as exc:  # an empty filter: nothing stored yet
        if "no message found" in str(exc).lower():
            return []
        raise


async def signals_of(js, name: str) -> list[SignalGenerated]:
    found = [decode(m.data) for m in await messages(js, f"signals.{name}.*.*")]
    return [s for s in found if isinstance(s, SignalGenerated)]


async def rows(dsn: str) -> dict[str, tuple]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT id, status, version FROM strategies ORDER BY id")
        return {r[0]: r for r in await cur.fetchall()}


async def test_strategies_cli_changes_the_running_signal_service_within_a_bar(
    nats_auth, pg_dsn, config_file, capsys
) -> None:
    admin = await nats_auth.connect(ADMIN)
    await ensure_streams(admin.jetstream(), NatsSettings())
    md = await nats_auth.connect("market_data")
    mdjs = md.jetstream()
    js = admin.jetstream()

    async def publish(i: int) -> int:
        ack = await mdjs.publish(subjects.for_event(BARS[i]), encode(BARS[i]), headers=msg_headers(BARS[i]))
        return ack.seq

    base = ("--config", str(config_file), "--dsn", pg_dsn)
    bus = ("--nats", nats_auth.url, "--creds", nats_auth.creds(OPERATOR))
    config = SignalConfig(strategies=(EmaCrossConfig(name="configured", fast=3, slow=8),))
    common = CommonSettings(nats=nats_auth.settings("signal"), home=tempfile.mkdtemp(prefix="ticktape-test-home-"))
    try:
        async with running_service("signal", serve_signal, config, common):
            for i in range(60):
                await publish(i)
            await eventually(lambda: signals_of(js, "configured"), timeout=20, what="the configured strategy's signals")

            # a bad entry: refused naming the key path; nothing stored, nothing published
            code, _, err = await ticktape(
                capsys, "strategies", "add", "bad", "--kind", "ema_cross", "--params", '{"fast": "x"}', *base, *bus
            )
            assert code == 1 and "params.fast" in err, err
            code, _, err = await ticktape(
                capsys, "strategies", "add", "bad", "--kind", "ema_cross", "--timeframes", "4h", *base, *bus
            )
            assert code == 1 and "timeframes" in err and "signal.managed_timeframes" in err, err
            # a publish the bus refuses (the observer may publish nothing): nothing stored either
            observer = ("--nats", nats_auth.url, "--creds", nats_auth.creds(OBSERVER))
            code, _, err = await ticktape(
                capsys, "strategies", "add", "m", "--kind", "ema_cross", "--params", '{"fast": 3, "slow": 8}', *base,
                *observer,
            )  # fmt: skip
            assert code == 2 and "nothing changed" in err, err
            assert await rows(pg_dsn) == {}
            assert await messages(js, subjects.ALL_STRATEGIES) == []

            code, out, err = await ticktape(
                capsys, "strategies", "add", "m", "--kind", "ema_cross", "--params", '{"fast": 3, "slow": 8}',
                "--account", "paper-main", "--json", *base, *bus,
            )  # fmt: skip
            assert code == 0, err
            added = json.loads(out)
            assert (added["strategy"]["status"], added["strategy"]["version"]) == ("live", 1)
            (msg,) = await messages(js, subjects.ALL_STRATEGIES)
            event = decode(msg.data)
            assert isinstance(event, StrategyChanged) and (event.strategy, event.revision) == ("m", 1)
            assert msg.headers["Nats-Msg-Id"] == event.event_id == added["event_id"]
            assert msg.metadata.sequence.stream == added["stream_seq"]

            # warmed up from the 60 bars it did not see: it signals on the very next bar
            await publish(60)
            first = await eventually(lambda: signals_of(js, "m"), timeout=20, what="the added strategy's signal")
            assert [s.bar_open_time for s in first] == [BARS[60].open_time]

            code, _, err = await ticktape(capsys, "strategies", "pause", "m", *base, *bus)
            assert code == 0, err
            before = len(await signals_of(js, "configured"))
            for i in range(61, 120):
                last = await publish(i)
            await eventually(lambda: _handled(js, last), timeout=20, what="the last bar handled")
            assert len(await signals_of(js, "configured")) > before  # the others kept signalling
            assert len(await signals_of(js, "m")) == 1  # paused: nothing more

            code, _, err = await ticktape(capsys, "strategies", "pause", "m", *base, *bus)
            assert code == 1 and "paused" in err, err  # not allowed: nothing published
            code, _, err = await ticktape(capsys, "strategies", "retire", "m", *base, *bus)
            assert code == 0, err
            code, _, err = await ticktape(capsys, "strategies", "resume", "m", *base, *bus)
            assert code == 1 and "retired" in err, err
    finally:
        await md.close()

    code, out, _ = await ticktape(capsys, "strategies", "list", "--json", *base)
    assert code == 0
    (row,) = json.loads(out)
    assert (row["id"], row["status"], row["version"], row["account"]) == ("m", "retired", 3, "paper-main")
    assert row["updated_at"] >= row["created_at"]
    code, out, _ = await ticktape(capsys, "strategies", "show", "m", "--json", *base)
    assert code == 0 and json.loads(out)["params"] == {"fast": 3, "slow": 8}
    code, out, _ = await ticktape(capsys, "strategies", "list", *base)
    assert code == 0 and out.splitlines()[1].split()[:4] == ["m", "ema_cross", "retired", "3"], out
    code, out, _ = await ticktape(capsys, "strategies", "show", "m", *base)
    assert code == 0 and "status      retired" in out and '"fast": 3' in out, out
    code, _, err = await ticktape(capsys, "strategies", "show", "nope", *base)
    assert code == 1 and "no such strategy" in err
    changes = [decode(m.data) for m in await messages(js, subjects.ALL_STRATEGIES)]
    assert [(c.action, c.status, c.revision) for c in changes] == [  # type: ignore[union-attr]
        ("add", "live", 1),
        ("pause", "paused", 2),
        ("retire", "retired", 3),
    ]
    await admin.close()


async def _handled(js, seq: int) -> bool:
    """The signal service's durable has acked the input at stream sequence seq."""
    info = await js.consumer_info(subjects.EVENTS_STREAM, "signal")
    return info.ack_floor.stream_seq >= seq
