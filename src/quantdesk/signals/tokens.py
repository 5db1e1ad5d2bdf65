"""Webhook tokens: a secret in the URL (TradingView sends no headers), stored as a digest, one per use."""

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts import keys
from quantdesk.accounts.models import Account
from quantdesk.core.clock import utcnow
from quantdesk.core.errors import Conflict, NotFound
from quantdesk.signals.models import WebhookToken

TOKEN_PREFIX = "wh_"  # noqa: S105 - a prefix, not a secret


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


async def resolve(session: AsyncSession, secret: str) -> WebhookToken | None:
    """The live token of a URL secret, or None. The digest comparison takes the same time whatever
    the secret, so timing tells an attacker nothing about how close a guess was."""
    token = await session.scalar(select(WebhookToken).where(WebhookToken.prefix == keys.lookup(secret)))
    if token is None or not keys.matches(secret, token.digest) or token.revoked_at is not None:
        return None
    return token
