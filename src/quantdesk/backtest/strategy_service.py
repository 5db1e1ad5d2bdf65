"""Which strategies a caller may run, and users' rule strategies: stored, versioned, soft-deleted.

A name means, in this order: a built-in, an installed Python strategy, then the caller's own rule strategy
(names that would shadow the first two are refused when stored). Editing stores a new version; deleting
marks every version deleted but keeps them, so a run can always be rerun with the version it used.
"""

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.service import Principal
from quantdesk.backtest import plugins, rule_strategy
from quantdesk.backtest.models import StoredStrategy
from quantdesk.backtest.schemas import ParamRead, StrategyCheck, StrategyRead
from quantdesk.backtest.strategies import STRATEGIES, Strategy, bind
from quantdesk.core.clock import utcnow
from quantdesk.core.db import dialect_name
from quantdesk.core.errors import Conflict, Forbidden, NotFound, ValidationFailed

MAX_STRATEGIES_PER_USER = 200


def shared() -> dict[str, Strategy]:
    """Built-ins and installed strategies: every user may run them."""
    return {**STRATEGIES, **plugins.installed()}


async def lookup(session: AsyncSession, name: str, version: int | None, owner_id: int | None) -> Strategy:
    """The strategy a run asks for: a built-in, an installed one, or the owner's rule strategy (the latest
    live version, or exactly ``version``, deleted or not)."""
    found = shared().get(name)
    if found is not None:
        if version is not None:
            raise ValidationFailed(f"{name} is a {found.kind} strategy and has no versions: leave strategy_version out")
        return found
    row = None if owner_id is None else await _stored(session, owner_id, name, version)
    if row is None:
        mine = [] if owner_id is None else await _names(session, owner_id)
        hint = f"; yours: {', '.join(mine)}" if mine else ""
        which = f"version {version} of " if version is not None and name in mine else ""
        raise ValidationFailed(
            f"unknown strategy {which}'{name}'; valid ones: {', '.join(shared())}{hint} (GET /api/v1/strategies)"
        )
    return rule_strategy.compile_document(row.document, row.version)


async def available(session: AsyncSession, owner_id: int | None) -> dict[str, Strategy]:
    """Every strategy the owner may run, by name: the shared ones, then the owner's rule strategies (latest)."""
    found = dict(shared())
    if owner_id is None:
        return found
    rows = await session.scalars(
        select(StoredStrategy)
        .where(StoredStrategy.owner_id == owner_id, StoredStrategy.deleted_at.is_(None))
        .order_by(StoredStrategy.name, StoredStrategy.version)
    )
    for row in rows:  # later versions replace earlier ones
        found[row.name] = rule_strategy.compile_document(row.document, row.version)
    return found


async def _stored(session: AsyncSession, owner_id: int, name: str, version: int | None) -> StoredStrategy | None:
    query = select(StoredStrategy).where(StoredStrategy.owner_id == owner_id, StoredStrategy.name == name)
    if version is not None:
        return await session.scalar(query.where(StoredStrategy.version == version))
    live = query.where(StoredStrategy.deleted_at.is_(None))
    return await session.scalar(live.order_by(StoredStrategy.version.desc()).limit(1))


async def _names(session: AsyncSession, owner_id: int) -> list[str]:
    live = select(StoredStrategy.name).where(StoredStrategy.owner_id == owner_id, StoredStrategy.deleted_at.is_(None))
    return sorted(set(await session.scalars(live)))


def check(document: dict[str, Any]) -> StrategyCheck:
    """Compile a document without storing it: its parameter table, or the errors with their positions."""
    strategy = rule_strategy.compile_document(document)
    return StrategyCheck(
        name=strategy.name, params=param_reads(strategy), warmup_bars=strategy.warmup(bind(strategy, None))
    )


async def create_strategy(session: AsyncSession, caller: Principal, document: dict[str, Any]) -> StoredStrategy:
    strategy = rule_strategy.compile_document(document)
    _refuse_shadowing(strategy.name)
    await _lock_owner(session, caller.user_id)
    if await _stored(session, caller.user_id, strategy.name, None) is not None:
        raise Conflict(
            f"you already have a strategy '{strategy.name}': PUT /api/v1/strategies/{strategy.name} edits it"
        )
    count = await session.scalar(
        select(func.count(func.distinct(StoredStrategy.name))).where(
            StoredStrategy.owner_id == caller.user_id, StoredStrategy.deleted_at.is_(None)
        )
    )
    if (count or 0) >= MAX_STRATEGIES_PER_USER:
        raise ValidationFailed(f"you have {count} strategies; at most {MAX_STRATEGIES_PER_USER}: delete one first")
    return await _add_version(session, caller.user_id, strategy.name, document)


async def update_strategy(
    session: AsyncSession, caller: Principal, name: str, document: dict[str, Any]
) -> StoredStrategy:
    """A new version of the caller's strategy (the document's name, if given, must be the same)."""
    document = {**document, "name": document.get("name", name)}
    if document["name"] != name:
        raise ValidationFailed(f"the document is named {document['name']!r} but the address names {name!r}")
    rule_strategy.compile_document(document)
    await _lock_owner(session, caller.user_id)
    if await _stored(session, caller.user_id, name, None) is None:
        raise NotFound(f"you have no strategy '{name}': create it with POST /api/v1/strategies")
    return await _add_version(session, caller.user_id, name, document)


async def delete_strategy(session: AsyncSession, caller: Principal, name: str) -> None:
    """Soft: every version is marked deleted, and runs made with them stay rerunnable."""
    if await _stored(session, caller.user_id, name, None) is None:
        raise NotFound(f"you have no strategy '{name}'")
    await session.execute(
        update(StoredStrategy)
        .where(
            StoredStrategy.owner_id == caller.user_id, StoredStrategy.name == name, StoredStrategy.deleted_at.is_(None)
        )
        .values(deleted_at=utcnow())
    )


async def _add_version(session: AsyncSession, owner_id: int, name: str, document: dict[str, Any]) -> StoredStrategy:
    latest = await session.scalar(
        select(func.max(StoredStrategy.version)).where(StoredStrategy.owner_id == owner_id, StoredStrategy.name == name)
    )
    row = StoredStrategy(owner_id=owner_id, name=name, version=(latest or 0) + 1, document=document)
    session.add(row)
    await session.flush()
    return row


async def _lock_owner(session: AsyncSession, owner_id: int) -> None:
    """Two edits at once must not both take the same next version: on PostgreSQL the owner's row is locked
    (SQLite's writers take turns anyway; the unique constraint backs both)."""
    if dialect_name(session) == "postgresql":
        from quantdesk.accounts.models import User

        await session.execute(select(User.id).where(User.id == owner_id).with_for_update())


def _refuse_shadowing(name: str) -> None:
    found = shared().get(name)
    if found is not None:
        raise Conflict(f"'{name}' is the name of a {found.kind} strategy; choose another name")


async def list_strategies(session: AsyncSession, caller: Principal | None, owner_id: int | None) -> list[StrategyRead]:
    """Built-ins and installed strategies, then the rule strategies of the caller (or, for an admin, of
    ``owner_id``), each at its latest version."""
    listed = [strategy_read(strategy) for strategy in shared().values()]
    owner = _owner(caller, owner_id)
    if owner is None:
        return listed
    rows = await session.scalars(
        select(StoredStrategy)
        .where(StoredStrategy.owner_id == owner, StoredStrategy.deleted_at.is_(None))
        .order_by(StoredStrategy.name, StoredStrategy.version)
    )
    by_name: dict[str, list[StoredStrategy]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    return listed + [stored_read(versions[-1], [v.version for v in versions]) for versions in by_name.values()]


async def get_strategy(
    session: AsyncSession, caller: Principal | None, name: str, version: int | None, owner_id: int | None
) -> StrategyRead:
    found = shared().get(name)
    if found is not None:
        return strategy_read(found)
    owner = _owner(caller, owner_id)
    row = None if owner is None else await _stored(session, owner, name, version)
    if row is None or owner is None:
        raise NotFound(
            f"no strategy '{name}'{'' if version is None else f' version {version}'}: GET /api/v1/strategies"
        )
    versions = await session.scalars(
        select(StoredStrategy.version).where(StoredStrategy.owner_id == owner, StoredStrategy.name == name)
    )
    return stored_read(row, sorted(versions))


def _owner(caller: Principal | None, owner_id: int | None) -> int | None:
    if caller is None:
        return None
    if owner_id is not None and owner_id != caller.user_id:
        if not caller.is_admin:
            raise Forbidden("only an admin may read another user's strategies")
        return owner_id
    return caller.user_id


def param_reads(strategy: Strategy) -> list[ParamRead]:
    return [
        ParamRead(name=key, default=p.default, min=p.minimum, max=p.maximum, integer=p.integer)
        for key, p in strategy.params.items()
    ]


def strategy_read(strategy: Strategy) -> StrategyRead:
    return StrategyRead(
        name=strategy.name, kind=strategy.kind, description=strategy.description, params=param_reads(strategy)
    )


def stored_read(row: StoredStrategy, versions: list[int]) -> StrategyRead:
    strategy = rule_strategy.compile_document(row.document, row.version)
    return strategy_read(strategy).model_copy(
        update={
            "version": row.version,
            "versions": versions,
            "owner_id": row.owner_id,
            "created_at": row.created_at,
            "document": row.document,
        }
    )
