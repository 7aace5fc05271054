"""Typed settings of the bar archive (section `archive` of ticktape.yaml)."""

from __future__ import annotations

from typing import Annotated

import msgspec


class ArchiveConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which bars to keep and how many to write per transaction."""

    filter_subject: str = "md.bar.>"
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1000
    batch_wait_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5
    # Storage alerts (services.archive.storage, ticktape.storage): every storage_check_s the archive
    # compares each stream's bytes with its max_bytes and each storage_paths directory's file system
    # with its size, sets the ticktape_storage_used_fraction gauge, and publishes a StorageAlert
    # (ops.storage.<resource>) for a store at or above storage_alert_fraction, again every
    # storage_alert_repeat_s while it stays there. storage_paths empty: the directories of the
    # embedded servers under home (<home>/nats/jetstream, <home>/postgres) that exist.
    storage_check_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    storage_alert_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    storage_alert_repeat_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    storage_paths: tuple[str, ...] = ()
