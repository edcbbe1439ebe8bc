"""Pages served beside the API: HTML for people and for OBS, no JSON. Not in the OpenAPI
schema (they are not API), and a bad address gets a friendly page, not problem+json."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from giftwave.economy.services import Economy
from giftwave.live.streams import find_stream
from giftwave.web.templates import render

router = APIRouter(include_in_schema=False)

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "web" / "static"


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


@router.get("/overlay/{stream_id}", response_class=HTMLResponse)
async def overlay(
    stream_id: str, request: Request, sound: bool = False, transparent: bool = True
) -> HTMLResponse:
    """The OBS browser source: gift alerts, combo counters, goal and battle bars."""
    economy: Economy = request.app.state.economy

    def load() -> bool:
        with economy.db.connect() as conn:
            return find_stream(conn, stream_id) is not None

    if not await run_in_threadpool(load):
        return HTMLResponse(render("not_found.html", what="stream"), status_code=404)
    html = render("overlay.html", stream_id=stream_id, sound=sound, transparent=transparent)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
