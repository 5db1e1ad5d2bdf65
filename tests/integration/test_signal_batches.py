"""Signals received together, in one transaction: each gets the receipt it would get alone."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantdesk.accounts import service as accounts
from quantdesk.core.db import create_engine, create_sessionmaker, session_scope
from quantdesk.core.errors import Forbidden, NotFound, QuantdeskError, TooManyRequests
from quantdesk.market.models import Instrument
from quantdesk.signals import intake, tokens, webhook
from quantdesk.signals.copies import EARLIER_ON_POSTGRES
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
        assert [o.leg for o in orders] == ["entry", "entry", "close"]
        assert [stored[r.signal_id].order_id for r in (first, sell, close)] == [o.id for o in orders]
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


async def test_copies_are_found_by_id_at_any_age_and_by_body_within_the_window(engine, settings):
    recipient, _ = await an_account_trading_eurusd(engine)
    factory = create_sessionmaker(engine)

    async def receive(*bodies: bytes) -> list[intake.Receipt]:
        async with session_scope(factory, write=True) as session:
            messages = [intake.Message(recipient, body, "api") for body in bodies]
            return await intake.receive_many(session, messages, settings)

    async def age_everything(seconds: float) -> None:
        async with session_scope(factory, write=True) as session:
            for signal in await session.scalars(select(Signal)):
                signal.received_at -= timedelta(seconds=seconds)

    with_id, plain, invalid = tradingview("buy", "tv-7"), b"BUY EURUSD qty 1000", b"BUY EURUSD @1.0850\nSL 1.0900"
    first_with_id, first_plain, rejected = await receive(with_id, plain, invalid)
    assert (first_with_id.outcome, first_plain.outcome, rejected.outcome) == ("accepted", "accepted", "rejected")
    await age_everything(settings.signal_dedupe_window_s - 5)
    inside = await receive(with_id, plain, invalid)
    assert [(r.outcome, r.signal_id) for r in inside[:2]] == [
        ("duplicate", first_with_id.signal_id),
        ("duplicate", first_plain.signal_id),
    ]
    assert inside[2].outcome == "rejected"  # a rejected signal is no first copy
    await age_everything(365 * 24 * 3600)
    id_again, plain_again = await receive(with_id, plain)
    assert (id_again.outcome, id_again.signal_id) == ("duplicate", first_with_id.signal_id)
    assert plain_again.outcome == "accepted"  # the same body, long after the window


@pytest.mark.postgres
async def test_copies_are_looked_up_by_key_even_before_postgresql_has_statistics(postgresql_url):
    """A new database has no statistics yet; the lookup of earlier copies must still probe the index
    rather than read the whole table (what a plan made while the table was empty would do)."""
    engine = create_engine(postgresql_url)
    sql = str(EARLIER_ON_POSTGRES.compile(dialect=engine.dialect))
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        await connection.exec_driver_sql(f"PREPARE copies (bigint[], timestamptz[]) AS {sql}")
        plan = "\n".join(
            row[0]
            for row in await connection.exec_driver_sql(
                "EXPLAIN EXECUTE copies ('{1, 2}', '{2026-12-01 00:00+00, 2026-12-01 00:00+00}')"
            )
        )
        await connection.rollback()
    await engine.dispose()
    assert "Index Scan using ix_signals_copies on signals" in plan, plan
    assert "Seq Scan on signals" not in plan, plan


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
