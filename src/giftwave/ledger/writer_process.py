"""A ledger store that runs in a child process: planning and SQL on the second core.

    engine = PostingEngine(ProcessStore(db))

With the store in the engine's writer thread, the planner, the row encoding and the driver
calls share one interpreter (one GIL) with the event loop and its callers, so the two costs
add up. ``ProcessStore`` keeps the engine unchanged: the engine's writer thread hands each batch
to a dedicated child process (which owns the real store, its connection and its account cache)
and waits on a pipe, which releases the GIL. The event loop gathers the next batch meanwhile.

Wire format: a batch goes as its submission sizes and one flat list of Transfer fields (pickle
of plain values is all C; pickling NamedTuples cost ~2 us per gift, this ~0.4 us); outcomes come
back as the store's lists of Outcome members (pickle memoizes the members).

Failures: if the child dies (kill -9, OOM) the batch in flight raises ``WriterProcessDied``; the
engine fails its futures with ``LedgerUnavailable``, nothing of it was acknowledged, and a retry
with the same ids settles it exactly once. The next call starts a new child. The child exits on
its own when the parent goes away (its pipe reads EOF), and ignores SIGINT / SIGTERM sent to
the process group: the parent decides when it stops, after draining its queue.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from itertools import chain
from multiprocessing.connection import Connection
from typing import Any, Final

from giftwave.db.urls import DatabaseUrl, parse_database_url
from giftwave.ledger.model import Outcome, Transfer
from giftwave.ledger.store import LedgerStore

_APPLY: Final = "apply"
_EXPIRED: Final = "expired"
_CLOSE: Final = "close"
_FIELDS: Final = len(Transfer._fields)
_PROTOCOL: Final = pickle.HIGHEST_PROTOCOL
_make_transfer = partial(tuple.__new__, Transfer)  # Transfer._make without a Python frame
STOP_TIMEOUT_S: Final = 30.0


class WriterError(Exception):
    """The store in the writer process raised; the message names the original exception."""


class WriterProcessDied(WriterError):
    """The writer process exited while a call was in flight: its outcome is unknown."""


def encode_batch(requests: Sequence[Sequence[Transfer]]) -> tuple[list[int], list[Any]]:
    """Submission sizes and the transfers' fields in one flat list (C loops only)."""
    return [len(r) for r in requests], list(chain.from_iterable(chain.from_iterable(requests)))


def decode_batch(sizes: list[int], flat: list[Any]) -> list[list[Transfer]]:
    fields = iter(flat)
    transfers = list(map(_make_transfer, zip(*[fields] * _FIELDS, strict=True)))
    requests = []
    start = 0
    for size in sizes:
        requests.append(transfers[start : start + size])
        start += size
    return requests


def _child_main(conn: Connection) -> None:
    """The writer process: open the real store, then serve calls until told to close."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from giftwave.ledger.stores import open_store
    from giftwave.tuning import tune_runtime

    try:
        url: str = pickle.loads(conn.recv_bytes())  # not on the command line: ps shows that
        store = open_store(parse_database_url(url))
    except Exception as exc:
        conn.send_bytes(pickle.dumps((False, f"{type(exc).__name__}: {exc}"), _PROTOCOL))
        return
    tune_runtime()  # the planner allocates per transfer: the same GC settings as the parent
    try:
        conn.send_bytes(pickle.dumps((True, None), _PROTOCOL))
        _serve(conn, store)
    finally:
        store.close()


def _serve(conn: Connection, store: LedgerStore) -> None:
    while True:
        try:
            op, args = pickle.loads(conn.recv_bytes())
        except EOFError:
            return  # the parent is gone: nobody waits for a result
        if op == _CLOSE:
            return
        try:
            if op == _APPLY:
                sizes, flat, now_us = args
                value: Any = store.apply_batch(decode_batch(sizes, flat), now_us)
            else:
                value = store.expired_pending(*args)
            reply = (True, value)
        except Exception as exc:
            reply = (False, f"{type(exc).__name__}: {exc}")
        conn.send_bytes(pickle.dumps(reply, _PROTOCOL))


class ProcessStore:
    """A ``BatchStore`` whose store lives in a child process (one call at a time)."""

    def __init__(self, db: DatabaseUrl) -> None:
        self._url = db.url
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._start()

    @property
    def pid(self) -> int | None:
        """The writer process's pid (tests kill it), or None between a death and a restart."""
        return self._process.pid if self._process is not None else None

    def apply_batch(
        self, requests: Sequence[Sequence[Transfer]], now_us: int
    ) -> list[list[Outcome]]:
        sizes, flat = encode_batch(requests)
        results: list[list[Outcome]] = self._call(_APPLY, (sizes, flat, now_us))
        return results

    def expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]:
        expired: list[tuple[str, str]] = self._call(_EXPIRED, (now_us, limit))
        return expired

    def close(self) -> None:
        if self._conn is None or self._process is None:
            return
        with contextlib.suppress(OSError):  # already gone: nothing to stop
            self._conn.send_bytes(pickle.dumps((_CLOSE, None), _PROTOCOL))
        try:
            self._process.wait(STOP_TIMEOUT_S)
        finally:
            self._discard()

    def _start(self) -> None:
        # A fresh interpreter (not fork: the parent has threads; not multiprocessing's spawn:
        # it re-runs the parent's __main__), talking over a socket pair.
        parent_end, child_end = socket.socketpair()
        with child_end:
            process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        # Only the child holds its end now: the child's death reads as EOF here.
        self._process, self._conn = process, Connection(parent_end.detach())
        try:
            self._conn.send_bytes(pickle.dumps(self._url, _PROTOCOL))
            self._receive()  # ready, or the reason the store could not be opened
        except BaseException:
            self._discard()
            raise

    def _call(self, op: str, args: object) -> Any:
        if self._conn is None:
            self._start()  # the previous writer died: a new one, with a fresh account cache
        assert self._conn is not None
        try:
            self._conn.send_bytes(pickle.dumps((op, args), _PROTOCOL))
        except OSError as exc:
            self._discard()
            raise WriterProcessDied("the ledger writer process is gone") from exc
        return self._receive()

    def _receive(self) -> Any:
        assert self._conn is not None
        try:
            ok, value = pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            self._discard()
            raise WriterProcessDied(
                "the ledger writer process exited during the call; its outcome is unknown"
            ) from exc
        if not ok:
            raise WriterError(value)
        return value

    def _discard(self) -> None:
        """Forget the child: make sure it is gone, so nothing commits behind a reported failure."""
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(STOP_TIMEOUT_S)
        self._conn, self._process = None, None


if __name__ == "__main__":
    _child_main(Connection(int(sys.argv[1])))
