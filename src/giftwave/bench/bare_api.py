"""The baseline of ``giftwave bench api``: a bare FastAPI endpoint taking a gift's body.

The same path, the same request model (``SendGiftIn``) and the same receipt model
(``GiftSentOut``) as the gift route, declared the ordinary FastAPI way, served by uvicorn with
``giftwave serve``'s options and runtime tuning; it authenticates nobody, bills nothing, keeps
nothing. What a gift costs beyond it is the platform's own work: auth, checks, the ledger.

    python -m giftwave.bench.bare_api --port 8001
"""

from __future__ import annotations

import argparse
import time

import uvicorn
from fastapi import FastAPI

from giftwave.api.app import UVICORN_OPTIONS
from giftwave.api.streams import GiftSentOut, SendGiftIn
from giftwave.tuning import tune_runtime


def create_bare_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/v1/streams/{stream_id}/gifts", status_code=201, response_model=GiftSentOut)
    async def send_gift(stream_id: str, body: SendGiftIn) -> GiftSentOut:
        return GiftSentOut(
            send_id=body.idempotency_key,
            stream_id=stream_id,
            creator_id=1,
            sender_id=2,
            gift_id=body.gift_id,
            gift_version=1,
            count=body.count,
            coins=body.count,
            diamonds=body.count,
            balance_coins=1_000_000 - body.count,
            created_at_us=time.time_ns() // 1000,
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    app = create_bare_app()
    tune_runtime()
    uvicorn.run(
        app, host="127.0.0.1", port=port, **UVICORN_OPTIONS, access_log=False, log_config=None
    )


if __name__ == "__main__":
    main()
