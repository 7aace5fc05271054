"""Exact decimal arithmetic for prices and sizes on the wire: a float's shortest repr becomes the
Decimal (0.1 is "0.1", never 0.1000000000000000055...), rounding is to a step in a stated
direction, and the wire text has neither an exponent nor trailing zeros."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

# Our own context, not the thread's: results never depend on what other code set globally.
_CTX = Context(prec=40, traps=[InvalidOperation, DivisionByZero, Overflow])

Number = Decimal | str | int | float


class OrderRuleError(ValueError):
    """An order that cannot be sent as asked; `reason` is a stable code (the reason of the
    rejection event), `detail` says what was wrong. Never carries key material."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def to_decimal(value: Number, what: str) -> Decimal:
    """A finite Decimal from a Decimal, an int, a decimal string or a float (through its shortest
    repr); ValueError naming `what` otherwise (bool is refused: it is an int by accident)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int | float):
        raise ValueError(f"{what} must be a number, got {type(value).__name__}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else _CTX.create_decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} is not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    return number


def positive(value: Number, what: str, reason: str) -> Decimal:
    """to_decimal, and > 0, else OrderRuleError(reason)."""
    try:
        number = to_decimal(value, what)
    except ValueError as exc:
        raise OrderRuleError(reason, str(exc)) from None
    if number <= 0:
        raise OrderRuleError(reason, f"{what} must be > 0, got {plain(number)}")
    return number


def plain(value: Decimal) -> str:
    """'9000', '0.001', '1234.5': no exponent, no trailing zeros, never '-0'."""
    text = format(value.normalize(_CTX), "f")
    return "0" if text == "-0" else text


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of step <= value (step > 0)."""
    return _CTX.multiply(_CTX.divide(value, step).to_integral_value(rounding=ROUND_FLOOR), step)


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of step >= value (step > 0)."""
    return _CTX.multiply(_CTX.divide(value, step).to_integral_value(rounding=ROUND_CEILING), step)


def multiply(a: Decimal, b: Decimal) -> Decimal:
    return _CTX.multiply(a, b)


def quantize(value: Decimal, decimals: int, rounding: str) -> Decimal:
    """value rounded to `decimals` places (>= 0) in the given direction."""
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=rounding, context=_CTX)
