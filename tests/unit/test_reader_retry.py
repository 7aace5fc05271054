"""Readers (replay, export, sessions) ride out a cluster's leader election: JetStream's 503
"temporarily unavailable" is asked again, for a bounded time, then surfaces."""

from __future__ import annotations

import pytest
from nats.js.errors import NotFoundError, ServiceUnavailableError

from ticktape.bus.reader import when_available


async def test_unavailable_then_answered_is_the_answer() -> None:
    calls = []

    async def request() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ServiceUnavailableError()
        return "info"

    assert await when_available(request, wait_s=5) == "info"
    assert len(calls) == 3


async def test_still_unavailable_at_the_deadline_raises_and_other_errors_at_once() -> None:
    async def unavailable() -> None:
        raise ServiceUnavailableError()

    with pytest.raises(ServiceUnavailableError):
        await when_available(unavailable, wait_s=0.5)
    calls = []

    async def missing() -> None:
        calls.append(1)
        raise NotFoundError()

    with pytest.raises(NotFoundError):
        await when_available(missing, wait_s=5)
    assert len(calls) == 1


async def test_a_request_unanswered_in_time_is_asked_again() -> None:
    """A node that just restarted may not answer a JetStream request within its timeout."""
    import nats.errors

    calls = []

    async def slow_then_answered() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise nats.errors.TimeoutError()
        return "consumer"

    assert await when_available(slow_then_answered, wait_s=5) == "consumer"
    assert len(calls) == 2
