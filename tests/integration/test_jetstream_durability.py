"""The stack's embedded nats-server runs JetStream with the configured fsync policy (`always`
unless nats.sync_interval says otherwise) and a deliberate max_payload."""

from __future__ import annotations

import asyncio

import nats
import pytest

from ticktape import config as cfg
from ticktape.bus import creds
from ticktape.bus.provision import file_store_bytes
from ticktape.infra.stack import MAX_PAYLOAD, ensure_nats


@pytest.mark.parametrize(("setting", "expected"), [(None, "always"), ("100ms", "100ms")])
def test_embedded_server_runs_with_the_configured_sync_interval(tmp_path, setting, expected):
    raw: dict[str, object] = {"home": str(tmp_path), "nats": {"url": "nats://127.0.0.1:0"}}
    if setting is not None:
        raw["nats"] = {"url": "nats://127.0.0.1:0", "sync_interval": setting}
    common = cfg.load_common(raw)
    url, server = ensure_nats(common)
    assert server is not None
    try:
        conf = (tmp_path / "nats" / "nats-server.conf").read_text()
        assert f"jetstream {{ sync_interval: {expected}, max_file_store: {file_store_bytes(common.nats)} }}" in conf

        async def max_payload() -> int:  # the server admits only ticktape's roles: connect as observer
            path = creds.path_for(creds.creds_dir(common), "observer")
            nc = await nats.connect(url, **creds.connect_options(path))
            try:
                return nc.max_payload
            finally:
                await nc.close()

        assert asyncio.run(max_payload()) == MAX_PAYLOAD
    finally:
        server.stop()
