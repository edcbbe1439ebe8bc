"""`giftwave serve` keeps an idle keep-alive connection longer than a proxy's idle timeout:
the proxy (or client) that reuses a connection closes it first, so no request goes out on a
connection the server is closing (uvicorn's own default, 5 s, raced clients in this suite)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from serverproc import HOST, one_server

from giftwave.db.urls import DatabaseUrl

IDLE_S = 6.0  # past uvicorn's default keep-alive (5 s)
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _answer(conn: socket.socket) -> bytes:
    """One whole response: its head, then as many body bytes as its Content-Length says (the
    body may come in a later segment than the head: left unread, it would lead the next
    answer)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        assert chunk, f"the server closed the connection: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    assert lengths, head
    while len(body) < lengths[0]:
        chunk = conn.recv(4096)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    assert len(body) == lengths[0], "more bytes than one answer"
    return head


def test_an_idle_connection_still_answers_after_seconds(
    db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with (
        one_server(db_url, tmp_path) as server,
        socket.create_connection((HOST, server.port), timeout=10) as conn,
    ):
        conn.sendall(REQUEST)
        assert _answer(conn).startswith(b"HTTP/1.1 200")
        time.sleep(IDLE_S)
        conn.sendall(REQUEST)  # the same connection, reused after the idle time
        assert _answer(conn).startswith(b"HTTP/1.1 200")
