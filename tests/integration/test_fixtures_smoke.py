import psycopg, nats
async def test_pg(pg_dsn):
    async with await psycopg.AsyncConnection.connect(pg_dsn) as c:
        assert (await (await c.execute("select 1")).fetchone())[0] == 1
async def test_nats(nats_client):
    js = nats_client.jetstream()
    await js.add_stream(name="S", subjects=["a.>"])
    ack = await js.publish("a.b", b"x")
    assert ack.seq == 1
