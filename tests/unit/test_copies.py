"""Which accepted signal a new one repeats (signals.copies), apart from the database that loads them."""

from datetime import UTC, datetime, timedelta

from quantdesk.signals.copies import Copies, Copy, lock_key
from quantdesk.signals.models import Signal

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def signal(
    signal_id: int, account_id: int = 1, token_id: int | None = 1, external_id: str | None = None, body: str = "b"
) -> Signal:
    return Signal(
        id=signal_id, account_id=account_id, token_id=token_id, external_id=external_id, body_hash=body,
        received_at=NOW,
    )  # fmt: skip


def earlier(copy_id: int, age_s: float, account_id: int = 1, token_id: int = 1, external_id: str | None = None) -> Copy:
    """A copy accepted ``age_s`` before NOW, of the body "b"."""
    return Copy(copy_id, account_id, token_id, external_id, "b", NOW - timedelta(seconds=age_s))


def test_a_signal_repeats_the_first_copy_with_its_id_on_its_account_whatever_its_age():
    copies = Copies([earlier(9, 86_400, external_id="tv-1"), earlier(3, 90_000, external_id="tv-1")], window_s=60)
    first = copies.first_of(signal(10, external_id="tv-1"))
    assert first is not None
    assert first.id == 3
    assert copies.first_of(signal(11, account_id=2, external_id="tv-1")) is None, "another account's id"
    assert copies.first_of(signal(12, external_id="tv-2")) is None


def test_a_signal_repeats_the_same_body_on_the_same_webhook_only_within_the_window():
    copies = Copies([earlier(5, 30)], window_s=60)
    assert (copies.first_of(signal(10)) or earlier(0, 0)).id == 5
    assert copies.first_of(signal(11, token_id=2)) is None, "the same body through another webhook"
    assert Copies([earlier(5, 61)], window_s=60).first_of(signal(12)) is None, "older than the window"


def test_a_signal_accepted_in_the_transaction_is_repeated_by_later_ones_and_keyed_for_later_transactions():
    copies = Copies([], window_s=60)
    accepted = signal(20, external_id="tv-9")
    copies.accept(accepted)
    assert accepted.copy_key == lock_key(accepted)
    again = copies.first_of(signal(21, external_id="tv-9"))
    assert again is not None
    assert again.id == 20
    assert copies.first_of(signal(22, external_id="tv-8")) is None
