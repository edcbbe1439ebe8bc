"""A child interpreter that talks to its parent over a socket pair: the ledger writer process
(ledger/writer_process.py) and the followers process (followers.py).

A fresh interpreter: not a fork (the parent has threads), not multiprocessing's spawn (it
re-runs the parent's ``__main__``). The child is ``python -m <module> <fd>``; only the child
holds its end of the pair, so the child's death reads as EOF in the parent, and the parent's in
the child. Stdout is not the child's (a parent's stdout may be a JSON report); logs go to
stderr, as the parent's.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection


def spawn(module: str) -> tuple[subprocess.Popen[bytes], Connection]:
    """Start ``python -m module <fd>``; the process and the parent's end of the pair."""
    parent_end, child_end = socket.socketpair()
    with child_end:
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(child_end.fileno())],
            pass_fds=(child_end.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    return process, Connection(parent_end.detach())


def child_end() -> Connection:
    """In the child: its end of the pair, named on its command line. SIGINT and SIGTERM sent to
    the process group are ignored: the parent decides when the child stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return Connection(int(sys.argv[1]))
