"""Request ids: unique within a process and across forked workers, never taken from a client
when they are not sane."""

from __future__ import annotations

import os

from giftwave.api.request_observer import new_request_id, request_id_of


def test_ids_are_unique_and_of_one_shape() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} == {16}
    assert all(c in "0123456789abcdef" for c in "".join(ids))


def test_a_forked_worker_takes_a_prefix_of_its_own() -> None:
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, back through the pipe
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child[:8] != parent[:8]


def test_a_sane_client_id_is_kept_and_any_other_replaced() -> None:
    def scope(value: bytes) -> dict[str, object]:
        return {"headers": [(b"x-request-id", value)]}

    assert request_id_of(scope(b"abc-123.X_y")) == "abc-123.X_y"
    for bad in (b"", b"a b", b"x" * 129, "é".encode(), b"a\r\nSet-Cookie: x"):
        replaced = request_id_of(scope(bad))
        assert replaced != bad.decode("latin-1")
        assert len(replaced) == 16
