"""The live-trading gate: what `ticktape up --live` checks before any account trades real money.

All of these must hold, in this order (ticktape.cli.up): the configuration's `live` key is not set
by hand (up sets it, TICKTAPE_LIVE, for the services it starts, and only after the gate; risk and
execution load live accounts only then, ticktape.config.load_accounts); at least one account has
mode: live and, without --live, none has; every live account resolves an endpoint (`endpoint`:
mainnet or testnet by `accounts[i].network` or `venues.<venue>.network`, or the venue simulator
under venue_sim) and finds its credentials in the environment (`credential_problems`: the
variable is named, its value never); the bus admits no client without credentials
(`bus_problem`); then every live account is shown with its venue, endpoint and limits
(`announce`) and a visible countdown gives the operator time to stop it (`countdown`). Execution
resolves its endpoints with the same `endpoint`, so what the gate shows is where orders go."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO
from urllib.parse import urlsplit

import msgspec

from ticktape import accounts as accts
from ticktape import config as cfg
from ticktape import registry
from ticktape.redact import redact_text
from ticktape.venues import BINANCE_USDM, HYPERLIQUID

EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: the gate passed, but this build's execution cannot trade live
COUNTDOWN_S = 5
KEY = "live"  # the document key (and TICKTAPE_LIVE, its environment alias) up sets after the gate
ENV = "TICKTAPE_LIVE"
# No account may trade before it has reconciled with its venue (issue #8 item 8): the venue's
# open orders, positions and balances against the event log, every difference an event resolved by
# policy (services.execution.reconcile). Execution's core cancels a live account's approvals
# ("not_reconciled") until its first AccountReconciled, and its gateway sends no order submitted
# after it started until the core has reconciled the snapshot it took at that start.
RECONCILES_ON_START = True
UNAVAILABLE = (
    f"{accts.LIVE_UNAVAILABLE}: every check passed, but this build cannot trade live (its execution declares "
    "no live path, or does not reconcile a live account with its venue before it trades); nothing was started "
    "and no order can reach an exchange. Use mode: paper to run this configuration."
)


def can_trade_live() -> bool:
    """Whether `ticktape up --live` may start live trading after its checks: execution has a live
    path (cfg.live_execution_available) and live accounts are reconciled on start."""
    return RECONCILES_ON_START and cfg.live_execution_available()


class Refused(Exception):
    """The gate refuses: the message says why and what to do; `code` is the exit code."""

    def __init__(self, message: str, code: int = cfg.EXIT_CONFIG) -> None:
        super().__init__(message)
        self.code = code


class Endpoint(NamedTuple):
    """Where a live account trades. network: what the configuration says (mainnet or testnet;
    also the chain Hyperliquid signs for); url: where its requests go, the venue simulator's when
    simulated (venue_sim)."""

    venue: str
    network: accts.Network
    url: str
    simulated: bool

    @property
    def mainnet(self) -> bool:
        return self.network == "mainnet"

    def describe(self) -> str:
        if self.simulated:
            return f"venue simulator {self.url} (configured for {self.network})"
        return f"MAINNET {self.url} (real money)" if self.mainnet else f"testnet {self.url}"


class LiveAccount(NamedTuple):
    position: int  # its index in accounts (key paths)
    account: accts.Account
    endpoint: Endpoint


def venue_urls(venue: str) -> dict[accts.Network, str]:
    """The venue's trading endpoints as its execution client knows them (MAINNET_URL, TESTNET_URL)."""
    if venue == BINANCE_USDM:
        from exchanges.trading.clients import binance_usdm as client
    elif venue == HYPERLIQUID:
        from exchanges.trading.clients import hyperliquid as client  # type: ignore[no-redef]
    else:
        raise ValueError(f"no live trading at {venue!r}; live venues: {', '.join(accts.LIVE_VENUES)}")
    return {"mainnet": client.MAINNET_URL, "testnet": client.TESTNET_URL}


def network_of(account: accts.Account, venues: cfg.VenuesSettings) -> accts.Network | None:
    """The account's own network, else its venue's (None: neither says)."""
    if account.network is not None or account.venue is None:
        return account.network
    return venues.of(account.venue).network


def endpoint(account: accts.Account, common: cfg.CommonSettings, index: int = 0) -> Endpoint:
    """Where the live account trades; ConfigError (naming the keys) when the configuration does
    not say mainnet or testnet: a live account never falls back to either."""
    at = f"accounts[{index}]"
    if account.venue not in accts.LIVE_VENUES:
        raise cfg.ConfigError(f"{at}.venue: live trading is on {' or '.join(accts.LIVE_VENUES)} only")
    network = network_of(account, common.venues)
    if network is None:
        raise cfg.ConfigError(
            f"{at}.network: live account {account.name!r} must say where it trades: set {at}.network or "
            f"venues.{account.venue}.network to testnet (first) or mainnet"
        )
    if common.venue_sim:
        return Endpoint(account.venue, network, f"{common.venue_sim.rstrip('/')}/{account.venue}", True)
    return Endpoint(account.venue, network, venue_urls(account.venue)[network], False)


def credential_problems(live: Sequence[LiveAccount], environ: Mapping[str, str]) -> list[str]:
    """One line per live account whose credentials are missing or unusable, naming the variable
    (and the key that names it), never its value; empty when every one is there and usable."""
    from exchanges.trading.clients import credentials

    found: list[str] = []
    for item in live:
        a, at = item.account, f"accounts[{item.position}]"
        keys = accts.LIVE_CREDENTIALS[a.venue or ""]
        missing = [(k, getattr(a, k)) for k in keys if not environ.get(getattr(a, k), "").strip()]
        if missing:
            found.extend(
                f"environment variable {var} is not set (named by {at}.{key} of live account {a.name!r})"
                for key, var in missing
            )
            continue
        try:
            if a.venue == BINANCE_USDM:
                credentials.binance_credentials(a.api_key_env or "", a.api_secret_env or "", environ=environ)
            else:
                credentials.hyperliquid_signer(
                    a.wallet_key_env or "",
                    account_address=a.account_address,
                    vault_address=a.vault_address,
                    environ=environ,
                )
        except credentials.CredentialsMissing as exc:
            found.append(f"{exc} (live account {a.name!r})")
    return found


def plan(
    live_flag: bool,
    raw: Mapping[str, Any],
    common: cfg.CommonSettings,
    environ: Mapping[str, str],
    services: Sequence[str],
) -> tuple[LiveAccount, ...]:
    """The live accounts to start, checked against the configuration and the environment (nothing
    runs yet); () without --live and without live accounts. Refused otherwise."""
    if KEY in raw:
        raise Refused(
            f"{KEY}: set only by `ticktape up --live` itself, after its checks; remove it from the "
            f"configuration and {ENV} from the environment"
        )
    live = [(i, a) for i, a in enumerate(common.accounts) if a.mode == "live"]
    if live and not live_flag:
        names = ", ".join(f"accounts[{i}] ({a.name})" for i, a in live)
        raise Refused(
            f"{names}: mode: live, and --live was not given: pass --live to trade real money (it checks the "
            "credentials and the bus, shows every live account and counts down first), or set mode: paper"
        )
    if not live_flag:
        return ()
    if not live:
        raise Refused("--live: no account has mode: live; set accounts[i].mode: live (or leave out --live)")
    if "execution" not in services:
        raise Refused("--live: execution is not among --services, so nothing would trade live", 2)
    problems: list[str] = []
    planned: list[LiveAccount] = []
    for i, a in live:
        try:
            planned.append(LiveAccount(i, a, endpoint(a, common, i)))
        except cfg.ConfigError as exc:
            problems.append(str(exc).removeprefix("config error: "))
    if problems:
        raise Refused("config error: " + "; ".join(problems))
    missing = credential_problems(planned, environ)
    if missing:
        raise Refused("--live: " + "; ".join(missing))
    return tuple(planned)


def admits_anonymous(server: str, timeout: float = 5.0) -> bool:
    """Whether the NATS server lets in a client that sends no credentials (raw protocol: CONNECT
    without user or password, then PING; PONG means it is in). OSError when it cannot tell."""
    url = urlsplit(server if "://" in server else f"nats://{server}")
    host, port = url.hostname or "127.0.0.1", url.port or 4222
    with socket.create_connection((host, port), timeout=timeout) as sock, sock.makefile("rb") as replies:
        if not replies.readline().startswith(b"INFO "):
            raise OSError(f"{host}:{port} does not speak the NATS protocol")
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"name":"ticktape-live-gate"}\r\nPING\r\n')
        for _ in range(16):
            line = replies.readline().strip()
            if line == b"PONG":
                return True
            if line == b"PING":
                sock.sendall(b"PONG\r\n")
            elif not line or line.startswith(b"-ERR"):
                return False  # refused (Authorization Violation), or closed on us
        return False


def bus_problem(url: str, creds_dir: Path | None) -> str | None:
    """Why the bus is not fit for live trading (None: it is): it must run with per-service
    authorization (a credentials file per role, creds_dir) and refuse clients without credentials,
    or any local process could publish the approvals execution sends to a venue."""
    shown = redact_text(url)
    fix = (
        "let `ticktape up` start its embedded server (it admits only ticktape's roles), or run yours with "
        "the configuration `ticktape creds --nats-conf FILE` writes (README: Security model)"
    )
    if creds_dir is None:
        return (
            f"--live refused: the bus at {shown} runs without per-service authorization (no credentials files "
            f"in nats.creds_dir): any local client could approve orders; {fix}"
        )
    from ticktape.bus.connect import server_urls

    for server in server_urls(url):
        try:
            open_bus = admits_anonymous(server)
        except OSError as exc:
            return (
                f"--live refused: cannot check whether {redact_text(server)} admits clients without credentials ({exc})"
            )
        if open_bus:
            return (
                f"--live refused: the NATS server at {redact_text(server)} admits clients without credentials: "
                f"any local client could approve orders; {fix}"
            )
    return None


def _value(value: object) -> str:
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def limits_text(account: accts.Account) -> str:
    """Every limit of the account, set or off, on one line."""
    parts = [f"initial_equity {_value(account.initial_equity)}"]
    parts += [
        f"{f.name} {_value(getattr(account.limits, f.name))}" for f in msgspec.structs.fields(accts.AccountLimits)
    ]
    parts.append(f"on_shutdown {account.on_shutdown}")
    return ", ".join(parts)


def global_limits_text(raw: Mapping[str, Any]) -> str:
    """Risk's limits over every account (risk.max_drawdown, max_daily_loss, on_breach)."""
    settings = cfg.load_section("risk", registry.config_type(registry.get("risk")), raw)
    keys = ("max_drawdown", "max_daily_loss", "on_breach", "reduce_while_halted")
    return ", ".join(f"{k} {_value(getattr(settings, k, None))}" for k in keys)


def announce(live: Sequence[LiveAccount], raw: Mapping[str, Any]) -> list[str]:
    """What the operator reads before the countdown: each live account, its venue and endpoint,
    the variables its credentials come from (never their values), its addresses and limits."""
    lines = [f"LIVE TRADING of {len(live)} account(s): orders will be sent to the venues below"]
    for item in live:
        a, e = item.account, item.endpoint
        lines.append(f"live account {a.name}: {e.venue} {e.describe()}")
        where = ", ".join(
            f"{k} {v}" for k, v in (("account", a.account_address), ("vault", a.vault_address)) if v is not None
        )
        variables = " and ".join(accts.credential_variables(a))
        lines.append(f"  credentials from {variables} (set)" + (f"; {where}" if where else ""))
        lines.append(f"  strategies {', '.join(a.strategies)}")
        lines.append(f"  limits: {limits_text(a)}")
    lines.append(f"risk over all accounts: {global_limits_text(raw)}")
    return lines


def countdown(seconds: int, stopped: Callable[[], bool], out: TextIO | None = None) -> bool:
    """Count down visibly, one line per second (`ticktape up: live trading in 5...` to `1...`);
    False as soon as `stopped()` (a Ctrl-C or SIGTERM), True when the time is up."""
    out = out or sys.stdout
    start = time.monotonic()
    for left in range(seconds, 0, -1):
        if stopped():
            return False
        print(f"ticktape up: live trading in {left}...", file=out, flush=True)
        deadline = start + (seconds - left + 1)
        while (wait := deadline - time.monotonic()) > 0:
            if stopped():
                return False
            time.sleep(min(wait, 0.05))  # the signal handler runs in between; a stop is seen within 50 ms
    return not stopped()


def split_credentials(
    env: Mapping[str, str], accounts: Sequence[accts.Account], live: Sequence[LiveAccount]
) -> tuple[dict[str, str], dict[str, str]]:
    """(every service's environment without any account's credential variables, the variables of
    the live accounts for execution alone): only the process that signs requests holds the keys."""
    every = {v for a in accounts for v in accts.credential_variables(a)}
    base = {k: v for k, v in env.items() if k not in every}
    execution = {v: env[v] for item in live for v in accts.credential_variables(item.account) if v in env}
    return base, execution
