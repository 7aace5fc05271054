"""Errors a core raises about its input (as opposed to its own bugs)."""

from __future__ import annotations


class InvalidInput(ValueError):
    """The event decoded but its content cannot be acted on (e.g. a bar with a NaN price).
    The shell rejects it: counter `rejected{reason="invalid_input"}` and a dead letter."""
