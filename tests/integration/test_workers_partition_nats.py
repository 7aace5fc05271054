"""ticktape.workers.partition is NATS's own `{{partition(n, ...)}}`: a stream whose subject
transform prefixes each bar with the partition the server computes agrees with ours for every
symbol, so moving the workers onto a subject-transformed source keeps each symbol where it is."""

from __future__ import annotations

from nats.js.api import StreamConfig, SubjectTransform

from ticktape import workers
from ticktape.testing.bus import stream_messages

SYMBOLS = [f"SYM{i}USDT" for i in range(200)] + ["BTCUSDT", "ETHUSDT", "1000PEPEUSDT", "kPEPE", "BTC-PERP"]


async def test_partition_when_compared_with_the_servers_subject_mapping_then_equal(nats_client):
    js = nats_client.jetstream()
    n = 4
    await js.add_stream(
        StreamConfig(
            name="PARTITION_CHECK",
            subjects=["md.bar.*.*.*"],
            subject_transform=SubjectTransform(
                src="md.bar.*.*.*", dest=f"p.{{{{partition({n},1,2)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}"
            ),
        )
    )
    keys = [(venue, symbol) for venue in ("binance_usdm", "hyperliquid") for symbol in SYMBOLS]
    for venue, symbol in keys:
        await js.publish(f"md.bar.{venue}.{symbol}.1m", b"{}", stream="PARTITION_CHECK")
    stored = [m.subject for m in await stream_messages(js, "PARTITION_CHECK", ["p.>"])]
    assert len(stored) == len(keys)
    servers = {(s.split(".")[2], s.split(".")[3]): int(s.split(".")[1]) for s in stored}
    ours = {(venue, symbol): workers.partition(n, venue, symbol) for venue, symbol in keys}
    assert servers == ours
    assert set(ours.values()) == set(range(n))
