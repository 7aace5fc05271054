"""Per-IP limits as a venue enforces them, counted over all of an address's connections:
open connections, subscriptions, messages received in any 60 s window, and REST request weight
in any 60 s window. Each limit None is not enforced. The peaks and refusals are kept so tests
can see that a client stayed within.

The venues document the limits, not what happens beyond them (Hyperliquid: "10 websocket
connections", "1000 websocket subscriptions", "2000 messages sent to Hyperliquid per minute
across all websocket connections"); the simulator's answers are its own choice, stated where
they are made (venuesim.ws_hyperliquid)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

MESSAGE_WINDOW_S = 60.0


@dataclasses.dataclass
class IpLimits:
    """The limits of one venue endpoint and its counters per IP address."""

    max_connections: int | None = None
    max_subscriptions: int | None = None
    max_messages_per_minute: int | None = None
    max_rest_weight_per_minute: int | None = None
    wall: Callable[[], float] = time.monotonic
    connections: Counter[str] = dataclasses.field(default_factory=Counter)
    subscriptions: Counter[str] = dataclasses.field(default_factory=Counter)
    _messages: dict[str, deque[float]] = dataclasses.field(default_factory=dict)
    _rest: dict[str, deque[tuple[float, int]]] = dataclasses.field(default_factory=dict)
    peak_rest_weight_per_minute: int = 0
    refused_rest: int = 0
    peak_connections: int = 0
    peak_subscriptions: int = 0
    peak_messages_per_minute: int = 0
    refused_connections: int = 0
    refused_subscriptions: int = 0
    refused_messages: int = 0

    def connect(self, ip: str) -> bool:
        """Count a new connection; False (refused, not counted) beyond max_connections."""
        if self.max_connections is not None and self.connections[ip] >= self.max_connections:
            self.refused_connections += 1
            return False
        self.connections[ip] += 1
        self.peak_connections = max(self.peak_connections, self.connections[ip])
        return True

    def disconnect(self, ip: str, subscriptions: int) -> None:
        self.connections[ip] -= 1
        self.subscriptions[ip] -= subscriptions

    def message(self, ip: str) -> bool:
        """Count one message received from ip; False (refused) beyond max_messages_per_minute in
        the last 60 s. A refused message is not counted (it is not processed)."""
        now = self.wall()
        times = self._messages.setdefault(ip, deque())
        while times and now - times[0] >= MESSAGE_WINDOW_S:
            times.popleft()
        if self.max_messages_per_minute is not None and len(times) >= self.max_messages_per_minute:
            self.refused_messages += 1
            return False
        times.append(now)
        self.peak_messages_per_minute = max(self.peak_messages_per_minute, len(times))
        return True

    def rest_allowed(self, ip: str) -> bool:
        """Whether a REST request from ip may be served: False (refused, counted) while its weight
        in the last 60 s is at max_rest_weight_per_minute or more."""
        if self.max_rest_weight_per_minute is not None and self._rest_weight(ip) >= self.max_rest_weight_per_minute:
            self.refused_rest += 1
            return False
        return True

    def rest_spent(self, ip: str, weight: int) -> None:
        """Charge a served request's weight to ip."""
        self._rest.setdefault(ip, deque()).append((self.wall(), weight))
        self.peak_rest_weight_per_minute = max(self.peak_rest_weight_per_minute, self._rest_weight(ip))

    def _rest_weight(self, ip: str) -> int:
        now, spent = self.wall(), self._rest.setdefault(ip, deque())
        while spent and now - spent[0][0] >= MESSAGE_WINDOW_S:
            spent.popleft()
        return sum(weight for _, weight in spent)

    def subscribe(self, ip: str) -> bool:
        """Count one subscription; False (refused, not counted) beyond max_subscriptions."""
        if self.max_subscriptions is not None and self.subscriptions[ip] >= self.max_subscriptions:
            self.refused_subscriptions += 1
            return False
        self.subscriptions[ip] += 1
        self.peak_subscriptions = max(self.peak_subscriptions, self.subscriptions[ip])
        return True

    def unsubscribe(self, ip: str) -> None:
        self.subscriptions[ip] -= 1

    def snapshot(self) -> dict[str, Any]:
        """The limits, the peaks over all addresses, and the refusals (GET /_sim/stats)."""
        return {
            "max_connections": self.max_connections,
            "max_subscriptions": self.max_subscriptions,
            "max_messages_per_minute": self.max_messages_per_minute,
            "max_rest_weight_per_minute": self.max_rest_weight_per_minute,
            "peak_rest_weight_per_minute": self.peak_rest_weight_per_minute,
            "refused_rest": self.refused_rest,
            "peak_connections": self.peak_connections,
            "peak_subscriptions": self.peak_subscriptions,
            "peak_messages_per_minute": self.peak_messages_per_minute,
            "refused_connections": self.refused_connections,
            "refused_subscriptions": self.refused_subscriptions,
            "refused_messages": self.refused_messages,
        }
