"""A live room's client for tests against real servers: register people over HTTP, read a
room's frames and acks over WebSocket, wait for an event."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import orjson

_n = itertools.count(1)


async def person(http: httpx.AsyncClient, role: str) -> tuple[int, str]:
    """A new user of ``role``: their id and bearer token."""
    n = next(_n)
    r = await http.post(
        "/v1/auth/register",
        json={
            "handle": f"{role}{n}",
            "email": f"{role}{n}@ws.test",
            "password": "pw-pw-pw-pw",
            "birth_date": "1990-01-01",
            "country": "US",
            "role": role,
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["user"]["id"]), str(r.json()["token"])


async def named_person(http: httpx.AsyncClient, role: str) -> tuple[int, str, str]:
    """A new user of ``role``: their id, bearer token and handle."""
    user_id, token = await person(http, role)
    me = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return user_id, token, str(me.json()["handle"])


async def go_live(http: httpx.AsyncClient, token: str, title: str) -> str:
    """A stream the creator with ``token`` starts: its id."""
    r = await http.post(
        "/v1/streams", json={"title": title}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def ticket(http: httpx.AsyncClient, token: str, stream_id: str) -> str:
    """A one-use ticket that opens ``stream_id``'s socket as the user of ``token``."""
    r = await http.post(
        f"/v1/streams/{stream_id}/ws-ticket", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["ticket"])


async def as_user(http: httpx.AsyncClient, url: str, token: str) -> str:
    """A room socket's ``url`` (ws://…/v1/streams/{id}/ws[?…]) with a fresh ticket for the user
    of ``token``: a session token never goes in a socket's URL."""
    stream_id = url.split("/v1/streams/", 1)[1].split("/", 1)[0]
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}ticket={await ticket(http, token, stream_id)}"


async def until_chat(client: Client, wanted: str, within_s: float) -> float:
    """Chat until the answer is ``wanted`` ("sent" or an error code), polling: the seconds it
    took (an AssertionError past ``within_s``)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < within_s:
        answer = await client.command(id=f"u{next(_n)}", cmd="chat", text="hi")
        got = "sent" if "result" in answer else answer["error"]["code"]
        if got == wanted:
            return loop.time() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"chat did not become {wanted!r} within {within_s} s")


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.acks: dict[Any, dict[str, Any]] = {}
        self.personal: list[dict[str, Any]] = []  # {"v":1,"personal":{…}}: this socket's own

    async def recv(self, wait_s: float = 5.0) -> dict[str, Any]:
        message = orjson.loads(await asyncio.wait_for(self.ws.recv(), wait_s))
        if "ack" in message:
            self.acks[message["ack"]] = message
        elif "personal" in message:
            self.personal.append(message["personal"])
        else:
            self.frames.append(message)
        return dict(message)

    async def command(self, **command: Any) -> dict[str, Any]:
        await self.ws.send(orjson.dumps(command).decode())
        while command["id"] not in self.acks:
            await self.recv()
        return self.acks[command["id"]]

    async def until(self, predicate: Any, wait_s: float = 8.0) -> None:
        deadline = asyncio.get_running_loop().time() + wait_s
        while not any(predicate(e) for f in self.frames for e in f["events"]):
            await self.recv(max(0.05, deadline - asyncio.get_running_loop().time()))

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for f in self.frames for e in f["events"] if e["type"] == kind]

    def gift_events(self) -> list[tuple[Any, ...]]:
        """(combo_id, count so far, final) for every gift event and combo update, in order."""
        seen: list[tuple[Any, ...]] = []
        combo_of: dict[int, str] = {}  # short number -> combo_id, as the room announced them
        for frame in self.frames:
            for e in frame["events"]:
                if e["type"] == "snapshot":
                    combo_of.update((c["n"], c["combo_id"]) for c in e["combos"])
                elif e["type"] == "gift":
                    combo_of[e["n"]] = e["combo_id"]
                    seen.append((e["combo_id"], e["count"], e["final"]))
                elif e["type"] == "combo_counts":
                    seen.extend((combo_of[n], count, False) for n, count, _, _ in e["counts"])
        return seen
