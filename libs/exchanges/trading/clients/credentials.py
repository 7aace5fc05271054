"""Venue credentials from environment variables, and only from there: never from argv (any local
user can read a process's arguments) and never from a file the configuration names. The
configuration names the variables; these functions read them.

Errors name the variable and what it should hold, never its value; the objects built here redact
their key material in repr and refuse to be pickled (exchanges.trading.binance_sign,
hyperliquid_sign)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from exchanges.trading.binance_sign import BinanceCredentials
from exchanges.trading.binance_sign import CredentialError as BinanceCredentialError
from exchanges.trading.hyperliquid_sign import CredentialError as HyperliquidCredentialError
from exchanges.trading.hyperliquid_sign import HyperliquidSigner

__all__ = ["CredentialsMissing", "binance_credentials", "hyperliquid_signer"]


class CredentialsMissing(ValueError):
    """A credential variable that is not set or cannot be used; `variable` names it."""

    def __init__(self, variable: str, detail: str) -> None:
        super().__init__(f"environment variable {variable} {detail}")
        self.variable = variable


def _read(variable: str, environ: Mapping[str, str] | None, what: str) -> str:
    env = os.environ if environ is None else environ
    value = env.get(variable, "")
    if not value.strip():
        raise CredentialsMissing(variable, f"is not set; it must hold the {what}")
    return value.strip()


def binance_credentials(
    api_key_variable: str, secret_variable: str, *, environ: Mapping[str, str] | None = None
) -> BinanceCredentials:
    """The Binance USDT-M API key and secret held by the two variables."""
    api_key = _read(api_key_variable, environ, "Binance API key")
    secret = _read(secret_variable, environ, "Binance API secret")
    try:
        return BinanceCredentials(api_key, secret)
    except BinanceCredentialError as exc:
        raise CredentialsMissing(f"{api_key_variable} or {secret_variable}", f"cannot be used: {exc}") from None


def hyperliquid_signer(
    private_key_variable: str,
    *,
    account_address: str | None = None,
    vault_address: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> HyperliquidSigner:
    """The Hyperliquid signer whose private key the variable holds (an API wallet's or the
    account's own). account_address: the master account when the key is an API wallet's;
    vault_address: the sub-account or vault traded (addresses are configuration, not secrets)."""
    key = _read(private_key_variable, environ, "Hyperliquid private key (32-byte hex)")
    try:
        return HyperliquidSigner.from_key(key, account_address=account_address, vault_address=vault_address)
    except HyperliquidCredentialError as exc:
        raise CredentialsMissing(private_key_variable, f"cannot be used: {exc}") from None
