"""Secrets never leave a process: planted in every supported form into the configuration and the
environment, they appear in none of the outputs of the real paths (the session record on the bus,
an exported session file, `ticktape sessions --json`, a service's logs, CLI error messages)."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import nats
import pytest

from tests.support.bars import wave_bars
from ticktape import config as cfg
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.cli.main import main
from ticktape.config import NatsSettings
from ticktape.infra.nats_server import NatsServer, start_nats_server
from ticktape.infra.ports import free_port
from ticktape.sessions import STOPPED, SessionRecorder, started_event, stopped_event
from ticktape.testing.bus import stream_messages
from ticktape.testing.waiting import eventually

NATS_TOKEN = "natsTokenS3cret0"
NATS_PASSWORD = "nats-password-S3cret1"
PG_USERINFO = "pg-userinfo-S3cret2"
PG_QUERY = "pg-query-S3cret3"
PG_SSL_QUERY = "pg-sslquery-S3cret4"
CONNINFO = "conninfo-S3cret5"
CONNINFO_SSL = "conninfo ssl S3cret6"
API_KEY = "AKIAAPIKEYS3CRET7"
API_SECRET = "api-secret-S3cret8"
PRIVATE_KEY = "private-key-S3cret9"
VENUE_PASSWORD = "venue-password-S3cretA"
VENUE_KEY = "venue-query-key-S3cretB"
VENUE_SIGNATURE = "venue-signature-S3cretC"

DSNS = {
    "url": f"postgresql://tt:{PG_USERINFO}@127.0.0.1:1/tt?password={PG_QUERY}&sslpassword={PG_SSL_QUERY}",
    "conninfo": f"host=127.0.0.1 port=1 user=tt password={CONNINFO} sslpassword='{CONNINFO_SSL}' dbname=tt",
}
CONFIG = f"""
venue_sim: "http://sim:{VENUE_PASSWORD}@127.0.0.1:9/?api_key={VENUE_KEY}&signature={VENUE_SIGNATURE}"
signal:
  timeframe: 1m
market_data:
  api_key: {API_KEY}
  api_secret: {API_SECRET}
"""


def planted(dsn_form: str) -> list[str]:
    """The secrets a run with this DSN form plants (the other form's are not there to find)."""
    dsn = [PG_USERINFO, PG_QUERY, PG_SSL_QUERY] if dsn_form == "url" else [CONNINFO, CONNINFO_SSL]
    return [
        NATS_TOKEN,
        NATS_PASSWORD,
        API_KEY,
        API_SECRET,
        PRIVATE_KEY,
        VENUE_PASSWORD,
        VENUE_KEY,
        VENUE_SIGNATURE,
        *dsn,
    ]


def assert_clean(what: str, output: str | bytes, secrets: list[str]) -> None:
    text = output.decode(errors="replace") if isinstance(output, bytes) else output
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"{what} carries {leaked}"


@pytest.fixture
def token_nats(tmp_path: Path):
    server = start_nats_server(tmp_path / "nats-token", config=[f'authorization {{ token: "{NATS_TOKEN}" }}'])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def password_nats(tmp_path: Path):
    server = start_nats_server(
        tmp_path / "nats-password", config=[f'authorization {{ user: alice, password: "{NATS_PASSWORD}" }}']
    )
    try:
        yield server
    finally:
        server.stop()


def with_token(server: NatsServer) -> str:
    return server.url.replace("nats://", f"nats://{NATS_TOKEN}@")


def with_password(server: NatsServer) -> str:
    return server.url.replace("nats://", f"nats://alice:{NATS_PASSWORD}@")


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token_nats: NatsServer, request) -> dict[str, str]:
    """A config file and environment holding every planted secret; the NATS URL carries a token."""
    config = tmp_path / "ticktape.yaml"
    config.write_text(CONFIG)
    env = {
        "TICKTAPE_CONFIG": str(config),
        "TICKTAPE_HOME": str(tmp_path / "home"),
        "TICKTAPE_NATS_URL": with_token(token_nats),
        "TICKTAPE_PG_DSN": DSNS[request.param],
        "TICKTAPE_MARKET_DATA__PRIVATE_KEY": PRIVATE_KEY,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return env


def stored_bytes(url: str) -> bytes:
    async def go() -> bytes:
        nc = await nats.connect(url)
        try:
            msgs = await stream_messages(nc.jetstream(), subjects.EVENTS_STREAM)
        finally:
            await nc.close()
        return b"\n".join(bytes(m.data) + repr(m.headers).encode() + m.subject.encode() for m in msgs)

    return asyncio.run(go())


def publish(url: str, events) -> None:
    async def go() -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await ensure_streams(js, NatsSettings(url=url))
            await publish_batch(js, [(e, {}) for e in events])
        finally:
            await nc.close()

    asyncio.run(go())


def service_logs(env: dict[str, str], nats_url: str, cwd: Path) -> str:
    """stderr of `python -m services.signal` from start to a clean stop."""
    log = cwd / "signal.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.signal"],
            env={**os.environ, **env, "TICKTAPE_NATS_URL": nats_url},
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            asyncio.run(eventually(lambda: b"service starting" in log.read_bytes(), timeout=60, what="signal start"))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return log.read_text()


@pytest.mark.parametrize("environment", ["url", "conninfo"], indirect=True)
def test_planted_secrets_appear_in_no_output(environment, token_nats, password_nats, tmp_path, capsys, monkeypatch):
    secrets = planted("url" if environment["TICKTAPE_PG_DSN"].startswith("postgresql://") else "conninfo")
    url = environment["TICKTAPE_NATS_URL"]
    raw = cfg.load_raw()
    assert raw["postgres"]["dsn"] == environment["TICKTAPE_PG_DSN"]  # planted, where the recorder reads it

    # the session record, as `ticktape up` makes it, on a server that demands the token
    recorder = SessionRecorder(cfg.load_common(raw).nats, raw, ("signal",))
    started = recorder.start()
    publish(url, wave_bars(n=3))
    recorder.stop(STOPPED)
    assert_clean("SessionStarted", started.config_json, secrets)
    assert_clean("the events stream", stored_bytes(url), secrets)

    # `ticktape sessions --json` and `ticktape export`, with the URL from the environment
    capsys.readouterr()
    assert main(["sessions", "--json"]) == 0
    path = tmp_path / "s.ttsession.gz"
    assert main(["export", recorder.session_id, str(path)]) == 0
    out = capsys.readouterr()
    assert recorder.session_id in out.out
    assert_clean("sessions/export output", out.out + out.err, secrets)
    assert_clean("the session file", gzip.decompress(path.read_bytes()), secrets)

    # a service's logs, connecting with user and password
    assert_clean(
        "the signal service's logs", service_logs(environment, with_password(password_nats), tmp_path), secrets
    )

    # error messages naming an unreachable NATS or PostgreSQL
    dead_nats = f"nats://{NATS_TOKEN}@127.0.0.1:{free_port()}"
    assert main(["sessions", "--nats", dead_nats]) == 2
    assert main(["audit", "verify"]) == 2  # TICKTAPE_PG_DSN: nothing listens on port 1
    monkeypatch.setenv("TICKTAPE_NATS_URL", f"nats://{NATS_TOKEN}@192.0.2.1:4222")  # not loopback: not embedded
    assert main(["up", "--services", "signal"]) == 1
    out = capsys.readouterr()
    assert "cannot reach NATS" in out.err and "PostgreSQL" in out.err and "192.0.2.1" in out.err
    assert_clean("CLI errors", out.out + out.err, secrets)


def test_an_old_recording_with_leaked_secrets_is_exported_without_them(nats_url, tmp_path, capsys):
    # what the redaction before DSN query strings and NATS tokens were recognised recorded
    leaky = (
        '{"nats":{"url":"nats://'
        + NATS_TOKEN
        + '@nats:4222"},"postgres":{"dsn":"postgresql://tt@db/tt?password='
        + PG_QUERY
        + "&sslpassword="
        + PG_SSL_QUERY
        + '"},"signal":{"timeframe":"1m"}}'
    )
    start = started_event("20240101T000000Z-0a0b0c", leaky, code="old", services=["signal"], ts_ns=1)
    publish(nats_url, [start, *wave_bars(n=2), stopped_event(start.session_id, STOPPED, 2)])
    path = tmp_path / "old.ttsession.gz"
    assert main(["export", start.session_id, str(path), "--nats", nats_url]) == 0
    body = gzip.decompress(path.read_bytes())
    assert_clean("the re-exported file", body, [NATS_TOKEN, PG_QUERY, PG_SSL_QUERY])
    assert b'\\"timeframe\\":\\"1m\\"' in body  # the configuration is still there, minus its secrets
    assert main(["replay", str(path), "--verify"]) == 0
    capsys.readouterr()


def test_an_old_recording_with_leaked_secrets_is_redacted_on_every_read(nats_url, tmp_path, capsys, monkeypatch):
    from ticktape.replay.catalog import list_sessions, open_stream
    from ticktape.replay.fileformat import SessionFile, write_session_file

    leaky = '{"nats":{"url":"nats://' + NATS_TOKEN + '@nats:4222"},"signal":{"timeframe":"1m"}}'
    start = started_event("20240101T000000Z-0d0e0f", leaky, code="old", services=["signal"], ts_ns=1)
    start = msgspec.structs.replace(start, host=f"postgresql://tt:{PG_USERINFO}@db/tt")
    publish(nats_url, [start, *wave_bars(n=2), stopped_event(start.session_id, STOPPED, 2)])
    # the bus keeps the record as it was written: immutable evidence, cleaned on the way out
    assert NATS_TOKEN.encode() in stored_bytes(nats_url)

    async def catalog() -> list:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            return [e.meta for e in await list_sessions(js, await open_stream(js, subjects.EVENTS_STREAM))]
        finally:
            await nc.close()

    (meta,) = asyncio.run(catalog())
    assert_clean("the catalog's session", msgspec.json.encode(meta), [NATS_TOKEN, PG_USERINFO])
    assert '"timeframe":"1m"' in meta.config  # the configuration is still there, minus its secrets

    capsys.readouterr()
    assert main(["sessions", "--nats", nats_url, "--json"]) == 0
    assert main(["replay", start.session_id, "--verify", "--json", "--nats", nats_url]) == 0
    assert_clean("sessions and replay output", capsys.readouterr().out, [NATS_TOKEN, PG_USERINFO])

    # a session file written before this redaction: its sealed header still holds the secret
    path = tmp_path / "old.ttsession.gz"
    monkeypatch.setattr("ticktape.replay.fileformat.redacted_config", lambda config: config)
    write_session_file(path, msgspec.structs.replace(meta, config=leaky, host=start.host), [])
    monkeypatch.undo()
    with SessionFile(path) as old:
        assert NATS_TOKEN in old.header.session.config
        assert_clean("a session file's session", msgspec.json.encode(old.session), [NATS_TOKEN, PG_USERINFO])
