"""Which accounts trade a strategy's signals.

A configured strategy's signals go to every account whose `strategies` lists it (or '*'). A
managed strategy (`ticktape strategies`, a StrategyChanged on strategies.<id>) that names an
`account` is traded by that account alone, whatever the accounts' lists say: the change is the
operator's assignment, so a strategy added to test it on a paper account is never also traded by
a live account that lists '*'. One that names no account is routed by the lists, as a configured
one. Changes apply in log order, a revision once (a retried publish, an older revision: ignored).

- pause: nothing changes for risk. The signal core stops signalling; a signal it made before the
  pause is still traded, and what the strategy last signalled stays the account's target.
- retire: from the retirement on (in log order) no account trades its signals; nothing revives
  it (its id cannot be reused). Its positions stay; risk's own exits still close them.
- an account the change names that risk's configuration lacks (the CLI refuses that; a
  configuration changed since): no account trades it."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.risk.config import AccountConfig
from ticktape.events import StrategyChanged


@dataclass
class Routes:
    """The managed strategies' accounts, from their StrategyChanged events."""

    # strategy -> the account its latest change names ("": none, route by the lists); None: retired
    accounts: dict[str, str | None] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)  # the last revision applied, by strategy

    def apply(self, change: StrategyChanged) -> None:
        name = change.strategy
        if change.revision <= self.revisions.get(name, 0) or (name in self.accounts and self.accounts[name] is None):
            return  # applied already, or retired for good
        self.revisions[name] = change.revision
        self.accounts[name] = None if change.status == "retired" else change.account

    def trades(self, account: AccountConfig, strategy: str) -> bool:
        """Whether `account` trades `strategy`'s signals."""
        if strategy not in self.accounts:
            return account.trades(strategy)
        named = self.accounts[strategy]
        if named is None:
            return False
        return account.name == named if named else account.trades(strategy)
