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

A live account's closing orders go to its venue through execution's gateway: the cores have
drained once the core has emitted them, long before the venue's fills are back. So after the
second drain the stop also waits (`flat`) until the log shows every position of the
close_positions accounts flat (the venue's fills applied), and drains once more for what those
fills caused; only then are the cores, execution and its gateway with them, stopped.

Bounded: publishing, the drains and the wait for flat positions together get `timeout` seconds
(supervisor.shutdown_timeout_s); when they run out, or the bus refuses, the stop goes on and says
so. The policy is applied only when execution runs in this session: a request left on the log for
a later execution would close positions at some later start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from nats.js import JetStreamContext

from ticktape import accounts as accts
from ticktape import ids, subjects
from ticktape.events import PositionUpdated, ShutdownRequested

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
    flat: Callable[[Sequence[str], Callable[[], bool], float], bool] | None = None,
) -> bool:
    """The cores' drain with the accounts' policies applied in between (see the module
    docstring); whether the cores drained in the end. With no policy it is the plain drain.
    flat(names, alive, timeout): whether those accounts' positions on the log are all flat
    before the timeout (waiting for them; None: not waited for)."""
    drained = drain(alive, DRAIN_S)
    events = requests(accounts, session_id, time.time_ns())
    if not events:
        return drained
    started = time.monotonic()

    def left() -> float:
        return max(0.5, timeout - (time.monotonic() - started))

    names = ", ".join(f"{e.account} {e.action}" for e in events)
    try:
        asyncio.run(publish(url, creds, events, timeout))
    except Exception as exc:  # noqa: BLE001 - a dead or refusing bus must not stop the stop
        say(f"on_shutdown not applied ({names}): {type(exc).__name__}: {exc}")
        return drained
    say(f"on_shutdown applied ({names}); waiting for the cores to carry it out")
    drained = drain(alive, left())
    closing = [e.account for e in events if e.action == "close_positions"]
    if flat is None or not closing:
        return drained
    if not flat(closing, alive, left()):
        say(f"on_shutdown: positions of {', '.join(closing)} not flat on the log within the timeout; stopping anyway")
        return drained
    return drain(alive, left())  # what the venue's fills caused


async def open_positions(js: JetStreamContext, stream: str, names: Sequence[str]) -> dict[tuple[str, str], float]:
    """(account, symbol) -> quantity of each position of these accounts the log holds open (the
    last PositionUpdated of each symbol)."""
    from ticktape.bus.reader import read_range
    from ticktape.events.codec import decode

    last: dict[tuple[str, str], float] = {}
    filters = [subjects.positions(name) for name in names]
    async for msg in read_range(js, stream, filters):
        event = decode(msg.data)
        if isinstance(event, PositionUpdated):
            last[(event.account, event.symbol)] = event.quantity
    return {key: q for key, q in last.items() if q != 0}


async def wait_flat(
    js: JetStreamContext, stream: str, names: Sequence[str], timeout: float, alive: Callable[[], bool],
    interval: float = 0.25,
) -> bool:  # fmt: skip
    """Wait until the log holds no open position of these accounts; False when `timeout` passes
    or `alive()` says no core runs any more."""
    deadline = time.monotonic() + timeout
    while await open_positions(js, stream, names):
        if time.monotonic() > deadline or not alive():
            return False
        await asyncio.sleep(interval)
    return True


def flat_on(url: str, creds: str | None, stream: str) -> Callable[[Sequence[str], Callable[[], bool], float], bool]:
    """drain_and_apply's `flat`, reading the log at url with creds (a role that reads the stream)."""

    def flat(names: Sequence[str], alive: Callable[[], bool], timeout: float) -> bool:
        async def run() -> bool:
            from ticktape.bus.connect import connect

            nc = await connect(url, "ticktape-shutdown", creds=creds)
            try:
                return await wait_flat(nc.jetstream(), stream, names, timeout, alive)
            finally:
                await nc.drain()

        try:
            return asyncio.run(asyncio.wait_for(run(), timeout + 5.0))
        except Exception:  # noqa: BLE001 - a dead bus: the stop goes on, and says so
            return False

    return flat
