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
