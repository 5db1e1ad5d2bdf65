"""The peer of benchmarks/signals.py: a bare FastAPI endpoint that stores its body with one INSERT.

    BARE_INSERT_DSN=postgresql://... uvicorn benchmarks.bare_insert:app --workers 2

What a webhook receiver costs at the least: read the body, one INSERT through a pool, answer 202.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BARE_INSERT_DSN"], min_size=4, max_size=10)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/insert")
async def insert(request: Request) -> JSONResponse:
    body = (await request.body()).decode()
    row_id = await request.app.state.pool.fetchval("INSERT INTO bare_signals (body) VALUES ($1) RETURNING id", body)
    return JSONResponse({"signal_id": row_id}, status_code=202)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
