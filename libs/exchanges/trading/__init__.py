"""Venue execution adapters, the pure part: the exact request bodies and query strings that
place, cancel, modify and look up orders on Hyperliquid and Binance USDT-M, their signatures,
client order ids derived from order events, and venue errors mapped to stable reason codes.

Pure like the market-data adapters beside it: no I/O and no clock. Timestamps, nonces and
reference prices are parameters; the execution shell makes the HTTP calls. Signing uses the
maintained libraries only: the official hyperliquid-python-sdk's L1 action signing with an
eth-account key, and stdlib hmac for Binance. Objects that hold a key never show it (their repr
is redacted) and no error message built here contains one.

Modules (import the one you need; this package imports none of them, so that using client ids
does not load eth-account):
- hyperliquid_sign: sign L1 actions and approveAgent, recover their signer, nonces
- hyperliquid_orders: order/cancel/cancelByCloid/modify actions, the /exchange and /info bodies,
  Hyperliquid's price and size rules
- binance_sign: HMAC-SHA256 signed query strings, the API key holder
- binance_orders: /fapi order, position, account and listenKey requests, tick/step/min-notional
- client_ids: cloid and newClientOrderId from an order event's id
- errors: venue error responses -> reason codes"""
