"""Typed settings of the bar archive (section `archive` of ticktape.yaml)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class ArchiveConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which bars to keep and how many to write per transaction."""

    filter_subject: str = "md.bar.>"
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1000
    batch_wait_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
