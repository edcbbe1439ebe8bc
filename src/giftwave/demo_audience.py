"""The demo's simulated audience: the seeded viewers keep the room alive while a newcomer looks.

Each simulated viewer logs in through the API and acts through the room's WebSocket like a
person in the browser does: Rose combos, now and then a bigger gift, likes, a chat line. When a
viewer runs low on coins they buy more at the sandbox checkout. Every page says these viewers
are simulated (``Settings.demo_audience``), so nobody mistakes them for people.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Sequence
from typing import Any, Final

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

log = logging.getLogger(__name__)

# (gift, weight, longest combo): cheap gifts come often and in combos, big ones rarely.
GIFT_MIX: Final = (
    ("rose", 50, 20),
    ("finger_heart", 12, 6),
    ("tiktok", 10, 8),
    ("panda", 8, 4),
    ("ice_cream", 6, 3),
    ("doughnut", 5, 2),
    ("hand_hearts", 4, 1),
    ("confetti", 2, 1),
    ("disco_ball", 1, 1),
)
CHAT: Final = (
    "hi Luna!",
    "that combo 🔥",
    "hola desde Madrid",
    "مرحبا من الرياض",
    "play the next one!",
    "gg",
    "¡qué bonito!",
    "first time here :)",
)
LOW_COINS: Final = 1_500
TAP_S: Final = 0.18


class SimulatedViewer:
    def __init__(self, handle: str, token: str, rng: random.Random) -> None:
        self.handle = handle
        self.token = token
        self.rng = rng
        self.coins = 0
        self._ids = itertools.count(1)
        self._keys = itertools.count(1)
        self._ws: ClientConnection | None = None

    async def command(self, **command: Any) -> dict[str, Any]:
        assert self._ws is not None
        command_id = next(self._ids)
        await self._ws.send(orjson.dumps({"id": command_id, **command}).decode())
        while True:  # frames for the room come in between; the ack follows in order
            message = orjson.loads(await asyncio.wait_for(self._ws.recv(), 10))
            if message.get("ack") == command_id:
                return dict(message)

    async def gift(self, gift_id: str) -> bool:
        key = f"sim-{self.handle}-{self.rng.getrandbits(64):016x}-{next(self._keys)}"
        reply = await self.command(cmd="send_gift", gift_id=gift_id, count=1, idempotency_key=key)
        if "result" in reply:
            self.coins = int(reply["result"]["balance_coins"])
            return True
        return False


async def _login(http: httpx.AsyncClient, handle: str, password: str) -> str:
    r = await http.post("/v1/auth/login", json={"login": handle, "password": password})
    r.raise_for_status()
    return str(r.json()["token"])


async def _wallet(http: httpx.AsyncClient, token: str) -> int:
    r = await http.get("/v1/me/wallet", headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    return int(r.json()["coins"])


async def _buy_coins(http: httpx.AsyncClient, viewer: SimulatedViewer) -> None:
    from giftwave.demo import DEMO_TOPUP_COINS, demo_card, top_up

    await top_up(
        http,
        {"Authorization": f"Bearer {viewer.token}"},
        key=f"sim-topup-{viewer.rng.getrandbits(64):016x}",
        coins=DEMO_TOPUP_COINS,
        card=demo_card(viewer.handle),
    )
    viewer.coins = await _wallet(http, viewer.token)


async def _act(http: httpx.AsyncClient, viewer: SimulatedViewer) -> None:
    rng = viewer.rng
    roll = rng.random()
    if roll < 0.62:
        gift_id, _, longest = rng.choices(GIFT_MIX, weights=[w for _, w, _ in GIFT_MIX])[0]
        for _ in range(rng.randint(1, longest)):
            if viewer.coins < LOW_COINS:
                await _buy_coins(http, viewer)
            if not await viewer.gift(gift_id):
                return
            await asyncio.sleep(TAP_S)
    elif roll < 0.9:
        await viewer.command(cmd="like", count=rng.randint(1, 12))
    else:
        await viewer.command(cmd="chat", text=rng.choice(CHAT))


async def _viewer_loop(
    base_url: str, stream_id: str, viewer: SimulatedViewer, mean_pause_s: float
) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        viewer.coins = await _wallet(http, viewer.token)
        r = await http.post(  # a one-use ticket: the session token never goes in a URL
            f"/v1/streams/{stream_id}/ws-ticket",
            headers={"Authorization": f"Bearer {viewer.token}"},
        )
        r.raise_for_status()
        ticket = r.json()["ticket"]
        ws_url = base_url.replace("http", "ws", 1) + f"/v1/streams/{stream_id}/ws?ticket={ticket}"
        async with connect(ws_url, max_size=None) as ws:
            viewer._ws = ws
            while True:
                await asyncio.sleep(viewer.rng.expovariate(1 / mean_pause_s))
                await _act(http, viewer)


async def run_audience(
    base_url: str,
    stream_id: str,
    handles: Sequence[str],
    password: str,
    *,
    mean_pause_s: float = 7.0,
    seed: int | None = None,
) -> None:
    """Until cancelled: each viewer acts about every ``mean_pause_s`` seconds. A viewer whose
    connection fails waits and starts again; the demo must never die of its audience."""
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for _ in range(100):  # the server is starting beside us
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.2)
        viewers = [
            SimulatedViewer(h, await _login(http, h, password), random.Random(rng.random()))
            for h in handles
        ]

    async def keep_going(viewer: SimulatedViewer) -> None:
        while True:
            try:
                await _viewer_loop(base_url, stream_id, viewer, mean_pause_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped socket, a restart: try again shortly
                log.info("simulated viewer %s: %s; again in 2 s", viewer.handle, exc)
                await asyncio.sleep(2)

    await asyncio.gather(*(keep_going(v) for v in viewers))
