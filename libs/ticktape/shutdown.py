"""Each account's `on_shutdown` policy (ticktape.accounts.Account), applied by `ticktape up`'s stop.

The stop sequence (ticktape.supervisor) stops the producers first, so no new bar arrives; then the
decision cores drain what is left. With a policy to apply the drain runs twice
(`drain_and_apply`): first until no signal, approval or order is on its way, so nothing can
reopen a position afterwards; then one ShutdownRequested per account whose policy is not `leave`
is published on control.shutdown, with the operator's credential (control subjects are the
operator's alone), and the cores drain again while execution carries it out: `cancel_orders`
cancels the account's pending orders, `close_positions` also closes every position with
reduce-only orders (paper: filled at once at the mark, no bar needed). It halts nothing, so the
next session trades as usual.

Bounded: publishing and the second drain together get `timeout` seconds
(supervisor.shutdown_timeout_s); when they run out, or the bus refuses, the stop goes on and says
so. The policy is applied only when execution runs in this session: a request left on the log for
a later execution would close positions at some later start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from ticktape import accounts as accts
from ticktape import ids
from ticktape.events import ShutdownRequested

DRAIN_S = 15.0  # the cores' drain before the policies, as without them (SessionRecorder.drain)


def requests(accounts: Sequence[accts.Account], session_id: str, ts_ns: int) -> list[ShutdownRequested]:
    """One ShutdownRequested per account whose on_shutdown is not `leave`, ids derived from the
    session, so a retried publish is dropped as a duplicate."""
    return [
        ShutdownRequested(
            event_id=ids.derive("shutdown", session_id, a.name, a.on_shutdown),
            ts_event=ts_ns,
            ts_init=ts_ns,
            account=a.name,
            action=a.on_shutdown,
            session_id=session_id,
        )
        for a in accounts
        if a.on_shutdown != "leave"
    ]


async def publish(url: str, creds: str | None, events: Sequence[ShutdownRequested], timeout: float) -> None:
    """Publish the requests and wait for JetStream's acks (TimeoutError after `timeout`)."""
    from ticktape.bus.connect import connect_command
    from ticktape.bus.publisher import publish_batch

    async def run() -> None:
        nc, _ = await connect_command(url, "ticktape-shutdown", creds)
        try:
            await publish_batch(nc.jetstream(), [(e, {}) for e in events], attempts=3, timeout=timeout)
        finally:
            await nc.close()

    await asyncio.wait_for(run(), timeout)


def drain_and_apply(
    drain: Callable[[Callable[[], bool], float], bool],
    alive: Callable[[], bool],
    accounts: Sequence[accts.Account],
    session_id: str,
    url: str,
    creds: str | None,
    timeout: float,
    say: Callable[[str], None],
) -> bool:
    """The cores' drain with the accounts' policies applied in between (see the module
    docstring); whether the cores drained in the end. With no policy it is the plain drain."""
    drained = drain(alive, DRAIN_S)
    events = requests(accounts, session_id, time.time_ns())
    if not events:
        return drained
    started = time.monotonic()
    names = ", ".join(f"{e.account} {e.action}" for e in events)
    try:
        asyncio.run(publish(url, creds, events, timeout))
    except Exception as exc:  # noqa: BLE001 - a dead or refusing bus must not stop the stop
        say(f"on_shutdown not applied ({names}): {type(exc).__name__}: {exc}")
        return drained
    say(f"on_shutdown applied ({names}); waiting for the cores to carry it out")
    return drain(alive, max(0.5, timeout - (time.monotonic() - started)))
