"""The FastAPI application: wiring only; the rules live in the domain packages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from giftwave import __version__
from giftwave.api import ledger
from giftwave.api.problems import install_problem_handlers
from giftwave.api.state import AppState
from giftwave.config import Settings
from giftwave.db.engine import check_schema, make_engine
from giftwave.db.urls import parse_database_url
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.stores import open_store


def create_app(settings: Settings) -> FastAPI:
    db_url = parse_database_url(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = make_engine(db_url)
        check_schema(db)
        engine = PostingEngine(
            open_store(db_url),
            batch_max_transfers=settings.ledger_batch_max_transfers,
            queue_max_submissions=settings.ledger_queue_max_submissions,
            linger_ms=settings.ledger_batch_linger_ms,
            expiry_interval_s=settings.ledger_expiry_interval_s,
        )
        await engine.start()
        app.state.giftwave = AppState(settings=settings, db=db, engine=engine)
        try:
            yield
        finally:
            await engine.stop()
            db.dispose()

    app = FastAPI(title="giftwave", version=__version__, lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(ledger.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
