"""Venue execution clients, the I/O half of exchanges.trading: aiohttp clients that send the pure
requests of binance_orders / hyperliquid_orders, pace them within each venue's documented rate
limits, place every order at most once (client order ids derived from order event ids; an unknown
outcome is settled by asking the venue before anything is sent again), and return the plain
values of exchanges.trading.model.

Modules (import the one you need):
- binance_usdm: BinanceUsdmClient (orders, account, positions, fills, listenKey)
- hyperliquid: HyperliquidClient (order, cancel, cancelByCloid, modify; clearinghouseState,
  openOrders, orderStatus, userFills)
- pacing: the sliding windows and the 429/418 backoff gate a venue's clients share
- credentials: credentials from environment variables (never argv)

Unlike the rest of exchanges.trading these modules do I/O and read the clock; the purity gate
(tests/unit/test_trading_purity.py) covers the modules beside this package, not these."""
