"""The broker worker executes an account's waiting signals together: one claim, one transaction, each
order seeing what the ones before it did, and what they read and write shared by the batch."""

import asyncio
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from quantdesk.accounts.models import LedgerEntry
from quantdesk.core import db
from quantdesk.core.config import Settings
from quantdesk.signals import worker
from tests.conftest import counted_statements
from tests.integration.signal_helpers import holdings, send, signal_of, webhook_path
from tests.integration.trading_helpers import books, open_account


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.broker_worker = False  # the tests run the worker's steps themselves
    return settings


async def a_webhook_account(http: httpx.AsyncClient) -> tuple[int, str]:
    """A new account with 10,000 in cash, and its webhook's path."""
    account = await open_account(http, "10000")
    return account, await webhook_path(http, account)


async def received(http: httpx.AsyncClient, path: str, body: str) -> int:
    response = await send(http, path, body)
    assert response.status_code == 202, response.text
    return int(response.json()["signal_id"])


async def test_one_claim_executes_the_accounts_waiting_signals_in_arrival_order(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI, settings: Settings
):
    account, path = await a_webhook_account(alice)
    bracketed = await received(alice, path, "BUY ACME qty 2\nSL 90\nTP 110")
    added = await received(alice, path, "BUY ACME qty 1")
    close = await received(alice, path, "Close ACME")  # closes what the two before it bought, not yet stored
    reopened = await received(alice, path, "buy ACME qty 1")  # not the same body: not a copy

    assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EXECUTED
    assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EMPTY

    first, second, closer, last = [await signal_of(alice, s) for s in (bracketed, added, close, reopened)]
    assert (first["status"], second["status"]) == ("closed", "closed"), (first, second)
    assert first["exit_price"] == second["exit_price"] == "100.00000000"
    assert closer["status"] == "executed", closer
    assert last["status"] == "executed", last
    assert [e["status"] for e in first["events"]] == ["pending", "executed", "closed"]
    legs = (await alice.get(f"/api/v1/orders/{first['order_id']}")).json()["legs"]
    assert {leg["leg"]: leg["status"] for leg in legs} == {"take_profit": "canceled", "stop_loss": "canceled"}
    sold = (await alice.get(f"/api/v1/orders/{closer['order_id']}")).json()
    assert (sold["side"], sold["filled_quantity"]) == ("sell", "3.00000000")
    state = await books(alice, account)
    assert holdings(state) == {"ACME": "1.00000000"}
    assert Decimal(state["cash"]) == Decimal("9900")  # -200 -100 +300 -100, no commission by default


async def test_an_opposite_signal_in_the_same_claim_closes_the_position_bought_before_it(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI, settings: Settings
):
    account, path = await a_webhook_account(alice)
    bought = await received(alice, path, "BUY ACME qty 2")
    sold = await received(alice, path, "SELL ACME qty 1")

    assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EXECUTED

    opened, opposite = await signal_of(alice, bought), await signal_of(alice, sold)
    assert opened["status"] == "closed", opened
    assert opposite["status"] == "closed", opposite  # it closed the long, and could do no more
    assert "short selling is off" in opposite["reason"]
    state = await books(alice, account)
    assert holdings(state) == {}
    assert Decimal(state["cash"]) == Decimal("10000")


async def statements_of_one_claim(app: FastAPI, settings: Settings) -> list[str]:
    with counted_statements(app.state.engine) as sent:
        assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EXECUTED
    return sent


async def test_many_waiting_orders_cost_the_statements_of_one(
    market: httpx.AsyncClient, alice: httpx.AsyncClient, app: FastAPI, settings: Settings
):
    settings.gem_milestones = {}  # a milestone reached in one batch and not the other would add a statement
    alone, together = await open_account(alice, "10000"), await open_account(alice, "10000", name="second")
    alone_path, together_path = await webhook_path(alice, alone), await webhook_path(alice, together)
    await received(alice, alone_path, "BUY ACME")  # the oldest waiting order: its account is claimed first
    many = [await received(alice, together_path, f"BUY ACME qty {n}") for n in (1, 2, 3, 4, 5)]

    one_order = await statements_of_one_claim(app, settings)
    five_orders = await statements_of_one_claim(app, settings)

    # Each order adds the lookup of its signal (the lifecycle follows the order); everything else is read
    # and written once for the batch.
    sqlite = app.state.engine.dialect.name == "sqlite"

    def own(statement: str) -> bool:
        return "WHERE signals.order_id =" in statement

    def shared(statements: list[str]) -> list[str]:
        # A list of keys or of rows is one statement, however long; SQLite's numbered rows (the fills) go
        # in one INSERT each (in-process: no round trips).
        kept = [s for s in statements if not own(s) and not (sqlite and s.startswith("INSERT"))]
        keys = [re.sub(r"IN \([^)]*\)", "IN (...)", s) for s in kept]
        return [re.sub(r"^(INSERT INTO \w+ ).*", r"\1...", s, flags=re.DOTALL) for s in keys]

    assert shared(five_orders) == shared(one_order), (one_order, five_orders)
    assert (sum(map(own, one_order)), sum(map(own, five_orders))) == (1, 5)
    assert [(await signal_of(alice, s))["status"] for s in many] == ["executed"] * 5
    assert holdings(await books(alice, together)) == {"ACME": "15.00000000"}


async def test_a_batch_that_fails_at_its_commit_rejects_only_the_order_that_failed_it(
    market: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
):
    account, path = await a_webhook_account(alice)
    first, poisoned, last = [await received(alice, path, f"BUY ACME qty {n}") for n in (1, 2, 3)]
    poisoned_order = (await signal_of(alice, poisoned))["order_id"]
    write_pending = db.write_pending

    def failing_on_its_ledger(session: Session) -> None:
        # A fault only the commit meets, as a constraint or a bug in writing one order's rows would be.
        records = session.info.get(db._RECORDS_KEY, {})
        if any(entry.values["order_id"].id == poisoned_order for entry in records.get(LedgerEntry, [])):
            raise RuntimeError("a bug in writing the ledger")
        write_pending(session)

    monkeypatch.setattr(db, "write_pending", failing_on_its_ledger)
    assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EXECUTED
    assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EMPTY

    statuses = [(await signal_of(alice, s))["status"] for s in (first, poisoned, last)]
    assert statuses == ["executed", "rejected", "executed"]
    assert (await signal_of(alice, poisoned))["reason"] == "the broker could not execute it (RuntimeError)"
    state = await books(alice, account)
    assert holdings(state) == {"ACME": "4.00000000"}
    assert Decimal(state["cash"]) == Decimal("9600")


async def test_a_batch_lets_the_tasks_waiting_meanwhile_run_between_its_orders(
    market: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
):
    """One transaction, but not one stretch of the event loop: a request that arrives while a batch
    executes is taken up after the order in hand, not after the whole batch (whose orders, reading what
    the batch read once, need no database on their own)."""
    _, path = await a_webhook_account(alice)
    for quantity in (1, 2, 3):
        await received(alice, path, f"BUY ACME qty {quantity}")
    timeline: list[str] = []
    execute = worker.execute

    async def noted(*args: Any, **kwargs: Any) -> None:
        timeline.append("order")
        await execute(*args, **kwargs)
        asyncio.get_running_loop().call_soon(timeline.append, "waiting task")  # ready once the order is done

    monkeypatch.setattr(worker, "execute", noted)
    assert await worker.execute_next(app.state.sessionmaker, settings) is worker.Outcome.EXECUTED
    assert timeline == ["order", "waiting task"] * 3
