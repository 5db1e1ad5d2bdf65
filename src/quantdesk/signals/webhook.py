"""The webhook's deliveries, received together: tokens resolved and checked, then the signals taken in."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.core.clock import utcnow
from quantdesk.core.config import Settings
from quantdesk.core.errors import Forbidden, NotFound, QuantdeskError
from quantdesk.signals import intake, tokens
from quantdesk.signals.gate import TokenBuckets
from quantdesk.signals.intake import Receipt

NO_WEBHOOK = "no webhook at this address: the token is unknown or was revoked"


@dataclass(frozen=True)
class Delivery:
    """One POST to a webhook URL: the secret in its path and the body, not yet read as a signal."""

    secret: str
    body: bytes


async def receive_deliveries(
    session: AsyncSession, deliveries: Sequence[Delivery], settings: Settings, limits: TokenBuckets
) -> list[Receipt | QuantdeskError]:
    """Each delivery's receipt, or why it was refused (an unknown or revoked token, a token sending too
    fast, a disabled owner) with nothing stored. The tokens are read in one query.

    A batch whose transaction fails is run again one delivery at a time (core.group_commit): those
    deliveries are counted twice against their token's rate, which only a failed batch costs."""
    targets = await tokens.resolve_many(session, {delivery.secret for delivery in deliveries})
    outcomes: list[intake.Message | QuantdeskError] = [_checked(d, targets.get(d.secret), limits) for d in deliveries]
    messages = [outcome for outcome in outcomes if isinstance(outcome, intake.Message)]
    used = {message.token_id for message in messages}
    await tokens.touch_many(session, [t for t in targets.values() if t is not None and t.token_id in used], utcnow())
    receipts = iter(await intake.receive_many(session, messages, settings))
    return [next(receipts) if isinstance(outcome, intake.Message) else outcome for outcome in outcomes]


def _checked(delivery: Delivery, target: tokens.Target | None, limits: TokenBuckets) -> intake.Message | QuantdeskError:
    if target is None:
        return NotFound(NO_WEBHOOK)
    try:
        limits.take(target.token_id)
    except QuantdeskError as too_fast:
        return too_fast
    if target.owner_disabled:
        return Forbidden("the owner of this webhook's account is disabled")
    recipient = intake.Recipient(target.account_id, target.generation)
    return intake.Message(recipient, delivery.body, "webhook", target.token_id)
