"""The signal service as N worker processes under `ticktape up` (issue #10 item 5): the same
recorded bars (real klines, nine symbols over four partitions) run with one worker and with four,
one of the four SIGKILLed mid-session and restarted by the supervisor. Both sessions' signals are,
symbol by symbol, byte for byte those of the pure core run in one process over the bars (so each
other's), none is lost or duplicated, the choice of four workers is recorded, and the four-worker
session verifies with `ticktape replay --verify`."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from services.signal.config import SignalConfig
from services.signal.core import SignalCore
from tests.support.partitioned import VENUE, partitioned_bars
from ticktape import events as ev
from ticktape import registry, subjects, workers
from ticktape.bus import creds
from ticktape.bus.permissions import ADMIN
from ticktape.bus.publisher import publish_batch
from ticktape.events.codec import decode, encode
from ticktape.infra.nats_server import start_nats_server
from ticktape.replay.catalog import connect
from ticktape.sessions import wait_drained
from ticktape.testing.bus import stream_messages
from ticktape.testing.stack import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

CONFIG = """
signal: {{workers: {workers}}}
supervisor: {{service_grace_s: 10, stop_timeout_s: 60}}
"""
BARS = 300  # per symbol


def served_url(home: Path) -> str | None:
    try:
        return json.loads(creds.path_for(home / "creds", ADMIN).read_text())["url"] or None
    except (OSError, ValueError, KeyError):
        return None


async def _publish(url: str, creds_file: Path, bars: list[ev.BarClosed]) -> None:
    nc = await connect(url, str(creds_file))
    try:
        await publish_batch(nc.jetstream(), [(b, {}) for b in bars])
    finally:
        await nc.close()


async def _drained(url: str, creds_file: Path, durables: tuple[str, ...]) -> bool:
    """Every durable there (a missing one counts as drained for wait_drained) and drained."""
    nc = await connect(url, str(creds_file))
    try:
        js = nc.jetstream()
        for durable in durables:
            try:
                await js.consumer_info(subjects.EVENTS_STREAM, durable)
            except NotFoundError:
                return False
        return await wait_drained(js, subjects.EVENTS_STREAM, durables, timeout=5)
    finally:
        await nc.close()


async def _events(url: str, creds_file: Path) -> list[ev.Event]:
    nc = await connect(url, str(creds_file))
    try:
        return [decode(m.data) for m in await stream_messages(nc.jetstream(), subjects.EVENTS_STREAM)]
    finally:
        await nc.close()


def run_session(
    tmp: Path, dsn: str, bars: list[ev.BarClosed], n: int, kill: bool, workers_key: str = ""
) -> tuple[list[ev.Event], str]:
    """A session of `ticktape up --services signal` with n workers (signal.workers: n, or
    `workers_key`, which must come to n) over the bars (published as market data), SIGKILLing
    worker 1 as the second part arrives when `kill`; the stream read back after a clean stop, and
    the session verified with `ticktape replay --verify`."""
    home = tmp / f"n{n}"
    stack = Stack(
        home,
        nats_url="nats://127.0.0.1:0",
        pg_dsn=dsn,
        venue_sim="http://127.0.0.1:9",
        config_yaml=CONFIG.format(workers=workers_key or n),
        services=["signal"],
    )
    names = [workers.child_name("signal", i, n) for i in range(n)]
    durables = registry.durables(registry.get("signal"), n)
    admin = creds.path_for(home / "creds", ADMIN)
    market_data = creds.path_for(home / "creds", "market_data")
    try:
        wait_for(lambda: stack.state() == "running" and all(stack.pid(c) for c in names), 90, "the workers")
        url = served_url(home)
        assert url is not None
        first, rest = bars[: len(bars) * 3 // 5], bars[len(bars) * 3 // 5 :]
        asyncio.run(_publish(url, market_data, first))
        wait_for(lambda: asyncio.run(_drained(url, admin, durables)), 120, "the first bars handled")
        asyncio.run(_publish(url, market_data, rest))
        if kill:  # worker 1 dies while its partition's new bars arrive; the supervisor restarts it
            victim = stack.kill(names[1])
            wait_for(lambda: (p := stack.pid(names[1])) not in (None, victim) and stack.alive(p), 60, "the restart")
        wait_for(lambda: asyncio.run(_drained(url, admin, durables)), 180, "every bar handled")
        assert stack.stop(timeout=120) == 0, stack.logs()
        assert stack.state() == "stopped"
    finally:
        stack.stop()
    conf = (home / "nats" / "nats-server.conf").read_text()
    server = start_nats_server(home / "nats", port=int(url.rsplit(":", 1)[1]), config=[conf])
    try:
        events = asyncio.run(_events(url, admin))
        (session,) = [e.session_id for e in events if isinstance(e, ev.SessionStarted)]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ticktape",
                "replay",
                session,
                "--verify",
                "--json",
                "--nats",
                url,
                "--creds",
                admin,
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        server.stop()
    result = json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}
    assert done.returncode == 0 and result["ok"], result
    counts = {f["family"]: f["recorded"] for f in result["families"]}
    assert counts.get("signals"), counts
    return events, session


def per_symbol(events: list[ev.Event]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = collections.defaultdict(list)
    for e in events:
        if isinstance(e, ev.SignalGenerated):
            out[e.symbol].append(encode(e))
    return dict(out)


def test_one_and_four_workers_with_one_killed_then_the_same_signals_none_lost_or_repeated(tmp_path, e2e_dsn):
    bars = partitioned_bars(BARS)
    core = SignalCore(SignalConfig())
    expected = per_symbol([out for bar in bars for out in core.handle(bar)])
    assert {workers.partition(4, VENUE, s) for s in expected} == {0, 1, 2, 3}

    four, _ = run_session(tmp_path, e2e_dsn, bars, 4, kill=True)
    ids = collections.Counter(e.event_id for e in four)
    assert max(ids.values()) == 1, "an event was published twice"
    assert per_symbol(four) == expected
    (chosen,) = [e for e in four if isinstance(e, ev.WorkersChosen)]
    assert (chosen.service, chosen.workers, chosen.requested) == ("signal", 4, "4")

    # auto: these two cheap strategies on a few symbols need one worker (budget 1 s); the choice is
    # recorded with its measurement, and the session's configuration holds the count replay used
    one, _ = run_session(tmp_path, e2e_dsn, bars, 1, kill=False, workers_key="auto")
    assert per_symbol(one) == per_symbol(four)
    (chosen,) = [e for e in one if isinstance(e, ev.WorkersChosen)]
    assert (chosen.workers, chosen.requested, chosen.strategies) == (1, "auto", 2)
    assert chosen.evaluation_ns > 0 and chosen.budget_ns == 1_000_000_000
    (started,) = [e for e in one if isinstance(e, ev.SessionStarted)]
    assert json.loads(started.config_json)["signal"]["workers"] == 1
