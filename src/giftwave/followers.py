"""The ledger's followers in a process of their own: gifter levels, fan club points from gifts
and the fraud rules, off the serving process's interpreter.

    serving process                               followers process (python -m giftwave.followers)
      Followers.start ── socketpair: settings ──►   PeriodicThreads, each on its own schedule:
                                                      gifter levels   (social/level_follower.py)
                                                      club points     (social/club_points.py)
                                                      risk rules      (economy/risk_follower.py)
      levels' round: announce ◄── level-ups ────    the level-ups each levels run committed
      (the room, every node's badges)

Each follower reads the committed ledger from its position (db/watermarks.py) and writes its
results in the transaction that moves the position, so where it runs changes nothing of what it
writes: run here, in the serving process (``GIFTWAVE_FOLLOWERS=inline``) or on another node only
(``off`` here), each chunk is applied once. What the serving process gains is its interpreter:
the followers' Python work (tens of microseconds of CPU a gift: reading the chunk, tallying,
writing totals) took the one GIL from requests, and a serving process is bound by it.
docs/benchmarks.md has the figures.

Level-ups are announced by the serving process whose child committed them, as before (a
crash between the commit and the announcement loses the room's line, never the level or its
webhook). The child dies with its parent (its socket reads EOF) and ignores SIGINT / SIGTERM:
the parent stops it, after its runs under way end. A child that dies is started again, with
backoff; ``giftwave_followers_restarts_total`` counts it.

One child per node: ``giftwave serve --workers N`` starts N serving processes, and each asks
for a lock on a file of the node's shared directory (``lock_path``: the metrics' multiprocess
directory) before it starts a child. The one that holds it runs the child; the others ask again
every ``LOCK_RETRY_S``, and one of them takes over when the holder dies (the kernel releases
its lock with it). N children would each read every chunk, and all but one find it applied.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Final

from giftwave.child_process import child_end, spawn
from giftwave.config import Settings
from giftwave.social.level_follower import LevelUp

_PROTOCOL: Final = pickle.HIGHEST_PROTOCOL
_CLOSE: Final = "close"
STOP_TIMEOUT_S: Final = 30.0
RESTART_DELAY_S: Final = 1.0
RESTART_DELAY_MAX_S: Final = 30.0
LOCK_NAME: Final = "followers.lock"
LOCK_RETRY_S: Final = 5.0
# Level-ups received and not yet announced: the levels round takes them every second; past
# this many (a stalled event loop) the oldest are dropped from the room's announcements only.
PENDING_LEVEL_UPS_MAX: Final = 10_000
log = logging.getLogger(__name__)


class Followers:
    """The serving process's side: starts the child, hands over the level-ups it committed,
    starts it again when it dies, stops it."""

    def __init__(self, settings: Settings, lock_dir: str | None = None) -> None:
        self._settings = settings
        # None: this serving process is alone on the node (no lock to take).
        self._lock_path = None if lock_dir is None else os.path.join(lock_dir, LOCK_NAME)
        self._pending: deque[LevelUp] = deque(maxlen=PENDING_LEVEL_UPS_MAX)
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the child, its socket
        self._child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._watch: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid (tests kill it), or None when none runs."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def start(self) -> None:
        assert self._watch is None, "start() once"
        self._watch = threading.Thread(target=self._supervise, name="followers", daemon=True)
        self._watch.start()

    def take_level_ups(self) -> list[LevelUp]:
        """The level-ups the child committed since the last call, oldest first."""
        taken = []
        while True:
            try:
                taken.append(self._pending.popleft())
            except IndexError:
                return taken

    def stop(self) -> None:
        """Tell the child to close (its runs under way end first); kill it after the timeout."""
        self._stopping.set()
        with self._lock:
            conn, child = self._conn, self._child
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send_bytes(pickle.dumps(_CLOSE, _PROTOCOL))
        if child is not None:
            try:
                child.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._watch is not None:
            self._watch.join(STOP_TIMEOUT_S)

    def _supervise(self) -> None:
        """Once this process holds the node's lock (when there is one to take): run the
        child, and start it again whenever it ends, until stopped."""
        if self._lock_path is None:
            self._run_children()
            return
        lock = self._node_lock(self._lock_path)
        if lock is None:
            return  # stopped while another serving process ran the node's child
        try:
            self._run_children()
        finally:
            os.close(lock)  # the lock with it: another serving process may take over

    def _node_lock(self, path: str) -> int | None:
        """The node's lock, held by this process; None: stopped first."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:  # another serving process of this node runs the child
                if self._stopping.wait(LOCK_RETRY_S):
                    os.close(fd)
                    return None

    def _run_children(self) -> None:
        """Start the child, read what it sends until it ends; again, with backoff."""
        from giftwave import metrics

        delay_s = RESTART_DELAY_S
        while True:
            try:
                conn = self._spawn()
            except OSError:
                log.exception("the followers process did not start")
            else:
                if conn is None:
                    return  # stopped
                if self._read(conn):
                    delay_s = RESTART_DELAY_S  # it ran a while: the next death starts afresh
                if self._stopping.is_set():
                    return
                code = self._child.wait() if self._child is not None else None
                log.error("the followers process exited (code %s): starting it again", code)
            metrics.FOLLOWERS_RESTARTS.inc()
            if self._stopping.wait(delay_s):
                return
            delay_s = min(2 * delay_s, RESTART_DELAY_MAX_S)

    def _spawn(self) -> Connection | None:
        """A new child (child_process.py), the settings sent to it over the socket (secrets
        never on a command line); None once stopping."""
        with self._lock:
            if self._stopping.is_set():
                return None
            self._child, conn = spawn(__name__)
            self._conn = conn
            conn.send_bytes(pickle.dumps(self._settings, _PROTOCOL))
        return conn

    def _read(self, conn: Connection) -> bool:
        """The child's level-ups until it ends; whether it sent anything (it was running)."""
        got = False
        try:
            while True:
                ups: Sequence[LevelUp] = pickle.loads(conn.recv_bytes())
                got = True
                self._pending.extend(ups)
        except (EOFError, OSError):
            return got
        finally:
            with self._lock:
                self._conn = None
            conn.close()


def _child_main(conn: Connection) -> None:
    """The followers process: every follower on its own thread until the parent closes."""
    from giftwave.db.engine import make_engine
    from giftwave.db.urls import parse_database_url
    from giftwave.economy.risk_follower import RiskEngine
    from giftwave.economy.services import risk_rules_of
    from giftwave.logs import setup_logging
    from giftwave.periodic import PeriodicThread, Schedule
    from giftwave.social.club_points import GIFT_CHUNKS_PER_RUN, GIFTS_INTERVAL_S, ClubGiftPoints
    from giftwave.social.level_follower import LevelFollower
    from giftwave.social.level_service import CHUNKS_PER_RUN, LOOP_INTERVAL_S
    from giftwave.social.levels import Curve
    from giftwave.tuning import tune_runtime
    from giftwave.webhooks.outbox import enqueue_level_ups

    settings: Settings = pickle.loads(conn.recv_bytes())
    setup_logging(settings.log_format, settings.log_level)
    tune_runtime()
    db = make_engine(parse_database_url(settings.database_url), derived=True)
    levels = LevelFollower(
        db, Curve.configured(settings.level_thresholds_coins), observers=(enqueue_level_ups,)
    )
    send_lock = threading.Lock()

    def follow_levels() -> None:
        levels.catch_up(CHUNKS_PER_RUN)
        ups = levels.take_level_ups()
        with send_lock:
            # Always a message, even empty: the parent knows the child runs.
            conn.send_bytes(pickle.dumps(ups, _PROTOCOL))

    club_points = ClubGiftPoints(db)
    threads = [
        PeriodicThread("gifter-levels", follow_levels, Schedule(LOOP_INTERVAL_S)),
        PeriodicThread(
            "club-points",
            lambda: club_points.catch_up(GIFT_CHUNKS_PER_RUN),
            Schedule(GIFTS_INTERVAL_S),
        ),
    ]
    risk = None
    if settings.risk_interval_s > 0:
        risk = RiskEngine(db, risk_rules_of(settings), settings.risk_interval_s)
    for thread in threads:
        thread.start()
    if risk is not None:
        risk.start()
    try:
        while True:
            try:
                message = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return  # the parent is gone
            if message == _CLOSE:
                return
    finally:
        for thread in threads:
            thread.stop()
        if risk is not None:
            risk.stop()
        db.dispose()


if __name__ == "__main__":
    _child_main(child_end())
