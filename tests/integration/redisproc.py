"""A private `redis-server` for fault tests: on a free port of 127.0.0.1, no persistence, so
that killing and starting it again gives an EMPTY Redis, and no other test's Redis is touched.

    with PrivateRedis(tmp_path) as redis:
        env["GIFTWAVE_BROKER_URL"] = redis.url
        redis.kill()     # SIGKILL: every connection drops, every key is gone
        redis.start()    # the same port, empty

The process itself is the product's (``giftwave.private_redis``, the fault campaign's too); this
adds what tests need around it: a ``with`` block, and a missing or failing `redis-server` as a
test failure (a backend that is missing is never a skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import pytest
from serverproc import ServerGroup, ServerProcess, giftwave_env, migrate

from giftwave import private_redis
from giftwave.db.urls import DatabaseUrl


class PrivateRedis(private_redis.PrivateRedis):
    def __init__(self, log_dir: Path) -> None:
        try:
            super().__init__(log_dir)
        except RuntimeError:
            pytest.fail("redis-server is required for this test and is not installed")

    def start(self) -> None:
        """Start on ``port`` (again), empty; return once it answers PING (bounded)."""
        assert self._proc is None or self._proc.poll() is not None, "already running"
        try:
            super().start()
        except RuntimeError:
            pytest.fail(f"redis-server did not start:\n{self._log_path.read_text()}")

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


@contextmanager
def two_nodes(db: DatabaseUrl, log_dir: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two `giftwave serve` processes on one migrated database and a private Redis (cheap
    password hashing): nodes "a" and "b" of one deployment."""
    with PrivateRedis(log_dir) as redis:
        env = giftwave_env(db)
        env.update(
            GIFTWAVE_PASSWORD_TIME_COST="1",
            GIFTWAVE_PASSWORD_MEMORY_KIB="8",
            GIFTWAVE_BROKER_URL=redis.url,
        )
        migrate(env)
        with ServerGroup(log_dir, env) as servers:
            a, b = servers.start("a", "b")
            yield a, b
