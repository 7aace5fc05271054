"""The trading accounts (top-level section `accounts:`), one list read by risk and execution alike.

Each account declares its venue, mode, credentials (environment variable NAMES, never values),
initial equity, the strategies that feed it and all its limits, risk's and execution's together,
so the two services cannot disagree about an account. Documents written before this section put
the accounts in `risk.accounts` and `execution.accounts`; `upcast` moves them here (merged by
name, a ConfigError when they disagree), so recorded sessions still replay."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from ticktape.venues import BINANCE_USDM, HYPERLIQUID

# An account name becomes a subject token (risk.approved.<account>.<symbol>, orders.<account>.*),
# so no dots; "*" is reserved for "every account" in EmergencyStop/ResumeTrading.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Positive = Annotated[float, msgspec.Meta(gt=0)]
# The NAME of an environment variable holding a credential (its value is never in the config).
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
Address = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}$")]
# A loss as a fraction of equity: 0.1 = 10 %.
LossFraction = Annotated[float, msgspec.Meta(gt=0, lt=1)]
ShutdownPolicy = Literal["leave", "cancel_orders", "close_positions"]
# Which of a venue's networks a live account trades on (ticktape.live.endpoint).
Network = Literal["mainnet", "testnet"]

LIVE_UNAVAILABLE = "live trading is not available in this build"
# The venues a live account may trade at (the execution clients of exchanges.trading.clients).
LIVE_VENUES = (BINANCE_USDM, HYPERLIQUID)
# The credential variables each live venue needs (Hyperliquid: the key of the account or of its
# API wallet; account_address and vault_address are addresses, not secrets).
LIVE_CREDENTIALS: dict[str, tuple[str, ...]] = {
    BINANCE_USDM: ("api_key_env", "api_secret_env"),
    HYPERLIQUID: ("wallet_key_env",),
}
_CREDENTIAL_FIELDS = ("api_key_env", "api_secret_env", "wallet_key_env")


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class AccountLimits(_Strict, frozen=True, kw_only=True):
    """Risk's sizing and limits and execution's, in one place.

    Risk: target notional = fraction x equity per signal, capped per symbol at
    max_notional_per_symbol and in all at max_gross_exposure (absolute notionals); shorts only
    with allow_short. Execution: an approval that would lift gross exposure above max_leverage x
    equity is canceled ("max_leverage"). max_gross_exposure must be <= max_leverage x
    initial_equity, or execution would cancel approvals risk allows (checked at load).

    Risk that stops the bleeding (services/risk/core.py), each off unless set, so a recording
    made before these keys replays as it ran. Halts (a RiskHalted event, risk's own, no operator
    needed): max_drawdown (equity this fraction below its peak), max_daily_loss (below the
    equity the UTC day of event time opened with); on_breach: "halt" (cancel pending orders) or
    "flatten" (also close every position); sticky until `ticktape resume`, which re-arms both
    from the equity then. Per signal: max_order_notional (one order's quantity x price),
    max_open_positions (symbols held or on order), cooldown_minutes (no new entry in a symbol for
    that many minutes of event time after its stop-loss). Per position: stop_loss / take_profit,
    fractions of the average entry price: risk approves a reduce-only close on the mark that
    crosses it. max_margin_use: an order to a non-flat target is refused when the initial margin
    of the account's gross exposure after it (gross / max_leverage) would take more than this
    fraction of equity ("max_margin_use"). Orders that only reduce a position are never refused
    by these limits."""

    fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.1
    max_notional_per_symbol: Positive = 5_000.0
    max_gross_exposure: Positive = 20_000.0
    allow_short: bool = True
    max_leverage: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 10.0
    max_drawdown: LossFraction | None = None
    max_daily_loss: LossFraction | None = None
    on_breach: Literal["halt", "flatten"] = "halt"
    max_order_notional: Positive | None = None
    max_open_positions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stop_loss: LossFraction | None = None
    take_profit: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    cooldown_minutes: Annotated[float, msgspec.Meta(ge=0, le=525_600)] = 0.0
    max_margin_use: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None


class ReconcilePolicy(_Strict, frozen=True, kw_only=True):
    """How a live account's differences with its venue are resolved (services.execution.reconcile),
    at start and every live.reconcile_every_s. unknown_orders: an order open at the venue the log
    does not know: cancel it (default), adopt it (its fills count) or alert (the account does not
    trade until a reconciliation finds it gone). positions: a position the log does not agree with:
    adopt the venue's quantity and entry price, or alert (default: the account does not trade).
    balances: a wallet balance that differs: adopt the venue's (default; funding and transfers
    change it) or alert."""

    unknown_orders: Literal["cancel", "adopt", "alert"] = "cancel"
    positions: Literal["adopt", "alert"] = "alert"
    balances: Literal["adopt", "alert"] = "adopt"


class Account(_Strict, frozen=True, kw_only=True):
    """One trading account.

    venue: the venue it will trade at (a key of `venues`); None (default) = in paper mode it
    trades every venue's signals, as before this section existed. mode: "paper" (default) or
    "live": a live account must name its venue (LIVE_VENUES) and the variables of its
    credentials (LIVE_CREDENTIALS), and is loaded by risk and execution only when the document's
    `live` key is true, which `ticktape up --live` sets after its checks (live_problems,
    ticktape.live). network: mainnet or testnet for this account (None: venues.<venue>.network;
    a live account needs one of the two). strategies: the strategy names whose signals it trades
    ("*" = all). Credentials are environment variable names (api_key_env/api_secret_env, or for
    Hyperliquid wallet_key_env and account_address), checked for shape only and never read in
    paper mode; vault_address: a Hyperliquid vault / sub-account to trade for. on_shutdown: what
    `ticktape up`'s stop does to the account before the cores stop (ticktape.shutdown): leave
    (default: nothing), cancel_orders, close_positions (reduce-only, paper: at the mark).
    reconcile: a live account's reconciliation policy (ReconcilePolicy; unused in paper mode)."""

    name: Name = "paper-main"
    venue: str | None = None
    mode: Literal["paper", "live"] = "paper"
    network: Network | None = None
    initial_equity: Positive = 10_000.0
    strategies: tuple[str, ...] = ("ensemble9",)
    limits: AccountLimits = AccountLimits()
    api_key_env: EnvName | None = None
    api_secret_env: EnvName | None = None
    wallet_key_env: EnvName | None = None
    account_address: Address | None = None
    vault_address: Address | None = None
    on_shutdown: ShutdownPolicy = "leave"
    reconcile: ReconcilePolicy = ReconcilePolicy()


DEFAULT_ACCOUNTS: tuple[Account, ...] = (Account(),)


def problems(accounts: tuple[Account, ...], venues: tuple[str, ...]) -> list[str]:
    """What is wrong with the list, each problem prefixed by its key path (empty: fine)."""
    found: list[str] = []
    if not accounts:
        found.append("accounts: must list at least one account")
    first: dict[str, int] = {}
    for i, a in enumerate(accounts):
        at = f"accounts[{i}]"
        if a.name in first:
            found.append(f"{at}.name: duplicate account name {a.name!r} (also accounts[{first[a.name]}].name)")
        first.setdefault(a.name, i)
        if a.mode == "live":
            found.extend(_live_shape(a, at))
        if a.venue is not None and a.venue not in venues:
            found.append(f"{at}.venue: unknown venue {a.venue!r}; known: {', '.join(venues)}")
        if not a.strategies:
            found.append(f"{at}.strategies: must list strategy names or '*'")
        lim = a.limits
        if lim.max_notional_per_symbol > lim.max_gross_exposure:
            found.append(
                f"{at}.limits.max_notional_per_symbol: must be <= max_gross_exposure "
                f"(got {lim.max_notional_per_symbol:g} > {lim.max_gross_exposure:g})"
            )
        if lim.cooldown_minutes > 0 and lim.stop_loss is None:
            found.append(f"{at}.limits.cooldown_minutes: applies after a stop-loss exit; set limits.stop_loss too")
        if lim.on_breach == "flatten" and lim.max_drawdown is None and lim.max_daily_loss is None:
            found.append(f"{at}.limits.on_breach: flatten needs limits.max_drawdown or limits.max_daily_loss")
        if lim.max_order_notional is not None and lim.max_order_notional > lim.max_gross_exposure:
            found.append(
                f"{at}.limits.max_order_notional: must be <= max_gross_exposure "
                f"(got {lim.max_order_notional:g} > {lim.max_gross_exposure:g})"
            )
        ceiling = lim.max_leverage * a.initial_equity
        if lim.max_gross_exposure > ceiling:
            found.append(
                f"{at}.limits.max_leverage: {lim.max_leverage:g} x initial_equity {a.initial_equity:g} = "
                f"{ceiling:g} is below max_gross_exposure {lim.max_gross_exposure:g}, so execution would "
                f"cancel approvals risk allows: raise max_leverage to at least "
                f"{lim.max_gross_exposure / a.initial_equity:g} or lower max_gross_exposure"
            )
    return found


def _live_shape(a: Account, at: str) -> list[str]:
    """What a live account must declare: a venue that has an execution client and the names of
    the variables holding its credentials (their values are checked by `ticktape up --live`).
    Messages never put a credential key path right before a colon: ticktape.redact would mask the
    word after it."""
    if a.venue is None:
        return [f"{at}.venue: a live account must name its venue ({' or '.join(LIVE_VENUES)})"]
    if a.venue not in LIVE_VENUES:
        return [f"{at}.venue: live trading is on {' or '.join(LIVE_VENUES)} only (got {a.venue!r})"]
    needed = LIVE_CREDENTIALS[a.venue]
    found = [
        f"{at}.{key} is missing: a live {a.venue} account names the environment variable that holds its "
        + ("API key" if key == "api_key_env" else "API secret" if key == "api_secret_env" else "private key")
        for key in needed
        if getattr(a, key) is None
    ]
    found.extend(
        f"{at}.{key} is set but not used by a {a.venue} account (it uses {' and '.join(needed)})"
        for key in _CREDENTIAL_FIELDS
        if key not in needed and getattr(a, key) is not None
    )
    if a.venue != HYPERLIQUID:
        found.extend(
            f"{at}.{key} is set but is a Hyperliquid address, not used by a {a.venue} account"
            for key in ("account_address", "vault_address")
            if getattr(a, key) is not None
        )
    return found


def credential_variables(account: Account) -> tuple[str, ...]:
    """The names of the environment variables holding the account's credentials (set ones only)."""
    return tuple(v for v in (getattr(account, k) for k in _CREDENTIAL_FIELDS) if v is not None)


def live_problems(accounts: tuple[Account, ...], *, enabled: bool, available: bool) -> list[str]:
    """Why the accounts cannot be loaded to trade (empty: they can). A live account needs the
    document's `live` key (enabled), which only `ticktape up --live` sets, after its checks, and an
    execution service that declares it can trade live (available); without either, loading it
    to trade is a config error, so nothing trades a live account as paper, or live by accident."""
    found: list[str] = []
    for i, a in enumerate(accounts):
        if a.mode != "live":
            continue
        at = f"accounts[{i}].mode"
        if not enabled:
            found.append(
                f"{at}: account {a.name!r} is live: start it with `ticktape up --live`, which checks its "
                "credentials and the bus, shows it and counts down (or use mode: paper)"
            )
        elif not available:
            found.append(f"{at}: account {a.name!r}: {LIVE_UNAVAILABLE} (execution has no live path; use mode: paper)")
    return found


# Legacy keys: risk.accounts[i] and execution.accounts[i] fields -> where they live now.
_RISK_TOP = ("name", "initial_equity", "strategies")
_RISK_LIMITS = ("fraction", "max_notional_per_symbol", "max_gross_exposure", "allow_short")
_EXEC_TOP = ("name", "initial_equity")
_EXEC_LIMITS = ("max_leverage",)
_LEGACY_DEFAULT = [{"name": "paper-main", "initial_equity": 10_000.0}]  # both services' old default


def upcast(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The document with legacy `risk.accounts` / `execution.accounts` moved into a top-level
    `accounts` list (a copy; the input is untouched; a document without them is returned as is).

    A side without the key had one default account (paper-main, 10,000), as the services did.
    The two sides must list the same names in the same order with the same initial_equity;
    otherwise (or when `accounts` is also set) a ValueError names the key paths and how to
    migrate. Unknown or mistyped fields are left for the decoder (which names them)."""
    risk, execution = raw.get("risk"), raw.get("execution")
    legacy = [
        (section, doc["accounts"])
        for section, doc in (("risk", risk), ("execution", execution))
        if isinstance(doc, Mapping) and "accounts" in doc
    ]
    if not legacy:
        return dict(raw)
    if "accounts" in raw:
        keys = " and ".join(f"{s}.accounts" for s, _ in legacy)
        raise ValueError(f"{keys}: replaced by the top-level accounts section, which is also set; remove {keys}")
    given = dict(legacy)
    sides = {s: given.get(s, _LEGACY_DEFAULT) for s in ("risk", "execution")}
    for section, items in sides.items():
        if not isinstance(items, list) or not all(isinstance(x, Mapping) for x in items):
            raise ValueError(f"{section}.accounts: expected a list of accounts (move it to the top-level accounts)")
    risk_items, exec_items = sides["risk"], sides["execution"]
    names_r = [x.get("name", "paper-main") for x in risk_items]
    names_e = [x.get("name", "paper-main") for x in exec_items]
    if names_r != names_e:
        raise ValueError(
            f"risk.accounts and execution.accounts list different accounts ({names_r} vs {names_e}): "
            "declare each account once in the top-level accounts section instead"
        )
    merged: list[dict[str, Any]] = []
    for i, (r, e) in enumerate(zip(risk_items, exec_items, strict=True)):
        eq_r, eq_e = r.get("initial_equity", 10_000.0), e.get("initial_equity", 10_000.0)
        if eq_r != eq_e:
            raise ValueError(
                f"risk.accounts[{i}].initial_equity ({eq_r}) and execution.accounts[{i}].initial_equity "
                f"({eq_e}) disagree: declare the account once in the top-level accounts section instead"
            )
        account: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        for source, top, lim in ((r, _RISK_TOP, _RISK_LIMITS), (e, _EXEC_TOP, _EXEC_LIMITS)):
            for key, value in source.items():
                if key in lim:
                    limits[key] = copy.deepcopy(value)
                elif key in top or key not in (_RISK_TOP + _RISK_LIMITS + _EXEC_TOP + _EXEC_LIMITS):
                    account[key] = copy.deepcopy(value)  # an unknown key reaches the decoder
        if limits:
            account["limits"] = limits
        merged.append(account)
    doc = dict(raw)
    for section, _ in legacy:
        rest = {k: v for k, v in doc[section].items() if k != "accounts"}
        doc[section] = rest
    doc["accounts"] = merged
    return doc
