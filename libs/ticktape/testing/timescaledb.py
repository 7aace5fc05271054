"""TimescaleDB in Docker for the test suites (testcontainers), and whether a Docker engine answers.

The embedded PostgreSQL has no TimescaleDB, so the bar archive's hypertable path only ever runs
against this image: TICKTAPE_TEST_PG=timescaledb makes it the session's `pg_server`, and tests
marked `docker` start it themselves. docker and testcontainers are imported lazily, here only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

# PostgreSQL 18, the major version of the embedded server; a pinned tag, never a moving `latest`.
TIMESCALEDB_IMAGE = "timescale/timescaledb:2.29.1-pg18"
DOCKER_PROBE_TIMEOUT_S = 5.0


def docker_unavailable(timeout: float = DOCKER_PROBE_TIMEOUT_S) -> str | None:
    """None when a Docker engine answers where testcontainers will look for one, else why not.

    Quick when there is no socket (fails at once) and bounded by `timeout` otherwise. The API
    version is fixed and /version is asked unversioned (what docker-py's auto-detection does), so
    a failed probe leaves no half-built client behind; docker-py does leak the socket of a failed
    unix connect, which is collected here, under the probe, rather than in some later test."""
    import gc
    import warnings

    import docker  # type: ignore[import-untyped]
    from testcontainers.core.docker_client import get_docker_host

    kwargs = docker.utils.kwargs_from_env()
    host = get_docker_host()  # TC_HOST, DOCKER_HOST or the current docker context, as testcontainers
    if host:
        kwargs["base_url"] = host
        if host.startswith("ssh://"):
            kwargs["use_ssh_client"] = True
    where = kwargs.get("base_url") or docker.constants.DEFAULT_UNIX_SOCKET
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.APIClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=timeout, **kwargs)
            try:
                client.version(api_version=False)
            finally:
                client.close()
        except (docker.errors.DockerException, OSError) as exc:  # requests' errors are OSErrors
            why = f"no Docker engine answers at {where} ({type(exc).__name__}: {exc})"
        else:
            return None
        gc.collect()
    return why


def docker_skip_reason(why: str) -> str:
    return f"needs a Docker engine for testcontainers (TimescaleDB image {TIMESCALEDB_IMAGE}): {why}"


@contextmanager
def timescaledb_container(image: str = TIMESCALEDB_IMAGE) -> Iterator[str]:
    """A TimescaleDB server in a container while the block runs; yields a libpq DSN for the
    superuser `postgres` on database `postgres`. The image creates the extension in template1,
    so every database created on it has TimescaleDB."""
    import secrets

    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(
        image, username="postgres", password=secrets.token_hex(12), dbname="postgres", driver=None
    ).with_env("TIMESCALEDB_TELEMETRY", "off")
    with container:  # removes the container on exit, and when start fails
        yield container.get_connection_url()
