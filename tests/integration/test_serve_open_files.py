"""`giftwave serve` raises its descriptor limit to the hard one and says at start how many
viewer sockets it allows: past it, connections fail with "Too many open files"."""

from __future__ import annotations

import re
import resource
from pathlib import Path

from serverproc import one_server

from giftwave.db.urls import DatabaseUrl
from giftwave.tuning import RESERVED_DESCRIPTORS

LOWERED = 512


def _limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open files line")


def test_the_server_raises_its_open_files_limit_and_says_how_many_sockets(
    db_url: DatabaseUrl, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > LOWERED
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOWERED, hard))  # the server inherits it
    try:
        with one_server(db_url, tmp_path) as server:
            assert _limits(server.pid) == (hard, hard)
            log = server.log_text()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    said = re.search(
        r"open files limit \(RLIMIT_NOFILE\): soft (\d+) \(raised from (\d+)\), hard (\d+):"
        r" about (\d+) client sockets",
        log,
    )
    assert said is not None, log[-2000:]
    assert [int(x) for x in said.groups()] == [hard, LOWERED, hard, hard - RESERVED_DESCRIPTORS]
