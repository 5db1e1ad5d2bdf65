"""NOTIFY payloads: each names who its events are for, so that a process reads only what its sockets want."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from quantdesk.realtime.events import NOTIFY_LIMIT, QUEUE_STREAM, Event, audience, decode, heard, jsonable, payloads
from quantdesk.realtime.hub import Hub, Subscriber


def fill(user_id: int | None, n: int = 0) -> Event:
    return Event("trade_updates", {"event": "fill", "order": {"id": n, "note": "x" * 300}}, 1, user_id)


def test_a_payload_names_the_users_of_its_events_then_holds_them_all():
    events = [fill(7), fill(7), Event("ticks:EURUSD", {"price": "1.08"}), Event(QUEUE_STREAM, {})]
    (payload,) = payloads(events)
    names, body = heard(payload)
    assert names == {"7", "*", QUEUE_STREAM}
    assert decode(body) == events
    assert {audience(event) for event in events} == names


def test_payloads_split_below_the_notify_limit_each_with_its_own_audience():
    events = [fill(user_id, n) for n in range(60) for user_id in (1, 2)]
    chunks = payloads(events)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= NOTIFY_LIMIT for chunk in chunks)
    read = [heard(chunk) for chunk in chunks]
    assert [event for _, body in read for event in decode(body)] == events, "every event once, in order"
    assert all(names == {audience(event) for event in decode(body)} for names, body in read)


def test_an_event_too_large_for_one_notify_goes_as_its_outline_with_the_ids_to_read_it_by():
    signal = {"id": 9, "symbol": "ACME", "take_profit": [Decimal(100 + n) for n in range(2000)]}
    huge = Event("signal_updates", {"event": "executed", "signal": signal, "reason": "y" * 9000}, 1, 7)
    events = [fill(7, 1), huge, fill(7, 2)]
    chunks = payloads(events)
    assert all(len(chunk.encode()) <= NOTIFY_LIMIT for chunk in chunks)
    sent = [event for chunk in chunks for event in decode(heard(chunk)[1])]
    assert [sent[0], sent[2]] == [events[0], events[2]], "events that fit go whole"
    assert sent[1] == Event("signal_updates", {"outline": True, "event": "executed", "signal": {"id": 9}}, 1, 7)


def test_a_hub_reads_events_only_when_one_of_its_sockets_may_want_them():
    async def scenario() -> None:
        hub, reads = Hub(), []

        def events() -> list[Event]:
            reads.append(1)
            return [fill(7)]

        hub.heard(frozenset({"7", QUEUE_STREAM}), events)
        assert (reads, hub.work_waiting.is_set()) == ([], True), "no socket here: only the queue is heard"
        mine = Subscriber(7, 10, lambda: None)
        hub.add(Subscriber(8, 10, lambda: None))
        hub.heard(frozenset({"7"}), events)
        assert reads == [], "user 8's socket wants none of user 7's events"
        hub.add(mine)
        hub.heard(frozenset({"7"}), events)
        assert reads == [1]
        assert mine.queue.qsize() == 1
        hub.heard(frozenset({"*"}), events)
        assert reads == [1, 1], "an event for anyone listening is read whenever there is a socket"
        hub.remove(mine)
        hub.heard(frozenset({"7"}), events)
        assert reads == [1, 1]

    asyncio.run(scenario())


def test_a_payload_without_its_first_line_is_read_as_for_anyone():
    """As a server of an earlier version sends them, during an upgrade."""
    old = '[{"stream":"trade_updates","data":{},"account_id":1,"user_id":7}]'
    names, body = heard(old)
    assert names == {"*", QUEUE_STREAM}
    assert decode(body) == [Event("trade_updates", {}, 1, 7)]


def test_an_event_carries_decimals_as_the_api_writes_them_and_times_in_iso_8601_on_either_path():
    """NOTIFY payloads (PostgreSQL) are encoded at the commit; events delivered in the process (SQLite)
    are made JSON by ``jsonable``: the same values either way."""
    at = datetime(2026, 12, 4, 5, 6, 7, 89, tzinfo=UTC)
    event = Event("trade_updates", {"order": {"qty": Decimal("1.5"), "at": at}, "levels": (Decimal(2), None)}, 1, 7)
    (payload,) = payloads([event])
    (sent,) = decode(heard(payload)[1])
    expected = {
        "order": {"qty": "1.50000000", "at": "2026-12-04T05:06:07.000089+00:00"},
        "levels": ["2.00000000", None],
    }
    assert sent.data == expected
    assert jsonable(event.data) == expected


def test_an_event_refuses_a_value_json_cannot_carry():
    with pytest.raises(TypeError, match="cannot carry a set"):
        payloads([Event("trade_updates", {"ids": {1, 2}})])
