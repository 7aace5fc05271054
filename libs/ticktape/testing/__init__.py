"""Test kit shipped with the kernel: real nats-server and PostgreSQL fixtures, eventually()."""

from ticktape.testing.waiting import eventually

__all__ = ["eventually"]
