"""The venue gateway's outbox, read back from the event log: every live order execution submitted
(OrderSubmitted, mode live) and what the venue has answered about it so far (venue.> events).

The log is the outbox: the gateway keeps no state of its own, so a gateway killed at any moment
(before a request, after it, before or after its answer was published) finds on restart exactly
the orders whose outcome the log does not hold, asks the venue about each by client order id
(place with query_first: a lost answer is found, never placed twice), and the accepted orders
whose reported fills fall short of what the venue said filled (their fills are asked for again;
fill ids are the venue's, so nothing is stored twice). A fill that comes before the answer naming
its venue order id is parked until that answer, as the execution core does (services.execution.live):
otherwise, once stored, its copy asked for by REST would be dropped as a duplicate and the order
would stay in flight for good. Pure: folding events, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ticktape.events import (
    Event,
    OrderSubmitted,
    VenueCancelRequested,
    VenueFill,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderRejected,
    VenueOrderUnknown,
)

_FULL = 1e-9
PARKED_MAX = 10_000  # fills waiting for their order's venue id; beyond, the oldest are dropped


@dataclass
class Entry:
    """One live order. stored_ns: when the log stored its OrderSubmitted (the age that decides
    whether it may still be sent). answered: accepted or rejected (an unknown outcome is not an
    answer); unknowns: the unknown outcomes published for it; ack_filled: what the venue said
    filled in its answer; filled: the fills reported since; ended: rejected, or its rest canceled
    or expired."""

    order: OrderSubmitted
    stored_ns: int
    answered: bool = False
    unknowns: int = 0
    venue_order_id: str = ""
    status: str = ""
    ack_filled: float = 0.0
    filled: float = 0.0
    ended: bool = False

    @property
    def client_order_id(self) -> str:
        cid = self.order.client_order_id
        return cid if isinstance(cid, str) else ""

    def fills_missing(self) -> bool:
        """Accepted, and the venue said more filled than the fills reported so far say."""
        return self.answered and self.venue_order_id != "" and self.filled < self.ack_filled * (1 - _FULL)

    def settled(self) -> bool:
        """Its outcome is all in the log: refused, ended, or filled (as far as the venue said it filled)."""
        if not self.answered:
            return False
        if self.ended:
            return True
        target = self.ack_filled if self.status == "filled" and self.ack_filled > 0 else self.order.quantity
        return self.filled >= target * (1 - _FULL)


@dataclass
class CancelEntry:
    """A cancel of a venue order the execution core's reconciliation decided (VenueCancelRequested);
    answered once the log holds the venue's VenueOrderCanceled of that order, or the venue said it
    has no such open order."""

    request: VenueCancelRequested
    answered: bool = False


class Outbox:
    def __init__(self, accounts: Iterable[str]) -> None:
        self.accounts = set(accounts)
        self.entries: dict[str, Entry] = {}  # order_id -> entry, in submission order
        self._by_client: dict[str, Entry] = {}
        self._by_venue: dict[tuple[str, str], Entry] = {}
        self._fills: set[str] = set()  # fill event ids counted (membership only)
        self.cancels: dict[tuple[str, str], CancelEntry] = {}  # (account, venue order id) -> cancel
        self._parked: dict[tuple[str, str], list[VenueFill]] = {}  # fills of venue ids not learnt yet

    def apply(self, event: Event, stored_ns: int) -> Entry | CancelEntry | None:
        """Fold one event of the log; the entry of a live order or cancel seen for the first time, else None."""
        entry: Entry | None
        match event:
            case VenueCancelRequested() if event.account in self.accounts:
                key = (event.account, event.venue_order_id)
                if key in self.cancels:
                    return None
                self.cancels[key] = CancelEntry(event)
                return self.cancels[key]
            case OrderSubmitted() if event.mode == "live" and event.account in self.accounts:
                if event.order_id in self.entries:
                    return None
                entry = Entry(event, stored_ns)
                self.entries[event.order_id] = entry
                if entry.client_order_id:
                    self._by_client[entry.client_order_id] = entry
                return entry
            case VenueOrderAccepted():
                entry = self.entries.get(event.order_id)
                if entry is not None:
                    entry.answered = True
                    entry.status = event.status
                    entry.ack_filled = max(entry.ack_filled, event.filled_quantity)
                    self._learn(entry, event.venue_order_id)
            case VenueOrderRejected():
                entry = self.entries.get(event.order_id)
                if entry is not None:
                    entry.answered = entry.ended = True
            case VenueOrderUnknown():
                entry = self.entries.get(event.order_id)
                if entry is not None:
                    entry.unknowns += 1
            case VenueOrderCanceled():
                cancel = self.cancels.get((event.account, event.venue_order_id))
                if cancel is not None:
                    cancel.answered = True
                entry = self.find(event.account, event.client_order_id, event.venue_order_id)
                if entry is not None:
                    entry.ended = True
                    self._learn(entry, event.venue_order_id)
            case VenueFill():
                entry = self.find(event.account, event.client_order_id, event.venue_order_id)
                if entry is not None:
                    self._count(entry, event)
                elif event.account in self.accounts and event.venue_order_id:
                    # before the answer that names its venue order id (Hyperliquid's fills carry
                    # only that): counted once the answer comes, as the core does
                    self._parked.setdefault((event.account, event.venue_order_id), []).append(event)
                    while sum(len(p) for p in self._parked.values()) > PARKED_MAX:
                        oldest = next(iter(self._parked))
                        del self._parked[oldest][0]
                        if not self._parked[oldest]:
                            del self._parked[oldest]
        return None

    def _count(self, entry: Entry, fill: VenueFill) -> None:
        if fill.event_id not in self._fills:
            self._fills.add(fill.event_id)
            entry.filled += fill.quantity
            self._learn(entry, fill.venue_order_id)

    def _learn(self, entry: Entry, venue_order_id: str) -> None:
        if venue_order_id and not entry.venue_order_id:
            entry.venue_order_id = venue_order_id
            self._by_venue[(entry.order.account, venue_order_id)] = entry
        for fill in self._parked.pop((entry.order.account, venue_order_id), []) if venue_order_id else []:
            self._count(entry, fill)

    def find(self, account: str, client_order_id: str, venue_order_id: str) -> Entry | None:
        entry = self._by_client.get(client_order_id) if client_order_id else None
        if entry is None and venue_order_id:
            entry = self._by_venue.get((account, venue_order_id))
        return entry if entry is not None and entry.order.account == account else None

    def unanswered(self) -> list[Entry]:
        """Orders whose outcome the log does not hold (never answered, or only unknown)."""
        return [e for e in self.entries.values() if not e.answered]

    def unanswered_cancels(self) -> list[CancelEntry]:
        return [c for c in self.cancels.values() if not c.answered]

    def in_flight(self, account: str) -> list[Entry]:
        """The account's orders whose outcome is not settled in the log: not answered, or accepted
        and neither ended nor reported filled in full (what the venue said filled, or the order)."""
        return [e for e in self.entries.values() if e.order.account == account and not e.settled()]

    def fills_missing(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.fills_missing()]

    def client_ids(self, account: str) -> dict[str, str]:
        """venue order id -> client order id of the account's orders whose venue id is known."""
        return {
            e.venue_order_id: e.client_order_id
            for e in self.entries.values()
            if e.order.account == account and e.venue_order_id
        }
