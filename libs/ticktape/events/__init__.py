"""Event contracts: one module per stream family, joined here into one tagged union."""

from __future__ import annotations

from ticktape.events.control import EmergencyStop, ResumeTrading, ShutdownRequested
from ticktape.events.dlq import DeadLettered
from ticktape.events.envelope import Envelope
from ticktape.events.execution import (
    AccountUpdated,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
)
from ticktape.events.market import BarClosed, BarRejected, FundingRate, MarketDataStatus, ShardStatus, TradeTick
from ticktape.events.ops import StorageAlert
from ticktape.events.reconciliation import AccountReconciled, ReconciliationDifference, VenueCancelRequested
from ticktape.events.risk import OrderApproved, OrderRejected, RiskHalted
from ticktape.events.session import SessionStarted, SessionStopped
from ticktape.events.signals import SignalGenerated, StrategyQuarantined, Vote
from ticktape.events.strategies import StrategyChanged
from ticktape.events.universe import UniverseMember, UniverseTrimmed, UniverseUpdated
from ticktape.events.venue import (
    VenueFill,
    VenueFunding,
    VenueOpenOrder,
    VenueOrderAccepted,
    VenueOrderCanceled,
    VenueOrderRejected,
    VenueOrderUnknown,
    VenuePosition,
    VenueSnapshot,
)
from ticktape.events.workers import WorkersChosen

EVENT_TYPES: tuple[type[Envelope], ...] = (
    BarClosed,
    UniverseUpdated,
    SignalGenerated,
    OrderApproved,
    OrderRejected,
    OrderSubmitted,
    OrderCanceled,
    OrderFilled,
    PositionUpdated,
    AccountUpdated,
    EmergencyStop,
    ResumeTrading,
    DeadLettered,
    TradeTick,
    MarketDataStatus,
    SessionStarted,
    SessionStopped,
    BarRejected,
    StorageAlert,
    UniverseTrimmed,
    RiskHalted,
    ShutdownRequested,
    StrategyQuarantined,
    VenueOrderAccepted,
    VenueOrderRejected,
    VenueOrderUnknown,
    VenueFill,
    VenueOrderCanceled,
    VenueSnapshot,
    ReconciliationDifference,
    AccountReconciled,
    VenueCancelRequested,
    FundingRate,
    StrategyChanged,
    WorkersChosen,
    VenueFunding,
)

Event = (
    BarClosed
    | UniverseUpdated
    | SignalGenerated
    | OrderApproved
    | OrderRejected
    | OrderSubmitted
    | OrderCanceled
    | OrderFilled
    | PositionUpdated
    | AccountUpdated
    | EmergencyStop
    | ResumeTrading
    | DeadLettered
    | TradeTick
    | MarketDataStatus
    | SessionStarted
    | SessionStopped
    | BarRejected
    | StorageAlert
    | UniverseTrimmed
    | RiskHalted
    | ShutdownRequested
    | StrategyQuarantined
    | VenueOrderAccepted
    | VenueOrderRejected
    | VenueOrderUnknown
    | VenueFill
    | VenueOrderCanceled
    | VenueSnapshot
    | ReconciliationDifference
    | AccountReconciled
    | VenueCancelRequested
    | FundingRate
    | StrategyChanged
    | WorkersChosen
    | VenueFunding
)


def type_tag(cls: type[Envelope]) -> str:
    return cls.__struct_config__.tag  # type: ignore[return-value]


__all__ = [
    "AccountReconciled",
    "AccountUpdated",
    "BarClosed",
    "BarRejected",
    "DeadLettered",
    "EVENT_TYPES",
    "EmergencyStop",
    "FundingRate",
    "MarketDataStatus",
    "SessionStarted",
    "SessionStopped",
    "ShardStatus",
    "TradeTick",
    "Envelope",
    "Event",
    "OrderApproved",
    "OrderCanceled",
    "OrderFilled",
    "OrderRejected",
    "OrderSubmitted",
    "PositionUpdated",
    "ReconciliationDifference",
    "ResumeTrading",
    "RiskHalted",
    "ShutdownRequested",
    "SignalGenerated",
    "StorageAlert",
    "StrategyChanged",
    "StrategyQuarantined",
    "UniverseMember",
    "UniverseTrimmed",
    "UniverseUpdated",
    "VenueCancelRequested",
    "VenueFill",
    "VenueFunding",
    "VenueOrderAccepted",
    "VenueOrderCanceled",
    "VenueOrderRejected",
    "WorkersChosen",
    "VenueOpenOrder",
    "VenueOrderUnknown",
    "VenuePosition",
    "VenueSnapshot",
    "Vote",
    "type_tag",
]
