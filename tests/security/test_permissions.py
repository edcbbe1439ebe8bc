"""Who may do what, tried by the people who may not, against a real `giftwave serve` on SQLite
and PostgreSQL (one server per backend for the module).

- A blocked user keeps their session (they can still read); they try to spread share links.
- A creator probes another creator's clip ids by writing to them: a clip not published yet
  (being cut from a recording) must look exactly like one that does not exist.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest
from economy_client import problem_body
from serverproc import ADMIN_TOKEN, ServerProcess, one_server, register_over_http

from giftwave.db.urls import DatabaseUrl

ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD: Final = "correct horse battery staple"
PROBLEM_JSON: Final = "application/problem+json"


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # Recordings may come from loopback: the test's own silent listener stands in for one.
    with one_server(
        module_bare_db_url,
        tmp_path_factory.mktemp("logs"),
        GIFTWAVE_CLIP_RECORDING_HOSTS='["127.0.0.1"]',
        GIFTWAVE_CLIP_STORE=str(tmp_path_factory.mktemp("clips")),
        GIFTWAVE_CLIP_TMP_DIR=str(tmp_path_factory.mktemp("cliptmp")),
    ) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=15.0, trust_env=False) as c:
        yield c


def _register(client: httpx.Client, role: str) -> tuple[int, dict[str, str]]:
    return register_over_http(client, role, "pm", PASSWORD)


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON), r.headers
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def test_a_blocked_user_cannot_create_share_links(client: httpx.Client) -> None:
    creator_id, creator = _register(client, "creator")
    stream = client.post("/v1/streams", json={"title": "share me"}, headers=creator)
    assert stream.status_code == 201, stream.text
    spammer_id, spammer = _register(client, "viewer")

    def share(channel: str, target_kind: str = "stream", target_id: str = "") -> httpx.Response:
        body = {
            "target_kind": target_kind,
            "target_id": target_id or stream.json()["id"],
            "channel": channel,
        }
        return client.post("/v1/shares", json=body, headers=spammer)

    assert share("whatsapp").status_code == 201
    r = client.patch(f"/v1/admin/users/{spammer_id}", json={"status": "blocked"}, headers=ADMIN)
    assert r.status_code == 200, r.text

    # Still logged in (they can read), but no new link, no renewed link, for any target.
    assert client.get("/v1/me/wallet", headers=spammer).status_code == 200
    _problem(share("telegram"), 403, "account_blocked")
    _problem(share("whatsapp"), 403, "account_blocked")
    _problem(share("x", "profile", str(creator_id)), 403, "account_blocked")

    # Nothing was written by the refusals: unblocked, the telegram link is made now (201).
    r = client.patch(f"/v1/admin/users/{spammer_id}", json={"status": "active"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert share("telegram").status_code == 201


@pytest.fixture
def silent_recording() -> Iterator[str]:
    """A recording URL on 127.0.0.1 whose server never answers: a cut of it stays
    "processing" (FFmpeg waits for it) for as long as the test needs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections wait in the backlog, never accepted, never answered
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/recording.mp4"


def test_another_creators_unpublished_clip_answers_like_a_missing_one(
    client: httpx.Client, silent_recording: str
) -> None:
    _, owner = _register(client, "creator")
    _, prober = _register(client, "creator")
    cut = client.post(
        "/v1/clips",
        json={"title": "not yet", "recording_url": silent_recording, "start_s": 0, "end_s": 2},
        headers=owner,
    )
    assert cut.status_code == 202, cut.text
    assert cut.json()["status"] == "processing"
    hidden = cut.json()["id"]
    # An id of the same shape that never existed: every answer must be the same as for it.
    missing = "cl_" + "A" * (len(hidden) - 3)

    def probes(clip_id: str) -> list[tuple[int, Any]]:
        answers = [
            client.post(f"/v1/clips/{clip_id}/downloads", headers=prober),
            client.patch(f"/v1/clips/{clip_id}", json={"title": "mine now"}, headers=prober),
            client.patch(f"/v1/clips/{clip_id}", json={"downloads_enabled": True}, headers=prober),
            client.delete(f"/v1/clips/{clip_id}", headers=prober),
            client.get(f"/v1/clips/{clip_id}", headers=prober),
            client.get(f"/v1/clips/{clip_id}/video", headers=prober),
            client.put(f"/v1/clips/{clip_id}/reactions/fire", headers=prober),
            client.post(f"/v1/clips/{clip_id}/repost", headers=prober),
        ]
        for r in answers:
            _problem(r, 404, "clip_not_found")
        return [(r.status_code, problem_body(r)) for r in answers]

    assert probes(hidden) == probes(missing)
    # The owner's clip is untouched, still theirs, still being made.
    mine = client.get(f"/v1/clips/{hidden}", headers=owner)
    assert mine.status_code == 200, mine.text
    assert (mine.json()["title"], mine.json()["status"]) == ("not yet", "processing")
