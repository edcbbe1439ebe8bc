"""A ledger store that runs in a child process: planning and SQL on the second core.

    engine = PostingEngine(ProcessStore(db))

With the store in the engine's writer thread, the planner, the row encoding and the driver
calls share one interpreter (one GIL) with the event loop and its callers, so the two costs
add up. ``ProcessStore`` runs the real store (its connection and its account cache) in a child
interpreter. ``submit_batch`` only sends a batch and returns a future, which a reply thread
resolves when the child has committed it; the engine (``PipelinedStore``) therefore hands over
the next batch while the previous one commits, and the child never waits for the event loop
between two batches. The child applies batches strictly in the order they were sent.

Wire format: a batch goes as its submission sizes and one flat list of Transfer fields (pickle
of plain values is all C; pickling NamedTuples cost ~2 us per gift, this ~0.4 us); outcomes come
back as the store's lists of Outcome members (pickle memoizes the members). A field value that
cannot be pickled fails its whole batch (``LedgerUnavailable``), where the thread store would
answer that transfer alone; the API builds transfers from str, int, bool and the enums only.
Annex rows (``ledger.annex``) go as they are: per submission None or (table name, tuple of
plain values), which pickle also encodes in C.

Failures: if the child dies (kill -9, OOM) every call in flight raises ``WriterProcessDied``;
the engine fails those futures with ``LedgerUnavailable``, nothing of them was acknowledged, and
a retry with the same ids settles each exactly once. The next call starts a new child. The child
exits on its own when the parent goes away (its socket reads EOF), and ignores SIGINT / SIGTERM
sent to the process group: the parent decides when it stops, after draining its queue.
"""

from __future__ import annotations

import contextlib
import pickle
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from functools import partial
from itertools import chain
from multiprocessing.connection import Connection
from typing import Any, Final

from giftwave.child_process import child_end, spawn
from giftwave.db.urls import DatabaseUrl, parse_database_url
from giftwave.ledger.annex import Annex
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
    from giftwave.ledger.stores import open_store
    from giftwave.logs import setup_logging_from_environment
    from giftwave.tuning import tune_runtime

    setup_logging_from_environment()  # a fresh interpreter: the parent's setup is not here

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
        except (EOFError, OSError):
            return  # the parent is gone: nobody waits for a result
        if op == _CLOSE:
            return
        try:
            if op == _APPLY:
                sizes, flat, now_us, annexes = args
                value: Any = store.apply_batch(decode_batch(sizes, flat), now_us, annexes)
            else:
                value = store.expired_pending(*args)
            reply = (True, value)
        except Exception as exc:
            reply = (False, f"{type(exc).__name__}: {exc}")
        try:
            conn.send_bytes(pickle.dumps(reply, _PROTOCOL))
        except OSError:
            return  # the parent died while this batch committed: it acknowledged nothing


class _Writer:
    """One child process, its socket, and the calls sent to it that await replies, in order."""

    def __init__(self, url: str) -> None:
        # A fresh interpreter over a socket pair (child_process.py): the child's death reads
        # as EOF here.
        self.process, self._conn = spawn(__name__)
        self._waiting: deque[Future[Any]] = deque()  # one per call sent, oldest first
        self._send_lock = threading.Lock()
        self.alive = True
        try:
            self._conn.send_bytes(pickle.dumps(url, _PROTOCOL))
            ok, value = pickle.loads(self._conn.recv_bytes())  # ready, or why not
        except (EOFError, OSError) as exc:
            self.stop(kill=True)
            raise WriterProcessDied("the ledger writer process did not start") from exc
        if not ok:
            self.stop(kill=True)
            raise WriterError(value)
        self._replies = threading.Thread(
            target=self._receive_loop, name="ledger-writer-replies", daemon=True
        )
        self._replies.start()

    def send(self, op: str, args: object) -> Future[Any]:
        """Queue one call; the child answers calls in the order they were sent."""
        payload = pickle.dumps((op, args), _PROTOCOL)
        future: Future[Any] = Future()
        with self._send_lock:
            if not self.alive:
                raise WriterProcessDied("the ledger writer process is gone")
            self._waiting.append(future)  # before sending: the reply may come at once
            try:
                self._conn.send_bytes(payload)
            except OSError as exc:
                self._fail_all(exc)
        return future

    def _receive_loop(self) -> None:
        try:
            while True:
                ok, value = pickle.loads(self._conn.recv_bytes())
                future = self._waiting.popleft()
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(WriterError(value))
        except (EOFError, OSError) as exc:
            self._fail_all(exc)

    def _fail_all(self, cause: BaseException) -> None:
        """The child is gone: every call still waiting has an unknown outcome."""
        self.alive = False
        while True:
            try:
                future = self._waiting.popleft()
            except IndexError:  # empty (the other thread may have emptied it)
                return
            error = WriterProcessDied(
                "the ledger writer process exited during the call; its outcome is unknown"
            )
            error.__cause__ = cause
            with contextlib.suppress(InvalidStateError):
                future.set_exception(error)

    def stop(self, *, kill: bool) -> None:
        """Close (the child finishes its queue and exits), or kill: nothing commits after."""
        if kill:
            self.process.kill()
        else:
            with self._send_lock, contextlib.suppress(OSError):  # gone already
                self._conn.send_bytes(pickle.dumps((_CLOSE, None), _PROTOCOL))
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)
        self.alive = False
        if hasattr(self, "_replies"):
            self._replies.join(STOP_TIMEOUT_S)  # it reads EOF now that the child is gone
        self._conn.close()


class ProcessStore:
    """A ``BatchStore`` whose store lives in a child process.

    ``submit_batch`` only sends: the engine may hand over the next batch before the previous
    one committed, so the child never waits for the event loop between two batches. Calls
    must come from one thread at a time (the engine's writer thread): that fixes their order.
    """

    def __init__(self, db: DatabaseUrl) -> None:
        self._url = db.url
        self._writer: _Writer | None = _Writer(self._url)

    @property
    def pid(self) -> int | None:
        """The writer process's pid (tests kill it), or None once closed."""
        return self._writer.process.pid if self._writer is not None else None

    def submit_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> Future[list[list[Outcome]]]:
        sizes, flat = encode_batch(requests)
        if annexes is not None:
            annexes = list(annexes)
        return self._live_writer().send(_APPLY, (sizes, flat, now_us, annexes))

    def apply_batch(
        self,
        requests: Sequence[Sequence[Transfer]],
        now_us: int,
        annexes: Sequence[Annex | None] | None = None,
    ) -> list[list[Outcome]]:
        return self.submit_batch(requests, now_us, annexes).result()

    def expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]:
        expired: list[tuple[str, str]] = (
            self._live_writer().send(_EXPIRED, (now_us, limit)).result()
        )
        return expired

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop(kill=False)
            self._writer = None

    def _live_writer(self) -> _Writer:
        writer = self._writer
        if writer is None or not writer.alive:
            if writer is not None:
                writer.stop(kill=True)  # reap it; its calls have failed already
                from giftwave import metrics  # here: the child process never imports it

                metrics.LEDGER_WRITER_RESTARTS.inc()
            self._writer = None
            # The previous writer died: a new one, with a fresh account cache.
            writer = self._writer = _Writer(self._url)
        return writer


if __name__ == "__main__":
    _child_main(child_end())
