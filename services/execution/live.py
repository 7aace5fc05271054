"""The execution core's book of a live account's orders: what was sent, what the venue has said
about each, and the fills it reported that cannot be matched to an order yet. Pure state, built
only from the core's inputs, iterated in insertion order.

An order is found by its client order id (both venues echo it on most reports) or else by the
venue's order id (Hyperliquid's fills, Binance's userTrades carry only that), which the core
learns from VenueOrderAccepted. A fill that names neither an order the core knows nor a venue id
it has learnt yet (its acceptance is still on its way, or it is someone else's order on the
account) is parked until an acceptance names its venue order id."""

from __future__ import annotations

from dataclasses import dataclass

from ticktape.events import Envelope, OrderSubmitted, VenueFill

# Closed orders (and applied fill ids) remembered for late reports; beyond that, oldest first out.
REMEMBERED_CLOSED = 10_000
REMEMBERED_FILLS = 100_000
PARKED_MAX = 10_000
# A fill total this close to the order's quantity fills it (venue decimals through floats).
_FULL = 1e-9


@dataclass
class LiveOrder:
    """One order sent to a venue. chain: the event whose correlation its fills keep (the approval,
    or the stop or shutdown that closed the position); expected: what the venue said filled in
    an answer whose status was "filled" (it may be less than `quantity`: the venue rounds the
    quantity down to its lot), else None; reported: the most the venue said had filled (an
    answer's, or the filled quantity of its end): a closed order whose fills fall short of it
    still has fills on their way; deferred_by: the snapshot that first left a comparison involving
    it to the next one (not listed at the venue, its end perhaps on its way; or closed with fills
    still to come): the next snapshot decides (services.execution.reconcile)."""

    order: OrderSubmitted
    chain: Envelope
    client_order_id: str
    venue_order_id: str = ""
    filled: float = 0.0
    expected: float | None = None
    unknown: bool = False
    closed: bool = False
    reported: float = 0.0
    deferred_by: str = ""

    @property
    def signed_remaining(self) -> float:
        rest = max(0.0, self.order.quantity - self.filled)
        return rest if self.order.side == "buy" else -rest

    def done(self) -> bool:
        target = self.order.quantity if self.expected is None else min(self.order.quantity, self.expected)
        return self.filled >= target * (1 - _FULL)


class LiveBook:
    def __init__(self) -> None:
        self.open: dict[str, LiveOrder] = {}  # order_id -> sent and not closed, in submission order
        self._by_order: dict[str, LiveOrder] = {}  # order_id -> open and recently closed
        self._by_client: dict[str, LiveOrder] = {}
        self._by_venue: dict[tuple[str, str], LiveOrder] = {}  # (account, venue order id)
        self._parked: dict[tuple[str, str], list[VenueFill]] = {}
        self._parked_count = 0
        self._applied: dict[str, None] = {}  # fill event ids already applied
        self._closed: dict[str, None] = {}  # order ids closed, oldest first

    def add(self, order: OrderSubmitted, chain: Envelope, client_order_id: str) -> LiveOrder:
        live = LiveOrder(order, chain, client_order_id)
        self.open[order.order_id] = live
        self._by_order[order.order_id] = live
        if client_order_id:
            self._by_client[client_order_id] = live
        return live

    def get(self, order_id: str) -> LiveOrder | None:
        return self._by_order.get(order_id)

    def find(self, account: str, client_order_id: str, venue_order_id: str) -> LiveOrder | None:
        """The order a venue report is about, or None when it names none the core knows."""
        live = self._by_client.get(client_order_id) if client_order_id else None
        if live is None and venue_order_id:
            live = self._by_venue.get((account, venue_order_id))
        return live if live is not None and live.order.account == account else None

    def learn_venue_id(self, live: LiveOrder, venue_order_id: str) -> list[VenueFill]:
        """Record the order's venue id; the fills parked under it, in arrival order."""
        if venue_order_id and not live.venue_order_id:
            live.venue_order_id = venue_order_id
            self._by_venue[(live.order.account, venue_order_id)] = live
        parked = self._parked.pop((live.order.account, venue_order_id), []) if venue_order_id else []
        self._parked_count -= len(parked)
        return parked

    def park(self, fill: VenueFill) -> None:
        self._parked.setdefault((fill.account, fill.venue_order_id), []).append(fill)
        self._parked_count += 1
        while self._parked_count > PARKED_MAX:
            oldest = next(iter(self._parked))
            self._parked[oldest].pop(0)
            self._parked_count -= 1
            if not self._parked[oldest]:
                del self._parked[oldest]

    def applied(self, fill_event_id: str) -> bool:
        return fill_event_id in self._applied

    def mark_applied(self, fill_event_id: str) -> None:
        self._applied[fill_event_id] = None
        if len(self._applied) > REMEMBERED_FILLS:
            del self._applied[next(iter(self._applied))]

    def close(self, live: LiveOrder) -> None:
        live.closed = True
        self.open.pop(live.order.order_id, None)
        self._closed[live.order.order_id] = None
        if len(self._closed) > REMEMBERED_CLOSED:
            oldest = next(iter(self._closed))
            del self._closed[oldest]
            gone = self._by_order.pop(oldest, None)
            if gone is not None:
                self._by_client.pop(gone.client_order_id, None)
                self._by_venue.pop((gone.order.account, gone.venue_order_id), None)

    def awaiting_fills(self, account: str) -> list[LiveOrder]:
        """The account's closed orders (remembered) whose reported fills have not all come yet."""
        return [
            o for o in self._by_order.values()
            if o.closed and o.order.account == account and o.filled < o.reported * (1 - _FULL)
        ]  # fmt: skip

    def in_flight(self, account: str) -> list[LiveOrder]:
        """The account's open orders, in submission order."""
        return [o for o in self.open.values() if o.order.account == account]
