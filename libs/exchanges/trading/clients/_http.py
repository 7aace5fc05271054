"""One HTTP exchange with a venue, classified by what it tells the caller about the request's
fate: an answer (any status), NotSent (the connection was never made: the venue saw nothing), or
NoAnswer (the request may have reached the venue: its outcome is unknown).

Signed URLs are sent verbatim (yarl `encoded=True`: the query string is the signed text, a
re-encoding would break the signature) and redirects are never followed (a signed request goes
only where it was addressed). Error messages name the failure's type, never the URL, the headers
or the body: the URL carries a signature and the headers an API key."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import msgspec
from yarl import URL

MAX_BODY_BYTES = 16 * 1024 * 1024  # an answer larger than this is not a venue's


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    retry_after: str | None = None


class NotSent(Exception):
    """Nothing reached the venue (the connection could not be made)."""


class NoAnswer(Exception):
    """The request may have reached the venue but no answer came (timeout, dropped connection).
    sent_ms: the request's own timestamp, when the caller stamped one."""

    sent_ms: int | None = None


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float,
) -> Answer:
    try:
        async with session.request(
            method,
            URL(url, encoded=True),
            data=body,
            headers=dict(headers or {}),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise NoAnswer(f"answer over {MAX_BODY_BYTES} bytes")
                chunks.append(chunk)
            return Answer(response.status, b"".join(chunks), response.headers.get("Retry-After"))
    except aiohttp.ClientConnectorError as exc:
        raise NotSent(type(exc).__name__) from None
    except (TimeoutError, aiohttp.ClientError) as exc:  # asyncio.TimeoutError is TimeoutError
        raise NoAnswer(type(exc).__name__) from None
