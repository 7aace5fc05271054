"""Who may trade on the simulated venues, with what money: test credentials and starting balances.

`--accounts FILE` (JSON; secrets belong in a file, never in argv):

    {
      "binance_usdm": [
        {"name": "alpha", "api_key": "...", "secret": "...", "balance": "10000"}
      ],
      "hyperliquid": {
        "chain": "testnet",
        "accounts": [
          {"address": "0x...", "balance": "10000", "agents": ["0x..."]},
          {"address": "0x...", "balance": "2500", "master": "0x..."}
        ]
      },
      "leverage": 20
    }

Binance: each API key belongs to one account (its name is the simulator's own). Hyperliquid: an
account is a user; one with a `master` is a sub-account or vault of that user, traded through
`vaultAddress` with the master's signature (or an agent of the master's); `agents` are API
wallets approved for the user (more can be approved at run time with the `approveAgent` action).
`chain`: "testnet" (default; what the official SDK signs for any URL but mainnet's) or "mainnet"
selects the phantom agent's source ("b" or "a") the L1 signature is checked against. Balances
are in the margin asset (USDT, USDC). Default fees: Binance USDT-M VIP 0 (maker 0.02%, taker
0.05%), Hyperliquid base tier (maker 0.015%, taker 0.045%)."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from venuesim.trading import Fees

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
BINANCE_FEES = Fees(maker=Decimal("0.0002"), taker=Decimal("0.0005"))
HYPERLIQUID_FEES = Fees(maker=Decimal("0.00015"), taker=Decimal("0.00045"))


@dataclasses.dataclass(frozen=True)
class BinanceAccount:
    name: str
    api_key: str
    secret: str = dataclasses.field(repr=False)
    balance: Decimal


@dataclasses.dataclass(frozen=True)
class HyperliquidAccount:
    address: str  # lower case
    balance: Decimal
    master: str | None = None
    agents: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TradingConfig:
    binance: tuple[BinanceAccount, ...] = ()
    hyperliquid: tuple[HyperliquidAccount, ...] = ()
    hl_mainnet: bool = False
    leverage: int = 20
    binance_fees: Fees = BINANCE_FEES
    hl_fees: Fees = HYPERLIQUID_FEES


def load(path: Path) -> TradingConfig:
    """Read an accounts file; ValueError naming the key when it is malformed."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    return parse(doc, str(path))


def parse(doc: Any, where: str = "accounts") -> TradingConfig:
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected a JSON object")
    unknown = set(doc) - {"binance_usdm", "hyperliquid", "leverage"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: binance_usdm, hyperliquid, leverage")
    leverage = doc.get("leverage", 20)
    if type(leverage) is not int or not 1 <= leverage <= 125:
        raise ValueError(f"{where}.leverage: an integer from 1 to 125 (got {leverage!r})")
    binance = tuple(_binance(a, f"{where}.binance_usdm[{i}]") for i, a in enumerate(_list(doc, "binance_usdm", where)))
    if len({a.api_key for a in binance}) != len(binance):
        raise ValueError(f"{where}.binance_usdm: an api_key appears twice")
    hl = doc.get("hyperliquid", {})
    if not isinstance(hl, dict) or set(hl) - {"chain", "accounts"}:
        raise ValueError(f"{where}.hyperliquid: an object with `chain` and `accounts`")
    chain = hl.get("chain", "testnet")
    if chain not in ("testnet", "mainnet"):
        raise ValueError(f"{where}.hyperliquid.chain: testnet or mainnet (got {chain!r})")
    hl_where = f"{where}.hyperliquid"
    accounts = tuple(_hl(a, f"{hl_where}.accounts[{i}]") for i, a in enumerate(_list(hl, "accounts", hl_where)))
    addresses = {a.address for a in accounts}
    if len(addresses) != len(accounts):
        raise ValueError(f"{hl_where}.accounts: an address appears twice")
    for a in accounts:
        if a.master is not None and a.master not in addresses:
            raise ValueError(f"{hl_where}: master {a.master} of {a.address} is not an account")
    return TradingConfig(binance=binance, hyperliquid=accounts, hl_mainnet=chain == "mainnet", leverage=leverage)


def _list(doc: dict[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key}: expected a list")
    return value


def _binance(item: Any, where: str) -> BinanceAccount:
    _keys(item, {"name", "api_key", "secret", "balance"}, {"name", "api_key", "secret"}, where)
    for key in ("name", "api_key", "secret"):
        if not isinstance(item[key], str) or not item[key]:
            raise ValueError(f"{where}.{key}: a non-empty string")
    return BinanceAccount(item["name"], item["api_key"], item["secret"], _balance(item, where))


def _hl(item: Any, where: str) -> HyperliquidAccount:
    _keys(item, {"address", "balance", "master", "agents"}, {"address"}, where)
    agents = item.get("agents", [])
    if not isinstance(agents, list):
        raise ValueError(f"{where}.agents: a list of addresses")
    master = item.get("master")
    return HyperliquidAccount(
        address=_address(item["address"], f"{where}.address"),
        balance=_balance(item, where),
        master=None if master is None else _address(master, f"{where}.master"),
        agents=tuple(_address(a, f"{where}.agents[{i}]") for i, a in enumerate(agents)),
    )


def _keys(item: Any, allowed: set[str], required: set[str], where: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object")
    if set(item) - allowed:
        raise ValueError(f"{where}: unknown keys {sorted(set(item) - allowed)}; allowed: {sorted(allowed)}")
    if required - set(item):
        raise ValueError(f"{where}: missing {sorted(required - set(item))}")


def _balance(item: dict[str, Any], where: str) -> Decimal:
    raw = item.get("balance", "0")
    try:
        value = Decimal(str(raw)) if isinstance(raw, str | int) and not isinstance(raw, bool) else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise ValueError(f"{where}.balance: a number >= 0 as a string (got {raw!r})")
    return value


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError(f"{where}: a 0x-prefixed 20-byte hex address (got {value!r})")
    return value.lower()
