"""Typed settings of the audit archiver (section `audit` of ticktape.yaml)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class AuditConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How many messages to store per transaction, how often to checkpoint, whether to archive
    the dead-letter stream too (as its own chain), and the key that signs the checkpoints."""

    batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 256
    checkpoint_every: Annotated[int, msgspec.Meta(ge=1)] = 1000
    dead_letters: bool = True
    ack_wait_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    # The ed25519 private key that signs every checkpoint, kept outside PostgreSQL (PEM, mode
    # 0600); generated on first start, its public key written beside it as .pub. A relative
    # path is relative to home; unset: <home>/keys/audit-ed25519.pem.
    signing_key: str | None = None
