"""Venue simulator: a stand-alone Binance USDT-M futures stand-in on loopback, replaying recorded 1m bars.

It must not import `ticktape`; the stack talks to it only over Binance's own wire protocols."""
