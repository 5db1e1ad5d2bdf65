"""Money and quantities: Decimal end to end, exact in both databases, strings on the wire.

PostgreSQL keeps them in ``NUMERIC``. SQLite has no decimal type (SQLAlchemy would go through float),
so there they are stored as their exact decimal text; code that compares or sums money does it on
Decimals in Python, never in SQLite's SQL.
"""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import Field, PlainSerializer
from sqlalchemy import Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

from quantdesk.core.errors import ValidationFailed

PLACES = 8  # cash, prices and quantities: satoshi precision
STEP = Decimal(1).scaleb(-PLACES)
MAX_DIGITS = 20  # up to 10^12 with 8 decimal places
MONEY_CONTEXT_DIGITS = 28  # Decimal's default precision, in which amounts are computed

# Input: a positive decimal string or number with at most 8 decimals; output: a decimal string.
Positive = Annotated[
    Decimal,
    Field(gt=0, max_digits=MAX_DIGITS, decimal_places=PLACES, allow_inf_nan=False, examples=["100.50"]),
]


# What the columns hold: NUMERIC(30, 10) on PostgreSQL, and Decimal's 28 significant digits with 8 of
# them after the point. An amount that reaches it (a price times a quantity, a balance) is refused.
LIMIT = Decimal(10) ** (MONEY_CONTEXT_DIGITS - PLACES)
LIMIT_TEXT = "10^20"


def quantize(value: Decimal) -> Decimal:
    """Rounded half to even to 8 decimal places (banker's rounding: no drift over many fills).

    An amount of 10^20 or more cannot be stored: it is refused (a 422 naming the limit), never a 500."""
    if not value.is_finite() or abs(value) >= LIMIT:
        raise ValidationFailed(
            f"the amount {value:.6g} is beyond what quantdesk stores: amounts (prices, quantities, their "
            f"products and balances) must stay below {LIMIT_TEXT}"
        )
    return value.quantize(STEP, rounding=ROUND_HALF_EVEN)


Amount = Annotated[Decimal, PlainSerializer(lambda d: format(quantize(d), "f"), return_type=str, when_used="json")]


def text(value: Decimal) -> str:
    """Plain notation, trailing zeros kept to the stored scale (``100.00000000`` reads as stored)."""
    return format(value, "f")


class ExactDecimal(TypeDecorator[Decimal]):
    impl = Numeric(30, 10)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(30, 10, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value)
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite amount")
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        # Both databases read back the same Decimal, at the scale everything is kept to.
        return None if value is None else quantize(Decimal(value))
