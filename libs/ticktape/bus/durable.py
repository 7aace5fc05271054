"""(Re)creating a durable pull consumer that starts at a given stream sequence.

Services that keep their own position (a core's ack floor, the audit chain's head) point their
durable right after it on every start, so nothing older is redelivered out of order."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError


async def recreate_durable(
    js: JetStreamContext,
    stream: str,
    name: str,
    start_seq: int,
    *,
    ack_wait: float,
    max_ack_pending: int,
    filter_subjects: Sequence[str] | None = None,
    max_deliver: int = -1,
) -> None:
    """max_deliver: deliveries of one message before the server stops redelivering it (-1: no
    limit). A backstop: consumers that set it count attempts themselves and dead-letter an input
    that fails its last one."""
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(stream, name)
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start_seq,
            filter_subjects=list(filter_subjects) if filter_subjects else None,
            ack_wait=ack_wait,
            max_ack_pending=max_ack_pending,
            max_deliver=max_deliver,
        ),
    )


async def carry_over(js: JetStreamContext, stream: str, wanted: Sequence[str], siblings: Sequence[str]) -> list[str]:
    """When a service starts with another worker count (ticktape.workers): each durable of
    `wanted` that does not exist yet is created at the lowest ack floor of the `siblings` that do
    (the durables of the previous layout), so its worker rebuilds its state from the stream up to
    there and goes on after it instead of handling the whole stream again; then the siblings not
    wanted are deleted (nothing reads them any more). Nothing happens on a stream where none of
    them exists (a first start). Returns what it did, one line each."""
    floors: dict[str, int] = {}
    for name in dict.fromkeys([*wanted, *siblings]):
        with contextlib.suppress(NotFoundError):
            info = await js.consumer_info(stream, name)
            floors[name] = info.ack_floor.stream_seq if info.ack_floor else 0
    if not floors:
        return []
    floor = min(floors.values())
    done = []
    for name in wanted:
        if name not in floors:  # its worker re-creates it with its own settings, after the same floor
            await recreate_durable(js, stream, name, floor + 1, ack_wait=30.0, max_ack_pending=256)
            done.append(f"created durable {name} after stream sequence {floor}")
    for name in floors:
        if name not in wanted:
            await js.delete_consumer(stream, name)
            done.append(f"deleted durable {name} (not in the new worker layout)")
    return done
