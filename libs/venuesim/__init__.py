"""Venue simulator: stand-alone stand-ins for Binance USDT-M, Binance spot and Hyperliquid on
loopback, replaying recorded 1m bars and raw WebSocket captures over each venue's own wire protocols,
with deterministic fault injection (drops, stalls, malformed frames, skipped bars, refused reconnects).

It must not import `ticktape`; the stack talks to it only over the venues' own wire protocols.
Entry points: venuesim.cli (command line), venuesim.server.VenueSim (in-process, for tests)."""
