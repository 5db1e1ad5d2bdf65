"""Signals received together, in one transaction: each gets the receipt it would get alone."""

import json
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.accounts import service as accounts
from quantdesk.core.db import create_sessionmaker, session_scope
from quantdesk.core.errors import Forbidden, NotFound, QuantdeskError, TooManyRequests
from quantdesk.market.models import Instrument
from quantdesk.signals import intake, tokens, webhook
from quantdesk.signals.gate import TokenBuckets
from quantdesk.signals.models import Signal, SignalEvent
from quantdesk.trading import prices
from quantdesk.trading.models import Order, OrderEvent


async def an_account_trading_eurusd(engine: AsyncEngine) -> tuple[intake.Recipient, str]:
    """A trader's account, EURUSD priced at 1.08, and a webhook secret of the account."""
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        user, _ = await accounts.create_user(session, "trader")
        account = await accounts.open_account(session, user, "main", "USD", Decimal("100000"))
        instrument = Instrument(symbol="EURUSD", currency="USD", asset_class="fx", fractional=True)
        session.add(instrument)
        await session.flush()
        await prices.set_price(session, instrument, Decimal("1.08"), "admin")
        _, secret = await tokens.create(session, account)
        return intake.Recipient(account.id, account.generation), secret


def tradingview(action: str, signal_id: str | None = None, ticker: str = "EURUSD") -> bytes:
    body = {"action": action, "ticker": ticker, "contracts": "1000"} | ({"id": signal_id} if signal_id else {})
    return json.dumps(body).encode()


async def test_signals_received_together_each_get_their_own_receipt(engine, settings):
    recipient, _ = await an_account_trading_eurusd(engine)
    bodies = [
        tradingview("buy", "s1"),
        tradingview("buy", "s1"),  # the same id again
        b"BUY EURUSD @1.0850\nSL 1.0900",  # a stop-loss above a buy's entry
        b"SELL EURUSD NOW",
        b"SELL EURUSD NOW",  # the same body again, no id
        tradingview("close"),  # closes what the first signal buys, though it is not stored yet
        tradingview("buy", ticker="NOPE"),
    ]
    messages = [intake.Message(recipient, body, "webhook") for body in bodies]
    async with session_scope(create_sessionmaker(engine), write=True) as session:
        receipts = await intake.receive_many(session, messages, settings)

    outcomes = [(r.outcome, r.signal_id) for r in receipts]
    first, copy, invalid, sell, resent, close, unknown = receipts
    assert first.outcome == "accepted"
    assert (copy.outcome, copy.signal_id) == ("duplicate", first.signal_id), outcomes
    assert invalid.outcome == "rejected"
    assert "below the entry" in (invalid.reason or "")
    assert sell.outcome == "accepted"
    assert (resent.outcome, resent.signal_id) == ("duplicate", sell.signal_id), outcomes
    assert close.outcome == "accepted", close.reason
    assert unknown.outcome == "rejected"
    assert "NOPE" in (unknown.reason or "")
    async with create_sessionmaker(engine)() as session:
        stored = {s.id: s for s in await session.scalars(select(Signal))}
        assert [stored[r.stored_id].status for r in receipts] == [
            "pending", "duplicate", "rejected", "pending", "duplicate", "pending", "rejected",
        ]  # fmt: skip
        assert stored[copy.stored_id].duplicate_of == first.signal_id
        orders = list(await session.scalars(select(Order).order_by(Order.id)))
        assert [(o.signal_id, o.leg) for o in orders] == [
            (first.signal_id, "entry"),
            (sell.signal_id, "entry"),
            (close.signal_id, "close"),
        ]
        assert all(stored[o.signal_id or 0].order_id == o.id for o in orders)
        assert await session.scalar(select(func.count()).select_from(OrderEvent)) == 3
        assert await session.scalar(select(func.count()).select_from(SignalEvent)) == len(bodies)


async def test_a_signal_repeats_one_accepted_in_an_earlier_transaction(engine, settings):
    recipient, _ = await an_account_trading_eurusd(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        (first,) = await intake.receive_many(
            session, [intake.Message(recipient, tradingview("buy", "a"), "api")], settings
        )
    async with session_scope(factory, write=True) as session:
        again, other = await intake.receive_many(
            session,
            [
                intake.Message(recipient, tradingview("buy", "a"), "api"),
                intake.Message(recipient, tradingview("buy", "b"), "api"),
            ],
            settings,
        )
    assert (again.outcome, again.signal_id) == ("duplicate", first.signal_id)
    assert other.outcome == "accepted"


async def test_deliveries_to_unknown_revoked_and_throttled_tokens_are_refused_storing_nothing(engine, settings):
    recipient, secret = await an_account_trading_eurusd(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        account = await accounts.get_account(session, recipient.account_id, accounts.Principal(0, "op", "admin"))
        revoked_token, revoked = await tokens.create(session, account, "old")
        await tokens.revoke(session, account, revoked_token.id)
    limits = TokenBuckets(rate=1.0, burst=2)
    deliveries = [
        webhook.Delivery(secret, tradingview("buy", "1")),
        webhook.Delivery("wh_nobody", tradingview("buy", "2")),
        webhook.Delivery(revoked, tradingview("buy", "3")),
        webhook.Delivery(secret, tradingview("buy", "4")),
        webhook.Delivery(secret, tradingview("buy", "5")),  # past the burst of 2
    ]
    async with session_scope(factory, write=True) as session:
        outcomes = await webhook.receive_deliveries(session, deliveries, settings, limits)
    assert [type(o).__name__ for o in outcomes] == ["Receipt", "NotFound", "NotFound", "Receipt", "TooManyRequests"]
    assert isinstance(outcomes[1], NotFound)
    assert isinstance(outcomes[4], TooManyRequests)
    assert not any(isinstance(o, QuantdeskError) for o in (outcomes[0], outcomes[3]))
    async with factory() as session:
        assert sorted(str(i) for i in await session.scalars(select(Signal.external_id))) == ["1", "4"]


async def test_a_delivery_for_a_disabled_owner_is_forbidden(engine, settings):
    _, secret = await an_account_trading_eurusd(engine)
    factory = create_sessionmaker(engine)
    async with session_scope(factory, write=True) as session:
        await accounts.set_disabled(session, await accounts.user_by_name(session, "trader"), True)
    async with session_scope(factory, write=True) as session:
        (outcome,) = await webhook.receive_deliveries(
            session, [webhook.Delivery(secret, tradingview("buy"))], settings, TokenBuckets(0, 1)
        )
    assert isinstance(outcome, Forbidden)
