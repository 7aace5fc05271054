"""Libraries' standard-library log records (nats-py, aiohttp, psycopg, OpenTelemetry) go through
the same redaction as ticktape's own: a secret logged by a stdlib logger, in its arguments, its
message or a traceback, reaches stderr masked, as one JSON line of the service."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SECRETS = ("pg-S3cret-arg", "nats-tok3n-S3cret", "conninfo-S3cret", "dict-S3cret")

SCRIPT = textwrap.dedent(
    f"""
    import logging
    from ticktape import log

    log.configure("market_data", "info")
    logging.getLogger("nats").error("connect to %s failed", "postgresql://tt:{SECRETS[0]}@db:5432/tt")
    try:
        raise ConnectionError("nats://{SECRETS[1]}@127.0.0.1:4222 refused host=db password={SECRETS[2]}")
    except ConnectionError:
        logging.getLogger("aiohttp.client").exception("request failed")
    logging.getLogger("psycopg.pool").warning({{"conninfo": "host=db", "password": "{SECRETS[3]}"}})
    """
)


def test_secret_logged_by_stdlib_logger_is_redacted():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    output = result.stdout + result.stderr
    for secret in SECRETS:
        assert secret not in output, f"{secret} leaked through a stdlib logger"
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {r.get("logger") for r in records} >= {"nats", "aiohttp.client", "psycopg.pool"}
    assert all(r.get("service") == "market_data" for r in records)
    assert any("exception" in r for r in records if r.get("logger") == "aiohttp.client")
