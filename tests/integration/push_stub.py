"""A Web Push service on loopback that checks what a real one checks, and the browser's part:

- the VAPID ``Authorization: vapid t=<JWT>, k=<key>`` header (RFC 8292): the key is the one
  the subscription was made with, the JWT's ES256 signature verifies against it, ``aud`` is
  this service's origin and ``exp`` is in the future and within 24 hours;
- the body (RFC 8291 / RFC 8188 ``aes128gcm``), decrypted here independently of the library
  that encrypted it, with the fake browser's P-256 private key and auth secret.

Each path ``/push/<name>`` is one browser; ``answers[name]`` lists the statuses to give in turn
(then 201). What arrived is kept per name: the decrypted JSON, or why it was refused.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class FakeBrowser:
    """A browser's push subscription keys: a real P-256 pair and a 16-byte auth secret."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(self.public_bytes)

    @property
    def public_bytes(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 §3.4 and RFC 8188 §2: one record, as a browser decrypts it."""
        salt, record_size, id_len = body[:16], struct.unpack(">I", body[16:20])[0], body[20]
        sender_public = body[21 : 21 + id_len]
        ciphertext = body[21 + id_len :]
        assert id_len == 65, id_len
        assert record_size >= 18, record_size
        assert len(ciphertext) <= record_size, len(ciphertext)
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
        shared = self.key.exchange(ec.ECDH(), peer)
        key_info = b"WebPush: info\x00" + self.public_bytes + sender_public
        ikm = HKDF(hashes.SHA256(), 32, salt=self.auth, info=key_info).derive(shared)
        cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(
            ikm
        )
        nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(
            ikm
        )
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None).rstrip(b"\x00")
        assert padded.endswith(b"\x02"), "the last record ends with the delimiter 0x02"
        return padded[:-1]


def verify_vapid(header: str, vapid_public_b64: str, origin: str) -> dict[str, Any]:
    """The JWT's claims, once its signature, audience and expiry check out (AssertionError)."""
    assert header.startswith("vapid "), header
    params = dict(p.strip().split("=", 1) for p in header[len("vapid ") :].split(","))
    assert params["k"] == vapid_public_b64, "signed with another key than the page subscribed with"
    head_b64, claims_b64, sig_b64 = params["t"].split(".")
    head = json.loads(unb64url(head_b64))
    assert head["alg"] == "ES256", head
    sig = unb64url(sig_b64)
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(params["k"]))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AssertionError("the VAPID JWT's signature does not verify") from None
    claims: dict[str, Any] = json.loads(unb64url(claims_b64))
    assert claims["aud"] == origin, claims
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600, claims
    assert str(claims["sub"]).startswith(("mailto:", "https://")), claims
    return claims


@dataclass
class PushService:
    port: int
    vapid_public_b64: str
    browsers: dict[str, FakeBrowser] = field(default_factory=dict)
    answers: dict[str, list[int]] = field(default_factory=dict)
    received: dict[str, list[Any]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browser(self, name: str) -> tuple[str, FakeBrowser]:
        """A new fake browser: its endpoint and keys."""
        self.browsers[name] = FakeBrowser()
        return f"{self.origin}/push/{name}", self.browsers[name]

    def subscription(self, name: str) -> dict[str, Any]:
        endpoint, browser = self.browser(name)
        return {
            "endpoint": endpoint,
            "keys": {"p256dh": browser.p256dh, "auth": b64url(browser.auth)},
        }

    def got(self, name: str) -> list[Any]:
        with self.lock:
            return list(self.received.get(name, []))

    def handle(self, path: str, headers: Any, body: bytes) -> int:
        name = path.removeprefix("/push/")
        with self.lock:
            planned = self.answers.get(name) or []
            status = planned.pop(0) if planned else 201
        try:
            assert name in self.browsers, f"no subscription at {path}"
            verify_vapid(headers.get("Authorization", ""), self.vapid_public_b64, self.origin)
            assert headers.get("Content-Encoding") == "aes128gcm", headers
            assert int(headers.get("TTL", "-1")) >= 0, "RFC 8030: TTL is required"
            message = json.loads(self.browsers[name].decrypt(body))
        except (AssertionError, ValueError, KeyError) as exc:
            with self.lock:
                self.refused.append(f"{name}: {exc!r}")
            return 400
        if 200 <= status < 300:
            with self.lock:
                self.received.setdefault(name, []).append(message)
        return status


@contextmanager
def push_service(vapid_public_b64: str) -> Iterator[PushService]:
    state: PushService | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(min(length, 8192))
            assert state is not None
            status = state.handle(self.path, self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = PushService(port=server.server_address[1], vapid_public_b64=vapid_public_b64)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
