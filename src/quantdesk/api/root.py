"""Service endpoints: the index of links and the health check."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from quantdesk import __version__

router = APIRouter(tags=["service"])


@router.get("/")
async def index(request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {
        "name": "quantdesk",
        "version": __version__,
        "links": {
            "dashboard": f"{base}/dashboard",
            "docs": f"{base}/docs",
            "openapi": f"{base}/openapi.json",
            "health": f"{base}/health",
            "instruments": f"{base}/api/v1/instruments",
            "providers": f"{base}/api/v1/providers",
        },
    }


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """200 when the database answers, 503 when it does not."""
    engine = request.app.state.engine
    database: dict[str, Any] = {"dialect": engine.dialect.name}
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            revision = await connection.execute(text("SELECT version_num FROM alembic_version"))
            database["revision"] = revision.scalar_one_or_none()
        database["ok"] = True
    except Exception as exc:  # any failure means "not healthy"; the reason is for the operator
        database["ok"] = False
        database["error"] = type(exc).__name__
    healthy = database["ok"]
    body = {"status": "ok" if healthy else "unavailable", "version": __version__, "database": database}
    return JSONResponse(body, status_code=200 if healthy else 503)
