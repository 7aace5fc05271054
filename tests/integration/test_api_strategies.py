"""The API's managed strategies on a real nats-server and PostgreSQL, the API as a process: GET
/api/v1/strategies answers from the log's StrategyChanged events; adding, pausing, resuming and
retiring need the bearer token, are checked (400 naming the field, 404, 409) and stored and
published as `ticktape strategies` does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from tests.integration.test_api_service import TOKEN, call, start_api, stop_api
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.reader import read_range
from ticktape.config import NatsSettings
from ticktape.events import StrategyChanged
from ticktape.events.codec import decode
from ticktape.testing import eventually

pytestmark = pytest.mark.timeout(120)
ADD = {"id": "mom", "kind": "ema_cross", "params": {"fast": 3, "slow": 8}, "symbols": ["BTC*"]}


async def test_strategies_through_the_api(nats_url, pg_dsn, tmp_path: Path, monkeypatch) -> None:
    import nats

    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), NatsSettings())
    monkeypatch.setenv("TICKTAPE_PG_DSN", pg_dsn)
    api = await asyncio.to_thread(start_api, nats_url, tmp_path / "home")
    try:

        async def http(path: str, method: str = "GET", body: object = None, token: str | None = TOKEN):
            return await asyncio.to_thread(call, api, path, method, body, token)

        status, _, listed = await http("/api/v1/strategies", token=None)
        assert (status, listed) == (200, {"strategies": []})
        status, _, _ = await http("/api/v1/strategies", "POST", ADD, token=None)
        assert status == 401
        status, kind, problem = await http("/api/v1/strategies", "POST", {**ADD, "params": {"fast": "x"}})
        assert status == 400 and kind.startswith("application/problem+json") and "params.fast" in problem["detail"]
        async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
            cur = await conn.execute("SELECT count(*) FROM strategies")
            assert (await cur.fetchone()) == (0,)  # refused before anything is stored

        status, _, accepted = await http("/api/v1/strategies", "POST", ADD)
        assert status == 202, accepted
        assert (accepted["action"], accepted["strategy"]["status"], accepted["strategy"]["version"]) == (
            "add",
            "live",
            1,
        )
        status, _, problem = await http("/api/v1/strategies", "POST", ADD)
        assert status == 409 and "exists already" in problem["detail"]
        status, _, _ = await http("/api/v1/strategies/mom/pause", "POST")
        assert status == 202
        status, _, problem = await http("/api/v1/strategies/mom/pause", "POST")
        assert status == 409 and "paused" in problem["detail"]
        status, _, _ = await http("/api/v1/strategies/nope/retire", "POST")
        assert status == 404

        async def listed_paused() -> bool:
            _, _, body = await http("/api/v1/strategies")
            return [(s["id"], s["status"], s["version"]) for s in body["strategies"]] == [("mom", "paused", 2)]

        await eventually(listed_paused, timeout=20, what="the read model to fold the changes")
        msgs = [m async for m in read_range(nc.jetstream(), subjects.EVENTS_STREAM, [subjects.ALL_STRATEGIES])]
        changes = [decode(m.data) for m in msgs]
        assert all(isinstance(c, StrategyChanged) for c in changes)
        assert [(c.action, c.revision) for c in changes] == [("add", 1), ("pause", 2)]  # type: ignore[union-attr]
        assert (
            accepted["event_id"] == changes[0].event_id and accepted["stream_seq"] == msgs[0].metadata.sequence.stream
        )
    finally:
        await asyncio.to_thread(stop_api, api)
        await nc.close()
