"""Webhook tokens: a secret in the URL (TradingView sends no headers), stored as a digest, one per use."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import keys
from quantdesk.accounts.models import Account, User
from quantdesk.core.clock import utcnow
from quantdesk.core.errors import Conflict, NotFound
from quantdesk.signals.models import WebhookToken

TOKEN_PREFIX = "wh_"  # noqa: S105 - a prefix, not a secret
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is kept to the minute: not one UPDATE per signal


@dataclass(frozen=True)
class Target:
    """Where a webhook URL posts: its token and account, and whether the account's owner is disabled."""

    token_id: int
    account_id: int
    generation: int
    owner_disabled: bool
    last_used_at: datetime | None


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create(session: AsyncSession, account: Account, label: str = "") -> tuple[WebhookToken, str]:
    secret = new_secret()
    token = WebhookToken(account_id=account.id, label=label, prefix=keys.lookup(secret), digest=keys.digest(secret))
    session.add(token)
    await session.flush()
    return token, secret


async def list_tokens(session: AsyncSession, account: Account) -> list[WebhookToken]:
    query = select(WebhookToken).where(WebhookToken.account_id == account.id).order_by(WebhookToken.id)
    return list(await session.scalars(query))


async def get_token(session: AsyncSession, account: Account, token_id: int) -> WebhookToken:
    token = await session.get(WebhookToken, token_id)
    if token is None or token.account_id != account.id:
        raise NotFound(f"account {account.id} has no webhook token {token_id}")
    return token


async def revoke(session: AsyncSession, account: Account, token_id: int) -> WebhookToken:
    token = await get_token(session, account, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


async def rotate(session: AsyncSession, account: Account, token_id: int) -> tuple[WebhookToken, str]:
    """A new secret for the same use: the old URL stops working at once."""
    token = await get_token(session, account, token_id)
    if token.revoked_at is not None:
        raise Conflict(f"webhook token {token_id} is revoked; create a new one")
    token.revoked_at = utcnow()
    return await create(session, account, token.label)


# Built once: the hot path of every webhook.
_TARGETS = (
    select(
        WebhookToken.id,
        WebhookToken.prefix,
        WebhookToken.digest,
        WebhookToken.revoked_at,
        WebhookToken.last_used_at,
        Account.id.label("account_id"),
        Account.generation,
        User.disabled_at,
    )
    .join(Account, Account.id == WebhookToken.account_id)
    .join(User, User.id == Account.user_id)
    .where(WebhookToken.prefix.in_(bindparam("prefixes", expanding=True)))
)


async def resolve(session: AsyncSession, secret: str) -> Target | None:
    """Where a URL secret posts, or None when no live token has it."""
    return (await resolve_many(session, {secret}))[secret]


async def resolve_many(session: AsyncSession, secrets: set[str]) -> dict[str, Target | None]:
    """Where each URL secret posts (None: no live token has it), in one query: the hot path of every
    webhook. The digest comparison takes the same time whatever the secret, so timing tells an attacker
    nothing about how close a guess was."""
    rows = await session.execute(_TARGETS, {"prefixes": sorted({keys.lookup(secret) for secret in secrets})})
    by_prefix = {row.prefix: row for row in rows}
    targets: dict[str, Target | None] = {}
    for secret in secrets:
        row = by_prefix.get(keys.lookup(secret))
        if row is None or not keys.matches(secret, row.digest) or row.revoked_at is not None:
            targets[secret] = None
        else:
            targets[secret] = Target(
                row.id, row.account_id, row.generation, row.disabled_at is not None, row.last_used_at
            )
    return targets


async def touch(session: AsyncSession, target: Target, now: datetime) -> None:
    """Note the token's use, at most once a minute."""
    await touch_many(session, [target], now)


async def touch_many(session: AsyncSession, targets: list[Target], now: datetime) -> None:
    due = sorted({t.token_id for t in targets if t.last_used_at is None or now - t.last_used_at >= TOUCH_EVERY})
    if due:
        await session.execute(update(WebhookToken).where(WebhookToken.id.in_(due)).values(last_used_at=now))
