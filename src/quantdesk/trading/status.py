"""An order's change of status: stored with its time and reason, and published as a trade update."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.clock import utcnow
from quantdesk.core.db import append, id_of
from quantdesk.realtime.events import publish
from quantdesk.trading.models import Order, OrderEvent

# Alpaca's trade_updates event names for our statuses.
EVENT_NAMES = {
    "new": "new",
    "accepted": "accepted",
    "partially_filled": "partial_fill",
    "filled": "fill",
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "rejected",
}


def order_view(order: Order) -> dict[str, Any]:
    return {
        "id": id_of(order),  # a new order has its id once the transaction writes it
        "account_id": order.account_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "time_in_force": order.time_in_force,
        "qty": order.quantity,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "status": order.status,
        "reason": order.reason,
        "leg": order.leg,
        "parent_id": order.parent_id,
        "source": order.source,
        "client_order_id": order.client_order_id,
        "filled_qty": order.filled_quantity,
        "filled_avg_price": order.filled_avg_price,
        "commission": order.commission,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def announce(session: AsyncSession, order: Order, fill: dict[str, Any] | None = None) -> None:
    """Publish the order's current status on its owner's trade_updates stream; a fill's event also has
    Alpaca's ``execution_id`` and ``position_qty`` (``fill``)."""
    data: dict[str, Any] = {"event": EVENT_NAMES[order.status], "timestamp": order.updated_at}
    if order.status == "filled":
        data["price"], data["qty"] = order.filled_avg_price, order.filled_quantity
    data |= fill or {}
    data["order"] = order_view(order)
    publish(session, "trade_updates", data, order.account_id)


def transition(
    session: AsyncSession, order: Order, status: str, reason: str | None = None, fill: dict[str, Any] | None = None
) -> None:
    order.status, order.updated_at = status, utcnow()
    if reason is not None:
        order.reason = reason
    append(session, OrderEvent, order_id=order, status=status, reason=reason, at=order.updated_at)
    announce(session, order, fill)
