"""HTTP endpoints of orders, the portfolio, assets and price ticks."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from quantdesk.accounts import service as accounts
from quantdesk.accounts.auth import AdminUser, BearerKey, CurrentUser, public_read
from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.group_commit import GroupCommit
from quantdesk.core.types import RowId, UtcInstant
from quantdesk.market import service as market_service
from quantdesk.market.models import Instrument
from quantdesk.market.schemas import InstrumentCreate, InstrumentUpdate
from quantdesk.trading import portfolio, prices, service
from quantdesk.trading.models import Order
from quantdesk.trading.schemas import (
    AssetCreate,
    AssetRead,
    AssetUpdate,
    OrderCreate,
    OrderDetail,
    OrderEventRead,
    OrderRead,
    OrderStatusFilter,
    PortfolioRead,
    PositionRead,
    PriceRead,
    Tick,
)

orders = APIRouter(prefix="/api/v1/orders", tags=["trading"])
portfolios = APIRouter(prefix="/api/v1/portfolio", tags=["trading"])
assets = APIRouter(prefix="/api/v1/assets", tags=["trading"])
ticks = APIRouter(prefix="/api/v1/instruments", tags=["trading"])


@orders.post(
    "",
    response_model=OrderRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": OrderRead, "description": "The order of a client_order_id seen before, unchanged."}},
)
async def place_order(request: Request, api_key: BearerKey, body: OrderCreate, response: Response) -> Order:
    """Buy or sell on one of your accounts. A market order fills at once at the last price plus slippage,
    and the answer is its confirmation (filled_quantity, filled_avg_price, commission, total).

    Orders arriving together are placed together, in one transaction (``app.state.order_desk``)."""
    desk: GroupCommit[service.KeyedOrder, service.Placed] = request.app.state.order_desk
    order, created = await desk.submit(service.KeyedOrder(api_key, body))
    if not created:
        response.status_code = status.HTTP_200_OK
    return order


@orders.get("", response_model=list[OrderRead])
async def list_orders(
    session: SessionDep,
    caller: CurrentUser,
    account_id: RowId | None = None,
    status_: Annotated[OrderStatusFilter, Query(alias="status")] = "all",
    since: Annotated[UtcInstant | None, Query(description="Created at or after (ISO 8601; UTC if no offset)")] = None,
    until: Annotated[UtcInstant | None, Query(description="Created before (ISO 8601; UTC if no offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Order]:
    return await service.list_orders(session, caller, account_id, status_, since, until, limit)


@orders.get("/{order_id}", response_model=OrderDetail)
async def get_order(session: SessionDep, caller: CurrentUser, order_id: RowId) -> OrderDetail:
    """The order, every status it passed through with the time and reason, and its bracket legs."""
    order = await service.get_order(session, caller, order_id)
    events = [OrderEventRead.model_validate(e) for e in await service.order_events(session, order)]
    legs = [OrderRead.model_validate(leg) for leg in await service.order_legs(session, order)]
    return OrderDetail.model_validate({**OrderRead.model_validate(order).model_dump(), "events": events, "legs": legs})


@orders.delete("/{order_id}", response_model=OrderRead)
async def cancel_order(session: SessionDep, caller: CurrentUser, order_id: RowId) -> Order:
    return await service.cancel_order(session, caller, order_id)


@portfolios.get("", response_model=list[PortfolioRead])
async def get_portfolio(
    session: SessionDep, caller: CurrentUser, account_id: RowId | None = None
) -> list[PortfolioRead]:
    """Per account: cash, positions at their last prices, total value (cash + market value), day change."""
    chosen = (
        [await accounts.get_account(session, account_id, caller)]
        if account_id is not None
        else await accounts.list_accounts(session, caller)
    )
    out = []
    for account in chosen:
        valuation = await portfolio.value(session, account)
        out.append(
            PortfolioRead(
                account_id=account.id,
                name=account.name,
                currency=account.currency,
                cash=account.cash,
                market_value=valuation.market_value,
                equity=valuation.equity,
                day_change=valuation.day_change,
                realized_pnl=valuation.realized_pnl,
                unrealized_pnl=valuation.unrealized_pnl,
                positions=[PositionRead.model_validate(h, from_attributes=True) for h in valuation.positions],
            )
        )
    return out


async def asset_read(session: SessionDep, instrument: Instrument) -> AssetRead:
    price = await prices.last_price(session, instrument)
    return AssetRead(
        id=instrument.id,
        symbol=instrument.symbol,
        name=instrument.name,
        asset_class=instrument.asset_class,
        currency=instrument.currency,
        fractional=instrument.allows_fractional,
        price=price.price if price else None,
        price_source=price.source if price else None,
        price_at=price.at if price else None,
    )


@assets.get("", response_model=list[AssetRead], dependencies=[Depends(public_read)])
async def list_assets(session: SessionDep) -> list[AssetRead]:
    """Every tradable instrument with its last price."""
    views = await market_service.list_instruments(session)
    return [await asset_read(session, view.instrument) for view in views]


@assets.post("", response_model=AssetRead, status_code=status.HTTP_201_CREATED)
async def create_asset(session: SessionDep, settings: SettingsDep, _admin: AdminUser, body: AssetCreate) -> AssetRead:
    data = InstrumentCreate.model_validate(body.model_dump(exclude={"price"}))
    instrument = await market_service.create_instrument(session, data)
    if body.price is not None:
        await prices.set_price(session, instrument, body.price, "admin", settings=settings)
    return await asset_read(session, instrument)


@assets.patch("/{symbol}", response_model=AssetRead)
async def update_asset(
    session: SessionDep, settings: SettingsDep, _admin: AdminUser, symbol: str, body: AssetUpdate
) -> AssetRead:
    """Rename, allow fractions, or reprice (the new last price triggers resting orders)."""
    changes = body.model_dump(exclude_unset=True, exclude={"price"})
    instrument = (
        await market_service.update_instrument(session, symbol, InstrumentUpdate.model_validate(changes))
        if changes
        else await market_service.require_instrument(session, symbol)
    )
    if body.price is not None:
        await prices.set_price(session, instrument, body.price, "admin", settings=settings)
    return await asset_read(session, instrument)


@assets.delete("/{symbol}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_asset(session: SessionDep, _admin: AdminUser, symbol: str) -> Response:
    """Refused with 409 while any account holds it."""
    await market_service.delete_instrument(session, symbol)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@ticks.post("/{symbol}/ticks", response_model=PriceRead)
async def post_tick(
    session: SessionDep, settings: SettingsDep, _admin: AdminUser, symbol: str, body: Tick
) -> PriceRead:
    """A new last price (from a feed or by hand); resting orders it triggers fill in the same transaction."""
    instrument = await market_service.require_instrument(session, symbol)
    filled = await prices.set_price(session, instrument, body.price, "tick", body.at, settings)
    current = await prices.last_price(session, instrument)
    if current is None:  # pragma: no cover - set_price has just stored it
        raise LookupError(symbol)
    return PriceRead(
        symbol=instrument.symbol, price=current.price, source=current.source, at=current.at, orders_filled=filled
    )
