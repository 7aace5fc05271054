"""The compose file's bus set-up on a real nats-server: the configuration `ticktape creds
--nats-conf` writes refuses anonymous clients, `ticktape provision` creates the bounded streams
as admin, and a service's credentials may read stream info but not create a stream."""

from __future__ import annotations

import asyncio

import nats
import nats.errors
import pytest
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NotFoundError

from ticktape import config as cfg
from ticktape.bus import creds
from ticktape.cli.main import main
from ticktape.infra.nats_server import start_nats_server
from ticktape.testing.auth import anonymous_reply


def test_compose_bus_admits_only_roles_and_provisions_as_admin(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("TICKTAPE_HOME", str(home))
    monkeypatch.delenv("TICKTAPE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ticktape.yaml here: defaults plus the environment
    conf = tmp_path / "conf" / "nats-server.conf"
    assert main(["creds", "--nats-conf", str(conf)]) == 0
    server = start_nats_server(tmp_path / "nats", config=[conf.read_text()])
    try:
        assert anonymous_reply(server.url).startswith("-ERR")
        monkeypatch.setenv("TICKTAPE_NATS_URL", server.url)
        assert main(["provision", "--wait", "10"]) == 0
        common = cfg.load_common(cfg.load_raw())

        async def check() -> None:
            path = creds.path_for(creds.creds_dir(common), "market_data")
            nc = await nats.connect(server.url, **creds.connect_options(path), max_reconnect_attempts=0)
            try:
                js = nc.jetstream()
                info = await js.stream_info(common.nats.stream)
                assert info.config.max_bytes == common.nats.max_bytes
                with pytest.raises((nats.errors.TimeoutError, APIError)):  # refused: a permissions violation
                    await js.add_stream(StreamConfig(name="ROGUE", subjects=["rogue.>"]))
            finally:
                await nc.close()
            admin = creds.path_for(creds.creds_dir(common), "admin")
            nc = await nats.connect(server.url, **creds.connect_options(admin), max_reconnect_attempts=0)
            try:
                with pytest.raises(NotFoundError):
                    await nc.jetstream().stream_info("ROGUE")
            finally:
                await nc.close()

        asyncio.run(check())
    finally:
        server.stop()
