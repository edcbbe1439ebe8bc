"""Interpreter settings for long-running giftwave processes (serve, demo, bench).

Garbage collector: every gift allocates short-lived tuples, futures and frames, none of them in
cycles. With the default thresholds CPython collects the young generation every 700
allocations and now and then walks the whole heap, which shows up as latency spikes. Freezing
what start-up allocated and collecting less often gave 12-18% more gifts/s on the ledger bench.

GIL switch interval: the posting engine's writer thread plans and writes batches while the
event loop thread serves callers. With the default 5 ms interval the loop waits up to 5 ms for
the GIL each time the writer holds it; 0.5 ms cut the gift commit latency p50 from ~50 ms to
~3 ms at the same load (docs/benchmarks.md).
"""

from __future__ import annotations

import gc
import resource
import sys
from dataclasses import dataclass

YOUNG_THRESHOLD = 50_000
SWITCH_INTERVAL_S = 0.0005


def tune_runtime() -> None:
    """Call once, after start-up work and before serving."""
    gc.collect()
    gc.freeze()  # start-up objects live forever: never scan them again
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


# Descriptors a server holds besides its sockets to clients: listeners, the database, the
# ledger writer's pipe, Redis, log files, the interpreter's own. A generous round figure.
RESERVED_DESCRIPTORS = 100


@dataclass(frozen=True, slots=True)
class OpenFilesLimit:
    """RLIMIT_NOFILE: the soft limit before and after raising it to the hard one."""

    was: int
    soft: int
    hard: int

    @property
    def sockets(self) -> int:
        """About how many client sockets (viewers) this process can hold."""
        return max(0, self.soft - RESERVED_DESCRIPTORS)


def raise_open_files_limit() -> OpenFilesLimit:
    """Raise the soft limit on open descriptors to the hard one: every viewer is a socket, and
    a soft limit of 1,024 (a common default) would refuse the 1,000th viewer. The hard limit
    is the administrator's: only they can raise it (``LimitNOFILE=`` in systemd, ``ulimit``)."""
    was, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if was < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return OpenFilesLimit(was=was, soft=soft, hard=hard)
