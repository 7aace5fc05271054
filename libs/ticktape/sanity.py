"""Hard sanity bounds on prices, amounts and notionals, and the check that an event carries only
finite numbers; shared by every core that reads or writes them.

msgspec writes NaN and +-inf as JSON null, which no decoder of a float field accepts: one
non-finite float in an output would make every later event that carries it undecodable for its
consumers. It cannot come from the bus (JSON has no NaN, and a number too large for a float,
"1e309", fails to decode), so it can only come from arithmetic inside a core on absurd but
finite input (1e308 x 2). The bounds keep every price, amount and notional that a core accepts
so far from the float limits that any sum or product the cores form stays finite, and
`ensure_finite` is the last line: a core checks its outputs before it returns them."""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec
import msgspec.inspect as mi

# No listed asset trades outside these in any quote currency (the smallest Binance tick is
# 1e-8); 1e308 is a bug or a forgery, 1e-320 (a subnormal float) is garbage.
MIN_PRICE = 1e-12
MAX_PRICE = 1e12
# A volume, size or quantity: far above any real one, far below the float limit, so sums of
# a day of them stay finite.
MAX_AMOUNT = 1e30
# One order's quantity x price, in quote currency.
MAX_NOTIONAL = 1e12


class NonFiniteOutput(RuntimeError):
    """A core was about to emit NaN or infinity: a bug in the core, never published."""


def price_problem(name: str, value: float, *, low: float = MIN_PRICE, high: float = MAX_PRICE) -> str | None:
    """Why `value` is not a usable price (not finite, or outside [low, high]), or None."""
    if math.isfinite(value) and low <= value <= high:
        return None
    return f"{name} must be finite and within [{low:g}, {high:g}] (got {value!r})"


def amount_problem(name: str, value: float, *, high: float = MAX_AMOUNT) -> str | None:
    """Why `value` is not a usable volume or size (not finite, negative, above high), or None."""
    if math.isfinite(value) and 0.0 <= value <= high:
        return None
    return f"{name} must be finite and within [0, {high:g}] (got {value!r})"


def nonfinite_field(event: msgspec.Struct) -> str | None:
    """The path of the first NaN or infinite float in `event` (nested Structs, tuples, lists
    and dict values included), e.g. 'fee=inf' or 'votes[2].fast_ema=nan', or None."""
    for name in _may_hold_floats(type(event)):
        found = _nonfinite(getattr(event, name), name)
        if found is not None:
            return found
    return None


_PLAIN = (mi.StrType, mi.BoolType, mi.NoneType, mi.BytesType)
_PLANS: dict[type[msgspec.Struct], tuple[str, ...]] = {}


def _plain(t: mi.Type) -> bool:
    """A field type no arithmetic fills: strings, bools, string literals and unions of them (an
    int field is still looked into: a core's arithmetic could put a float there)."""
    if isinstance(t, mi.LiteralType):
        return all(isinstance(v, str) for v in t.values)
    if isinstance(t, mi.UnionType):
        return all(_plain(u) for u in t.types)
    return isinstance(t, _PLAIN)


def _may_hold_floats(cls: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of a Struct type worth looking into: all but those typed as text or flags."""
    plan = _PLANS.get(cls)
    if plan is None:
        info = mi.type_info(cls)
        fields = info.fields if isinstance(info, mi.StructType) else ()
        plan = tuple(f.name for f in fields if not _plain(f.type)) if fields else tuple(cls.__struct_fields__)
        _PLANS[cls] = plan
    return plan


def _nonfinite(value: object, path: str) -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path}={value!r}"
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found = _nonfinite(getattr(value, name), f"{path}.{name}")
            if found is not None:
                return found
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            found = _nonfinite(item, f"{path}[{i}]")
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _nonfinite(item, f"{path}[{key!r}]")
            if found is not None:
                return found
    return None


def ensure_finite(events: Iterable[msgspec.Struct]) -> None:
    """Raise NonFiniteOutput naming the event and field when any event carries NaN or infinity."""
    for event in events:
        found = nonfinite_field(event)
        if found is not None:
            raise NonFiniteOutput(f"{type(event).__name__} would carry a non-finite number: {found}")
