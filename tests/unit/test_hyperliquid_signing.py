"""Hyperliquid L1 signing (exchanges.trading.hyperliquid_sign) against the official SDK's published
signing vectors, and signer recovery (what the venue simulator checks).

The vectors are copied from hyperliquid-dex/hyperliquid-python-sdk tests/signing_test.py (commit
7ee976d, "Version 0.23.0"; the signing code is unchanged in the 0.24.0 we lock): the private key,
each action, nonce, vault and network, and the expected r, s, v. Order actions are built by our
own order builders (hyperliquid_orders), so the vectors prove that the bytes we hash are the SDK's."""

from __future__ import annotations

import copy
import pickle

import pytest
from eth_account import Account
from hyperliquid.utils.signing import float_to_int_for_hashing, recover_agent_or_user_from_l1_action  # type: ignore[import-untyped]

from exchanges.trading import hyperliquid_orders as orders
from exchanges.trading.hyperliquid_sign import (
    CredentialError,
    HyperliquidSigner,
    SignatureError,
    action_hash,
    next_nonce,
    recover_agent_approver,
    recover_signer,
    sign_l1_action,
)

# -- the SDK's vectors -------------------------------------------------------------------------

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
KEY_ADDRESS = "0x14791697260E4c9A71f18484C9f997B308e59325"  # Account.from_key(KEY).address
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
CLOID = "0x00000000000000000000000000000001"

ETH_1 = orders.Asset(coin="ETH", asset=1, sz_decimals=2)


def dummy_action() -> dict:
    return {"type": "dummy", "num": float_to_int_for_hashing(1000)}


def order_100_at_100(cloid: str | None = None) -> dict:
    """The SDK vectors' order: ETH (asset 1), buy 100 at 100, GTC, not reduce-only."""
    return orders.order_action(orders.limit_order(ETH_1, is_buy=True, price=100, size=100, tif="Gtc", cloid=cloid))


def tpsl_order() -> dict:
    """The SDK's trigger-order vector (a wire our builders do not make: written out as the SDK does)."""
    wire = {
        "a": 1,
        "b": True,
        "p": "100",
        "s": "100",
        "r": False,
        "t": {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}},
    }
    return {"type": "order", "orders": [wire], "grouping": "na"}


# (name, action factory, vault, is_mainnet, r, s, v); nonce 0 and no expiresAfter throughout
VECTORS = [
    ("dummy mainnet", dummy_action, None, True,
     "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
     "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8", 27),
    ("dummy testnet", dummy_action, None, False,
     "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
     "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613", 28),
    ("order mainnet", order_100_at_100, None, True,
     "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
     "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e", 28),
    ("order testnet", order_100_at_100, None, False,
     "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
     "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5", 27),
    ("order with cloid mainnet", lambda: order_100_at_100(CLOID), None, True,
     "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
     "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da", 27),
    ("order with cloid testnet", lambda: order_100_at_100(CLOID), None, False,
     "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
     "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988", 28),
    ("dummy with vault mainnet", dummy_action, VAULT, True,
     "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
     "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c", 28),
    ("dummy with vault testnet", dummy_action, VAULT, False,
     "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
     "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60", 27),
    ("tpsl order mainnet", tpsl_order, None, True,
     "0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
     "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405", 27),
    ("tpsl order testnet", tpsl_order, None, False,
     "0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
     "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac", 28),
    ("createSubAccount mainnet", lambda: {"type": "createSubAccount", "name": "example"}, None, True,
     "0x51096fe3239421d16b671e192f574ae24ae14329099b6db28e479b86cdd6caa7",
     "0xb71f7d293af92d3772572afb8b102d167a7cef7473388286bc01f52a5c5b423", 27),
    ("createSubAccount testnet", lambda: {"type": "createSubAccount", "name": "example"}, None, False,
     "0xa699e3ed5c2b89628c746d3298b5dc1cca604694c2c855da8bb8250ec8014a5b",
     "0x53f1b8153a301c72ecc655b1c315d64e1dcea3ee58921fd7507e35818fcc1584", 28),
    ("scheduleCancel mainnet", lambda: {"type": "scheduleCancel"}, None, True,
     "0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
     "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0", 27),
    ("scheduleCancel with time testnet", lambda: {"type": "scheduleCancel", "time": 123456789}, None, False,
     "0x4e4f2dbd4107c69783e251b7e1057d9f2b9d11cee213441ccfa2be63516dc5bc",
     "0x706c656b23428c8ba356d68db207e11139ede1670481a9e01ae2dfcdb0e1a678", 27),
]  # fmt: skip


@pytest.mark.parametrize("name, make, vault, mainnet, r, s, v", VECTORS, ids=[v[0] for v in VECTORS])
def test_signature_equals_the_sdk_published_vector(name, make, vault, mainnet, r, s, v):
    signer = HyperliquidSigner.from_key(KEY, vault_address=vault)
    assert signer.sign(make(), 0, is_mainnet=mainnet) == {"r": r, "s": s, "v": v}


@pytest.mark.parametrize("name, make, vault, mainnet, r, s, v", VECTORS, ids=[v[0] for v in VECTORS])
def test_every_vector_recovers_to_the_signing_key(name, make, vault, mainnet, r, s, v):
    assert recover_signer(make(), {"r": r, "s": s, "v": v}, 0, vault, mainnet) == KEY_ADDRESS


def test_order_action_built_here_hashes_to_the_sdk_phantom_agent_vector():
    # SDK test_phantom_agent_creation_matches_production: ETH (asset 4), buy 0.0147 at 1670.1 IOC
    eth = orders.Asset(coin="ETH", asset=4, sz_decimals=4)
    action = orders.order_action(orders.limit_order(eth, is_buy=True, price=1670.1, size=0.0147, tif="Ioc"))
    assert action == {
        "type": "order",
        "orders": [{"a": 4, "b": True, "p": "1670.1", "s": "0.0147", "r": False, "t": {"limit": {"tif": "Ioc"}}}],
        "grouping": "na",
    }
    digest = action_hash(action, None, 1677777606040)
    assert "0x" + digest.hex() == "0x0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"


def test_the_vectors_cloid_order_is_the_exact_action():
    assert order_100_at_100(CLOID) == {
        "type": "order",
        "orders": [{"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": {"limit": {"tif": "Gtc"}}, "c": CLOID}],
        "grouping": "na",
    }


# -- what a signature commits to ---------------------------------------------------------------


def _signed(vault=None, mainnet=True, nonce=1_700_000_000_000, expires_after=None):
    signer = HyperliquidSigner.from_key(KEY, vault_address=vault)
    action = orders.order_action(orders.limit_order(ETH_1, is_buy=True, price=100, size=1, cloid=CLOID))
    return action, signer.sign(action, nonce, is_mainnet=mainnet, expires_after=expires_after)


@pytest.mark.parametrize(
    "change",
    [
        "nonce",
        "network",
        "vault added",
        "vault changed",
        "price",
        "cloid",
        "expiresAfter",
    ],
)
def test_a_signature_recovers_to_another_address_when_anything_signed_changes(change):
    action, sig = _signed(vault=VAULT)
    nonce, vault, mainnet, expires = 1_700_000_000_000, VAULT, True, None
    assert recover_signer(action, sig, nonce, vault, mainnet) == KEY_ADDRESS
    tampered = copy.deepcopy(action)
    if change == "nonce":
        nonce += 1
    elif change == "network":
        mainnet = False
    elif change == "vault added":
        action, sig = _signed(vault=None)
        tampered = action
    elif change == "vault changed":
        vault = "0x" + "11" * 20
    elif change == "price":
        tampered["orders"][0]["p"] = "101"
    elif change == "cloid":
        tampered["orders"][0]["c"] = "0x" + "0" * 31 + "2"
    elif change == "expiresAfter":
        expires = 1_700_000_060_000
    assert recover_signer(tampered, sig, nonce, vault, mainnet, expires_after=expires) != KEY_ADDRESS


def test_expires_after_is_signed_and_recovers_with_it():
    action, sig = _signed(expires_after=1_700_000_060_000)
    assert recover_signer(action, sig, 1_700_000_000_000, None, True, expires_after=1_700_000_060_000) == KEY_ADDRESS
    assert recover_signer(action, sig, 1_700_000_000_000, None, True) != KEY_ADDRESS


def test_recover_signer_agrees_with_the_sdk_recovery():
    action, sig = _signed(vault=VAULT, mainnet=False)
    sdk = recover_agent_or_user_from_l1_action(action, sig, VAULT, 1_700_000_000_000, None, False)
    assert recover_signer(action, sig, 1_700_000_000_000, VAULT, False) == sdk == KEY_ADDRESS


def test_a_vault_address_in_any_case_signs_and_recovers_the_same():
    upper = "0x" + VAULT[2:].upper()
    action, sig = _signed(vault=upper)
    assert sig == _signed(vault=VAULT)[1]
    assert recover_signer(action, sig, 1_700_000_000_000, upper, True) == KEY_ADDRESS


# -- agent (API) wallets, sub-accounts, vaults ---------------------------------------------------

AGENT_KEY = "0x" + "ab" * 32
MASTER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"
SUB_ACCOUNT = "0x1d9470d4b963f552e6f671a81619d395877bf409"


def test_an_api_wallet_signs_for_the_master_account_and_info_names_the_master():
    agent = HyperliquidSigner.from_key(AGENT_KEY, account_address=MASTER)
    action = orders.order_action(orders.limit_order(ETH_1, is_buy=False, price=100, size=1, cloid=CLOID))
    body = agent.exchange_body(action, 1_700_000_000_000, is_mainnet=False)
    agent_address = Account.from_key(AGENT_KEY).address
    assert recover_signer(action, body["signature"], 1_700_000_000_000, None, False) == agent_address
    assert agent.signer_address == agent_address != KEY_ADDRESS
    assert agent.user == MASTER
    assert orders.clearinghouse_state(agent.user) == {"type": "clearinghouseState", "user": MASTER}
    assert body["vaultAddress"] is None


def test_an_api_wallet_trading_a_sub_account_signs_with_its_address_as_vault():
    agent = HyperliquidSigner.from_key(AGENT_KEY, account_address=MASTER, vault_address=SUB_ACCOUNT)
    action = orders.cancel_by_cloid_action(ETH_1, CLOID)
    body = agent.exchange_body(action, 1_700_000_000_001, is_mainnet=True)
    assert body["vaultAddress"] == SUB_ACCOUNT
    assert agent.user == SUB_ACCOUNT
    agent_address = Account.from_key(AGENT_KEY).address
    assert recover_signer(action, body["signature"], 1_700_000_000_001, SUB_ACCOUNT, True) == agent_address
    assert recover_signer(action, body["signature"], 1_700_000_000_001, None, True) != agent_address


def test_the_master_approves_an_api_wallet_with_the_sdks_user_signed_action():
    master = HyperliquidSigner.from_key(KEY)
    agent_address = Account.from_key(AGENT_KEY).address
    body = master.approve_agent_body(agent_address, 1_700_000_000_000, is_mainnet=False, agent_name="ticktape")
    assert {k: v for k, v in body.items() if k != "signature"} == {
        "action": {
            "type": "approveAgent",
            "agentAddress": agent_address.lower(),
            "agentName": "ticktape",
            "nonce": 1_700_000_000_000,
            "signatureChainId": "0x66eee",
            "hyperliquidChain": "Testnet",
        },
        "nonce": 1_700_000_000_000,
        "vaultAddress": None,
        "expiresAfter": None,
    }
    assert recover_agent_approver(body["action"], body["signature"], False) == KEY_ADDRESS
    assert recover_agent_approver(body["action"], body["signature"], True) != KEY_ADDRESS  # the other network
    unnamed = master.approve_agent_body(agent_address, 1_700_000_000_001, is_mainnet=True)
    assert "agentName" not in unnamed["action"] and unnamed["action"]["hyperliquidChain"] == "Mainnet"
    assert recover_agent_approver(unnamed["action"], unnamed["signature"], True) == KEY_ADDRESS


def test_recover_agent_approver_refuses_what_is_no_approve_agent():
    with pytest.raises(SignatureError):
        recover_agent_approver(dummy_action(), {"r": "0x1", "s": "0x1", "v": 27}, True)
    with pytest.raises(SignatureError):
        recover_agent_approver({"type": "approveAgent"}, {"r": "0x1", "s": "0x1", "v": 29}, True)
    good = HyperliquidSigner.from_key(KEY).approve_agent_body("0x" + "11" * 20, 1, is_mainnet=True)
    for broken in (
        {"type": "approveAgent"},
        {**good["action"], "agentAddress": "xyz"},
        {**good["action"], "signatureChainId": "zz"},
    ):
        with pytest.raises(SignatureError):
            recover_agent_approver(broken, good["signature"], True)


def test_the_sign_function_and_the_signer_object_agree():
    wallet = Account.from_key(KEY)
    action = dummy_action()
    assert sign_l1_action(wallet, action, 7, vault_address=VAULT, is_mainnet=True) == HyperliquidSigner(
        wallet, vault_address=VAULT
    ).sign(action, 7, is_mainnet=True)


# -- malformed input (the simulator recovers signers of whatever it is sent) ---------------------


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "0xdeadbeef",
        {"r": "0xzz", "s": "0x01", "v": 27},
        {"r": "0x01", "s": "0x01"},
        {"r": "0x" + "1" * 65, "s": "0x01", "v": 27},
        {"r": "12", "s": "0x01", "v": 27},
        {"r": "0x01", "s": "0x01", "v": 99},  # an EIP-155 v: eth-account would take it, Hyperliquid sends 27/28
        {"r": "0x01", "s": "0x01", "v": "27"},
        {"r": "0x01", "s": "0x01", "v": True},
        {"r": "0x0", "s": "0x0", "v": 27},  # no point on the curve recovers from r = s = 0
    ],
)
def test_a_malformed_signature_raises_signature_error(signature):
    with pytest.raises(SignatureError) as err:
        recover_signer(dummy_action(), signature, 0, None, True)
    assert err.value.reason == "invalid_signature"


@pytest.mark.parametrize(
    "action, nonce, vault, reason",
    [
        ({"type": "order", "n": 2**64}, 0, None, "invalid_action"),  # msgpack cannot pack it
        ({"type": "order", "x": object()}, 0, None, "invalid_action"),
        ("not an object", 0, None, "invalid_action"),
        ({"type": "dummy"}, -1, None, "invalid_nonce"),
        ({"type": "dummy"}, 2**64, None, "invalid_nonce"),
        ({"type": "dummy"}, 1.5, None, "invalid_nonce"),
        ({"type": "dummy"}, 0, "0x1234", "invalid_vault_address"),
    ],
)
def test_an_unhashable_action_nonce_or_vault_raises_signature_error(action, nonce, vault, reason):
    _, sig = _signed()
    with pytest.raises(SignatureError) as err:
        recover_signer(action, sig, nonce, vault, True)
    assert err.value.reason == reason


# -- the key never shows ----------------------------------------------------------------------


def test_the_signer_repr_and_str_show_addresses_never_the_key():
    signer = HyperliquidSigner.from_key(KEY, vault_address=VAULT)
    for text in (repr(signer), str(signer), f"{signer}", repr([signer])):
        assert KEY[2:] not in text and KEY[2:].upper() not in text
        assert KEY_ADDRESS in text and VAULT in text and "key=***" in text


def test_the_signer_cannot_be_pickled_or_copied_into_a_file():
    signer = HyperliquidSigner.from_key(KEY)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(signer)
    with pytest.raises(TypeError):
        copy.copy(signer)


@pytest.mark.parametrize(
    "bad_key",
    [
        KEY[:-2],  # 31 bytes: eth-account's message would state the length
        KEY[:-1] + "g",  # a non-hex digit
        "",
        "0x" + "00" * 32,  # zero is not a valid secp256k1 key
    ],
)
def test_a_bad_key_raises_credential_error_that_quotes_nothing_of_it(bad_key):
    with pytest.raises(CredentialError) as err:
        HyperliquidSigner.from_key(bad_key)
    message = str(err.value)
    assert message == "the Hyperliquid private key is not a 32-byte hex key"
    assert err.value.__cause__ is None and err.value.__suppress_context__
    if len(bad_key) > 8:
        assert bad_key[2:20] not in message


@pytest.mark.parametrize("field", ["account_address", "vault_address"])
def test_a_malformed_address_is_refused(field):
    with pytest.raises(CredentialError, match=field):
        HyperliquidSigner.from_key(KEY, **{field: "0x1234"})


# -- nonces --------------------------------------------------------------------------------------


def test_next_nonce_is_the_clock_when_it_moved_on_else_one_more_than_the_last():
    assert next_nonce(None, 1_700_000_000_000) == 1_700_000_000_000
    assert next_nonce(1_699_999_999_999, 1_700_000_000_000) == 1_700_000_000_000
    assert next_nonce(1_700_000_000_000, 1_700_000_000_000) == 1_700_000_000_001  # same millisecond
    assert next_nonce(1_700_000_000_005, 1_700_000_000_000) == 1_700_000_000_006  # clock stepped back


def test_next_nonce_refuses_a_clock_reading_that_is_no_nonce():
    with pytest.raises(SignatureError):
        next_nonce(None, -5)
