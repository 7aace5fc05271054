"""What the execution-client tests against in-test venue stand-ins share: a fake clock the clients'
pacing and waits run on (minutes of backoff in no time, every wait recorded), a recorder of the
requests a stand-in received, and a fixture that serves an aiohttp app on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import pytest
from aiohttp import web

START_WALL_MS = 1_717_171_717_000


class FakeTime:
    """Wall ms and monotonic seconds that move only when a client sleeps; sleeps are recorded."""

    def __init__(self, wall_ms: int = START_WALL_MS) -> None:
        self.wall = wall_ms
        self.mono = 1_000.0
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        self.wall += round(seconds * 1000)
        await asyncio.sleep(0)


class Seen(msgspec.Struct, frozen=True):
    """One request as the stand-in received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


async def seen(request: web.Request) -> Seen:
    return Seen(
        request.method,
        request.path,
        request.rel_url.raw_query_string,
        {k: v for k, v in request.headers.items()},
        await request.read(),
    )


Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """serve(app) -> base URL of the app on 127.0.0.1 and a free port; cleaned up after the test."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json", headers=headers)
