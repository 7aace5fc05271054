"""Typed settings of the HTTP API (section `api` of ticktape.yaml; TICKTAPE_API__PORT and so on)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400 * 30)]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=128)]


class HealthConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When /health answers 503 (score below `threshold`), and what counts as stale or lagging:
    a venue whose newest bar was stored more than `bar_stale_s` ago, a shard report older than
    `status_stale_s`, a durable with more than `max_lag` messages pending or unacknowledged, a
    dead letter in the last `dead_letter_window_s`."""

    threshold: Annotated[float, msgspec.Meta(ge=0, le=100)] = 70.0
    bar_stale_s: Seconds = 180.0
    status_stale_s: Seconds = 90.0
    max_lag: Annotated[int, msgspec.Meta(ge=0)] = 1000
    dead_letter_window_s: Seconds = 300.0


class ApiConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the API listens (port 0: a free one; under `ticktape up` it is chosen and printed
    before the services start) and who may use it:
      reads         `loopback` (default): open to clients on the loopback interface, a bearer token
                    for any other; `token`: a bearer token always
      token_env     the environment variable holding the bearer token of the control endpoints
                    (and of reads that need one); unset or empty: control is refused
      operator_creds the NATS credentials file the control endpoints publish with (the operator
                    role; `ticktape up` passes its own); unset: the API's own connection
    Pages of orders and fills hold at most `page_max` items; the read model keeps the newest
    `max_orders` orders and `max_fills` fills."""

    host: str = "127.0.0.1"
    port: Port = 0
    reads: Literal["loopback", "token"] = "loopback"
    token_env: EnvName = "TICKTAPE_API_TOKEN"
    operator_creds: str | None = None
    page_max: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    max_orders: Annotated[int, msgspec.Meta(ge=1)] = 1_000_000
    max_fills: Annotated[int, msgspec.Meta(ge=1)] = 1_000_000
    performance_window_s: Seconds = 86_400.0
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0
    health: HealthConfig = HealthConfig()
