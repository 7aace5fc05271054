"""Hyperliquid L1 action signing (order, cancel, cancelByCloid, modify, ...) with the official
hyperliquid-python-sdk and an eth-account key, and recovery of the signer from a signed action.

How Hyperliquid signs an L1 action (hyperliquid.utils.signing; the exact bytes are proven by the
SDK's published vectors in tests/unit/test_hyperliquid_signing.py):
  hash = keccak(msgpack(action) + nonce as 8 bytes big-endian
                + (0x00 | 0x01 + the 20 vault address bytes)
                + (nothing | 0x00 + expiresAfter as 8 bytes))
  then an EIP-712 "Agent" message {source: "a" mainnet | "b" testnet, connectionId: hash}
  in the domain {name: "Exchange", version: "1", chainId: 1337, verifyingContract: 0x0...0},
  signed with the key; the signature goes on the wire as {"r": hex, "s": hex, "v": 27 | 28}.
The msgpack bytes depend on the action's key order, so actions are built by hyperliquid_orders
in the SDK's order and must be sent as built.

Who signs and whose account it is:
- the signer is the key's address: the account's own key, or an API (agent) wallet the master
  account approved to sign for it and for its sub-accounts;
- `vault_address` (a vault or a sub-account) is part of the hash and of the /exchange body;
- /info queries name the account (the sub-account or vault if set, else the master account),
  never an agent wallet: Hyperliquid's docs warn that an agent address gives empty results.

The nonce is the caller's (never the clock here): Hyperliquid keeps the highest nonces per signer
and takes a new one only if it is larger than the smallest of them and unused; next_nonce gives
a strictly increasing one from the caller's clock reading."""

from __future__ import annotations

import re
from typing import Any, TypedDict

from eth_abi.exceptions import EncodingError
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from hyperliquid.utils import signing as sdk  # type: ignore[import-untyped]
from hyperliquid.utils.constants import MAINNET_API_URL, TESTNET_API_URL  # type: ignore[import-untyped]

from exchanges.trading import hyperliquid_orders

__all__ = [
    "MAINNET_API_URL",
    "TESTNET_API_URL",
    "CredentialError",
    "HyperliquidSigner",
    "Signature",
    "SignatureError",
    "action_hash",
    "next_nonce",
    "recover_agent_approver",
    "recover_signer",
    "sign_l1_action",
]

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIG_PART = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
_U64 = 2**64


class Signature(TypedDict):
    """An L1 action signature as the /exchange body carries it."""

    r: str
    s: str
    v: int


class CredentialError(ValueError):
    """A key or an address that cannot be used; the message never contains the key."""


class SignatureError(ValueError):
    """A signature (or the action, nonce or vault it signs) that cannot be checked; `reason` is a
    stable code for the venue simulator's rejection."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _address(value: object, what: str) -> str | None:
    """A lowercase 0x address, or None; CredentialError naming `what` when malformed."""
    if value is None:
        return None
    if not isinstance(value, str) or not ADDRESS.match(value):
        raise CredentialError(f"{what} must be a 0x-prefixed 20-byte hex address")
    return value.lower()


def _nonce(nonce: object, what: str = "nonce") -> int:
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce < _U64:
        raise SignatureError("invalid_nonce", f"{what} must be an int in [0, 2**64)")
    return nonce


def action_hash(
    action: dict[str, Any], vault_address: str | None, nonce: int, expires_after: int | None = None
) -> bytes:
    """The 32-byte hash an L1 action's signature commits to (the SDK's action_hash)."""
    vault = _address(vault_address, "vault_address")
    _nonce(nonce)
    if expires_after is not None:
        _nonce(expires_after, "expires_after")
    try:
        digest = sdk.action_hash(action, vault, nonce, expires_after)
    except (TypeError, ValueError, OverflowError) as exc:
        # msgpack refuses what it cannot pack (an int beyond 64 bits, an unknown type)
        raise SignatureError("invalid_action", f"the action cannot be hashed ({type(exc).__name__})") from None
    return bytes(digest)


def _typed_data(
    action: dict[str, Any], vault_address: str | None, nonce: int, expires_after: int | None, is_mainnet: bool
) -> SignableMessage:
    digest = action_hash(action, vault_address, nonce, expires_after)
    return encode_typed_data(full_message=sdk.l1_payload(sdk.construct_phantom_agent(digest, is_mainnet)))


def sign_l1_action(
    wallet: LocalAccount,
    action: dict[str, Any],
    nonce: int,
    *,
    vault_address: str | None,
    is_mainnet: bool,
    expires_after: int | None = None,
) -> Signature:
    """Sign an L1 action with the SDK's sign_l1_action (checked inputs, the SDK's bytes)."""
    vault = _address(vault_address, "vault_address")
    action_hash(action, vault, nonce, expires_after)  # validates before the SDK sees anything
    signed = sdk.sign_l1_action(wallet, action, vault, nonce, expires_after, is_mainnet)
    return Signature(r=str(signed["r"]), s=str(signed["s"]), v=int(signed["v"]))


def _check_signature(signature: object) -> tuple[str, str, int]:
    """(r, s, v) of a wire signature: r and s 0x hex of at most 32 bytes, v 27 or 28 (eth-account
    would also take an EIP-155 v; Hyperliquid's signatures carry 27/28)."""
    if not isinstance(signature, dict):
        raise SignatureError("invalid_signature", "the signature must be an object {r, s, v}")
    r, s, v = signature.get("r"), signature.get("s"), signature.get("v")
    if not (isinstance(r, str) and _SIG_PART.match(r) and isinstance(s, str) and _SIG_PART.match(s)):
        raise SignatureError("invalid_signature", "r and s must be 0x-prefixed hex of at most 32 bytes")
    if isinstance(v, bool) or not isinstance(v, int) or v not in (27, 28):
        raise SignatureError("invalid_signature", "v must be 27 or 28")
    return r, s, v


def recover_signer(
    action: dict[str, Any],
    signature: Any,
    nonce: int,
    vault: str | None,
    is_mainnet: bool,
    *,
    expires_after: int | None = None,
) -> str:
    """The checksummed address that signed `action` with this nonce, vault and network: the
    SDK's action hashing and EIP-712 payload, recovered with eth-account. A signature signed for
    anything else (another action, nonce, vault or network) recovers to some other address, so
    the caller compares the result with the keys it knows. Malformed input (for the simulator,
    any decoded JSON) raises SignatureError, never anything else (see _check_signature)."""
    r, s, v = _check_signature(signature)
    if not isinstance(action, dict):
        raise SignatureError("invalid_action", "the action must be an object")
    try:
        vault_address = _address(vault, "vaultAddress")
    except CredentialError as exc:
        raise SignatureError("invalid_vault_address", str(exc)) from None
    message = _typed_data(action, vault_address, nonce, expires_after, is_mainnet)
    try:
        return str(Account.recover_message(message, vrs=(v, int(r, 16), int(s, 16))))
    except (BadSignature, ValueError) as exc:
        raise SignatureError("invalid_signature", f"no signer recovers from it ({type(exc).__name__})") from None


_APPROVE_AGENT_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]  # the types of the SDK's sign_agent


def recover_agent_approver(action: Any, signature: Any, is_mainnet: bool) -> str:
    """The checksummed address that signed an approveAgent action (a user-signed action: the
    SDK's recover_user_from_user_signed_action); SignatureError for malformed input."""
    if not isinstance(action, dict) or action.get("type") != "approveAgent":
        raise SignatureError("invalid_action", "not an approveAgent action")
    _check_signature(signature)
    signed = {**action, "agentName": action.get("agentName", "")}  # an unnamed agent signs ""
    try:
        address = sdk.recover_user_from_user_signed_action(
            signed, signature, _APPROVE_AGENT_TYPES, "HyperliquidTransaction:ApproveAgent", is_mainnet
        )
    except (BadSignature, EncodingError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise SignatureError("invalid_signature", f"no signer recovers from it ({type(exc).__name__})") from None
    return str(address)


def next_nonce(last_nonce: int | None, now_ms: int) -> int:
    """A nonce for the next action of one signer: the caller's clock in ms, or one more than the
    last nonce it used if the clock has not moved past it (two actions in one millisecond, or a
    clock step back), so nonces strictly increase and are never reused."""
    _nonce(now_ms, "now_ms")
    return now_ms if last_nonce is None or now_ms > last_nonce else _nonce(last_nonce + 1, "last_nonce + 1")


class HyperliquidSigner:
    """One account's signing identity: the key (the account's own or an approved API wallet's),
    the account it trades for, and the vault or sub-account it acts on. Holds the key: its repr
    and str show addresses only, and it cannot be pickled (so it never lands in a file)."""

    __slots__ = ("_account_address", "_vault_address", "_wallet")

    def __init__(self, wallet: LocalAccount, *, account_address: str | None = None, vault_address: str | None = None):
        if not isinstance(wallet, LocalAccount):
            raise CredentialError("wallet must be an eth_account LocalAccount")
        self._wallet = wallet
        self._account_address = _address(account_address, "account_address")
        self._vault_address = _address(vault_address, "vault_address")

    @classmethod
    def from_key(
        cls, private_key: str, *, account_address: str | None = None, vault_address: str | None = None
    ) -> HyperliquidSigner:
        """From a 32-byte hex private key (with or without 0x). account_address: the master
        account when the key is an API wallet's; vault_address: the vault or sub-account traded."""
        if not isinstance(private_key, str):
            raise CredentialError("the Hyperliquid private key must be a string")
        try:
            wallet = Account.from_key(private_key.strip())
        except (ValueError, TypeError):
            # eth-account's message may quote the key's length or digits: say nothing of it
            raise CredentialError("the Hyperliquid private key is not a 32-byte hex key") from None
        return cls(wallet, account_address=account_address, vault_address=vault_address)

    @property
    def signer_address(self) -> str:
        """The key's address (an API wallet's when the key is an agent's), checksummed."""
        return str(self._wallet.address)

    @property
    def account_address(self) -> str:
        """The master account: the one given, else the key's own address (lowercase)."""
        return self._account_address or self.signer_address.lower()

    @property
    def vault_address(self) -> str | None:
        return self._vault_address

    @property
    def user(self) -> str:
        """The address /info queries name: the vault or sub-account if set, else the account."""
        return self._vault_address or self.account_address

    def sign(
        self, action: dict[str, Any], nonce: int, *, is_mainnet: bool, expires_after: int | None = None
    ) -> Signature:
        return sign_l1_action(
            self._wallet,
            action,
            nonce,
            vault_address=self._vault_address,
            is_mainnet=is_mainnet,
            expires_after=expires_after,
        )

    def exchange_body(
        self, action: dict[str, Any], nonce: int, *, is_mainnet: bool, expires_after: int | None = None
    ) -> dict[str, Any]:
        """The signed POST /exchange body for an action built by hyperliquid_orders."""
        signature = self.sign(action, nonce, is_mainnet=is_mainnet, expires_after=expires_after)
        return hyperliquid_orders.exchange_body(
            action, nonce, signature, vault_address=self._vault_address, expires_after=expires_after
        )

    def approve_agent_body(
        self, agent_address: str, nonce: int, *, is_mainnet: bool, agent_name: str | None = None
    ) -> dict[str, Any]:
        """The POST /exchange body by which this (master) key approves an API wallet, built as the
        SDK's Exchange.approve_agent builds it: a user-signed action (EIP-712 domain
        "HyperliquidSignTransaction", signed by the SDK's sign_agent), not an L1 action, so its
        signer is recovered with recover_agent_approver. agent_name None registers the unnamed
        agent (and replaces the previous unnamed one)."""
        agent = _address(agent_address, "agent_address")
        _nonce(nonce)
        action: dict[str, Any] = {
            "type": "approveAgent",
            "agentAddress": agent,
            "agentName": agent_name or "",
            "nonce": nonce,
        }
        signed = sdk.sign_agent(self._wallet, action, is_mainnet)  # adds signatureChainId, hyperliquidChain
        if agent_name is None:
            del action["agentName"]
        signature = Signature(r=str(signed["r"]), s=str(signed["s"]), v=int(signed["v"]))
        return hyperliquid_orders.exchange_body(action, nonce, signature)

    def __repr__(self) -> str:
        vault = f", vault_address={self._vault_address!r}" if self._vault_address else ""
        return f"HyperliquidSigner(signer={self.signer_address!r}, account={self.account_address!r}{vault}, key=***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("HyperliquidSigner holds a private key and cannot be pickled")
