"""What each paper position held at a past moment, for funding: a settlement is paid on the
quantity held at its funding_time, not on what is held when its FundingRate arrives (it comes
with market data's next poll, minutes later, by when a position may have been opened, grown,
shrunk or closed). Pure state, built from the fills the core applies, in the order it applies
them; trimmed at each settlement applied, and bounded."""

from __future__ import annotations

Key = tuple[str, str]  # (venue, symbol)
KEPT_CHANGES = 1_000  # per account and symbol: more fills than this between two settlements are unusual


class HeldAt:
    """(account, venue/symbol) -> the quantity after each fill, with the fill's time (ns)."""

    def __init__(self) -> None:
        self._changes: dict[tuple[str, Key], list[tuple[int, float]]] = {}

    def filled(self, account: str, key: Key, time_ns: int, quantity: float) -> None:
        """The position is `quantity` from `time_ns` on."""
        changes = self._changes.setdefault((account, key), [])
        changes.append((time_ns, quantity))
        if len(changes) > KEPT_CHANGES:
            del changes[0]

    def at(self, account: str, key: Key, time_ns: int, now: float) -> float:
        """The quantity held at time_ns: after the last fill strictly before it (a fill at the
        settlement instant comes after it); `now` when no fill of the position is known (one
        from before this record began), 0.0 when every known fill is later."""
        changes = self._changes.get((account, key))
        if not changes:
            return now
        held = 0.0
        for t, quantity in changes:
            if t >= time_ns:
                break
            held = quantity
        return held

    def settled(self, key: Key, time_ns: int) -> None:
        """A settlement at time_ns was applied to key: the fills before it matter only as the
        quantity they left (the last of them is kept)."""
        for (_, k), changes in self._changes.items():
            if k != key:
                continue
            before = [i for i, (t, _q) in enumerate(changes) if t < time_ns]
            if len(before) > 1:
                del changes[: before[-1]]
