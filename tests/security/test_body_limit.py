"""Every request body has a byte limit checked before a route reads it (api/body_limit.py,
docs/security.md), against a real `giftwave serve` on SQLite and PostgreSQL:

- ten megabytes of JSON to routes that had no limit of their own (a club's name, a person's
  notice settings) and to the gift route is 413 `payload_too_large` problem+json, and nothing
  is written: no club, the settings as they were, no coin spent;
- a chunked body (no Content-Length) is counted as it arrives and refused the same way;
- a Content-Length claiming ten megabytes is refused before a byte of the body is sent.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Final
from urllib.parse import urlsplit

import httpx
import pytest
from serverproc import ServerProcess, one_server, register_over_http

from giftwave.db.urls import DatabaseUrl

PASSWORD: Final = "correct horse battery staple"
TEN_MB: Final = 10 * 1024 * 1024
ADMIN_TOKEN: Final = "body-limit-admin-token"


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(
        module_bare_db_url, tmp_path_factory.mktemp("logs"), GIFTWAVE_ADMIN_TOKEN=ADMIN_TOKEN
    ) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0, trust_env=False) as c:
        yield c


def someone(client: httpx.Client, role: str) -> tuple[int, dict[str, str]]:
    return register_over_http(client, role, "bl", PASSWORD)


def viewer_with_ten_coins_in_a_room(client: httpx.Client, key: str) -> tuple[str, dict[str, str]]:
    """A creator's live stream, and a viewer granted 10 coins: the stream id and the viewer's
    headers."""
    _, creator = someone(client, "creator")
    viewer_id, viewer = someone(client, "viewer")
    stream = client.post("/v1/streams", json={"title": key}, headers=creator)
    assert stream.status_code == 201, stream.text
    granted = client.post(
        f"/v1/admin/users/{viewer_id}/coins",
        json={"coins": 10, "idempotency_key": key},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert granted.status_code == 200, granted.text
    return str(stream.json()["id"]), viewer


def loopback_address(server: ServerProcess) -> tuple[str, int]:
    """The server's address for a raw socket: loopback only."""
    url = urlsplit(server.base_url)
    assert url.hostname == "127.0.0.1"
    assert url.port is not None
    return url.hostname, url.port


def too_large(r: httpx.Response) -> None:
    assert r.status_code == 413, (r.request.method, r.request.url.path, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    assert r.json()["code"] == "payload_too_large", r.json()


def huge_json(field: str) -> bytes:
    return b'{"' + field.encode() + b'": "' + b"x" * TEN_MB + b'"}'


def test_ten_megabytes_of_json_are_refused_and_write_nothing(client: httpx.Client) -> None:
    creator_id, creator = someone(client, "creator")
    viewer_id, viewer = someone(client, "viewer")
    as_json = {"Content-Type": "application/json"}
    stream = client.post("/v1/streams", json={"title": "limits"}, headers=creator)
    assert stream.status_code == 201, stream.text
    granted = client.post(
        f"/v1/admin/users/{viewer_id}/coins",
        json={"coins": 10, "idempotency_key": "body-limit"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert granted.status_code == 200, granted.text
    too_large(client.put("/v1/me/club", content=huge_json("name"), headers={**creator, **as_json}))
    too_large(
        client.put(
            "/v1/me/notify-settings", content=huge_json("time_zone"), headers={**viewer, **as_json}
        )
    )
    gift = f"/v1/streams/{stream.json()['id']}/gifts"
    too_large(client.post(gift, content=huge_json("gift_id"), headers={**viewer, **as_json}))

    assert client.get(f"/v1/creators/{creator_id}/club").status_code == 404  # no club made
    wallet = client.get("/v1/me/wallet", headers=viewer)
    assert wallet.status_code == 200, wallet.text
    assert wallet.json()["coins"] == 10  # no gift sent


def test_a_chunked_body_is_counted_as_it_arrives(client: httpx.Client) -> None:
    creator_id, creator = someone(client, "creator")

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(TEN_MB // 65536):
            yield b"x" * 65536
        yield b'"}'

    r = client.put(
        "/v1/me/club", content=chunks(), headers={**creator, "Content-Type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    too_large(r)
    assert client.get(f"/v1/creators/{creator_id}/club").status_code == 404


def test_a_declared_length_past_the_limit_is_refused_before_the_body(
    server: ServerProcess,
) -> None:
    """The header alone is answered: the client has sent no byte of the body it announced."""
    with socket.create_connection(loopback_address(server), timeout=10) as sock:
        sock.sendall(
            b"PUT /v1/me/club HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {TEN_MB}\r\n\r\n".encode()
        )
        received = b""
        while b"\r\n\r\n" not in received or not received.endswith(b"}"):
            more = sock.recv(65536)  # the head and the body may come apart
            if not more:
                break
            received += more
    answer = received.decode("latin-1")
    status_line, _, rest = answer.partition("\r\n")
    assert status_line.split()[1] == "413", answer
    assert "application/problem+json" in rest, answer
    assert "payload_too_large" in rest, answer


def test_what_follows_a_declared_length_is_the_next_request(
    server: ServerProcess, client: httpx.Client
) -> None:
    """The server frames a body by its Content-Length (api/body_limit.py ``framed``, which
    then counts nothing): a gift that declares its JSON's length, followed on the same
    connection by more bytes, is the declared JSON alone (charged once, 201), and the bytes
    after it are a request of their own (here a wallet read). A server that handed the route
    everything would answer the gift 422 (its JSON with a request after it)."""
    stream_id, viewer = viewer_with_ten_coins_in_a_room(client, "framing")
    auth = "".join(f"{k}: {v}\r\n" for k, v in viewer.items())
    body = b'{"gift_id": "rose", "count": 1, "idempotency_key": "framed-1"}'
    gift = (
        f"POST /v1/streams/{stream_id}/gifts HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    wallet = f"GET /v1/me/wallet HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()
    received = b""
    with socket.create_connection(loopback_address(server), timeout=10) as sock:
        sock.sendall(gift + wallet)  # one write: the server reads both at once
        while received.count(b"HTTP/1.1 ") < 2 or not received.endswith(b"}"):
            more = sock.recv(65536)
            if not more:
                break
            received += more
    answers = received.decode("latin-1").split("HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == ["201", "200"], answers
    coins = json.loads(answers[1].partition("\r\n\r\n")[2])["coins"]
    assert coins == 9, answers[1]  # one Rose: the declared body's


def test_a_length_beside_chunking_does_not_pass_a_body_past_the_limit(
    server: ServerProcess, client: httpx.Client
) -> None:
    """Content-Length: 10 and Transfer-Encoding: chunked on one gift, then 64 KiB in chunks:
    refused (the server's parser or the limit), never a gift, nothing spent."""
    stream_id, viewer = viewer_with_ten_coins_in_a_room(client, "smuggle")
    auth = "".join(f"{k}: {v}\r\n" for k, v in viewer.items())
    head = (
        f"POST /v1/streams/{stream_id}/gifts HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        + "Content-Type: application/json\r\nContent-Length: 10\r\n"
        + "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b" " * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(16)) + b"0\r\n\r\n"
    received = b""
    with socket.create_connection(loopback_address(server), timeout=10) as sock:
        try:
            sock.sendall(head + body)
            while b"\r\n\r\n" not in received:
                more = sock.recv(65536)
                if not more:
                    break
                received += more
        except ConnectionResetError:
            pass  # refused and closed before all of it was read: no answer is an answer too
    status = received.split(b" ", 2)[1] if received.startswith(b"HTTP/1.1 ") else b""
    assert status in (b"", b"400", b"413"), received[:300]
    wallet = client.get("/v1/me/wallet", headers=viewer)
    assert wallet.json()["coins"] == 10, wallet.text  # nothing spent
