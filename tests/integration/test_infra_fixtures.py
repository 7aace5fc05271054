"""The test kit's real servers: a JetStream-enabled nats-server per test, PostgreSQL per session."""

from __future__ import annotations

import psycopg


async def test_pg_dsn_is_a_fresh_database_on_a_real_postgresql(pg_dsn):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        version = (await (await conn.execute("SHOW server_version_num")).fetchone())[0]
        tables = (await (await conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).fetchone())[
            0
        ]
    assert int(version) >= 150000 and tables == 0


async def test_nats_server_has_jetstream_with_dedupe(nats_client):
    js = nats_client.jetstream()
    await js.add_stream(name="S", subjects=["a.>"], duplicate_window=60)
    first = await js.publish("a.b", b"x", headers={"Nats-Msg-Id": "1"})
    again = await js.publish("a.b", b"x", headers={"Nats-Msg-Id": "1"})
    assert first.seq == 1 and again.duplicate and (await js.stream_info("S")).state.messages == 1
