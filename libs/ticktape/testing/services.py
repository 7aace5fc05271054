"""Run a service shell in-process against a real NATS server (for integration tests)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from ticktape.config import CommonSettings, NatsSettings, PostgresSettings
from ticktape.runtime import Runtime, open_runtime


def common_settings(nats_url: str, pg_dsn: str | None = None, **kwargs: Any) -> CommonSettings:
    """Settings for a service run in a test: its state (e.g. the crash-loop guard's files) under a
    fresh temporary home unless `home` is given."""
    kwargs.setdefault("home", tempfile.mkdtemp(prefix="ticktape-test-home-"))
    return CommonSettings(nats=NatsSettings(url=nats_url), postgres=PostgresSettings(dsn=pg_dsn), **kwargs)


@asynccontextmanager
async def running_service(
    name: str,
    serve: Callable[[Runtime, Any], Coroutine[Any, Any, None]],
    config: Any,
    common: CommonSettings,
) -> AsyncIterator[Runtime]:
    """Start `serve(rt, config)` as a task; on exit set rt.stop, await it and drain."""
    rt = await open_runtime(name, common, raw={})
    task = asyncio.create_task(serve(rt, config))
    try:
        yield rt
        if task.done():
            task.result()
    finally:
        rt.stop.set()
        try:
            await asyncio.wait_for(task, timeout=15)
        finally:
            await rt.nc.drain()
