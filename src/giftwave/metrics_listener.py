"""Where `giftwave serve` keeps its metrics and serves them on their own port.

    share_metrics_between_processes()  # first, before anything imports prometheus_client
    ...                                # settings, schema check
    serve_metrics_port(settings)       # a listener on 127.0.0.1:GIFTWAVE_METRICS_PORT, if set

Every process of one `serve` (uvicorn's workers, each ledger writer process) writes its values
into one fresh directory, named to them by ``PROMETHEUS_MULTIPROC_DIR``; prometheus-client reads
that variable when it is first imported, so it must be set before. A fresh directory per start:
files left by an earlier run would add its counts to this one's. The listener runs in the
process that started the workers (it outlives any one of them) and adds up every process.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

from giftwave.config import Settings

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # the same name as metrics.py's


def share_metrics_between_processes() -> str:
    """Point this process and its children at a fresh, private metrics directory."""
    # Imported already, the client would keep this process's values in memory, unseen.
    assert "prometheus_client" not in sys.modules, "call before importing giftwave.metrics"
    path = tempfile.mkdtemp(prefix="giftwave-metrics-")  # 0700: only this user reads it
    os.environ[MULTIPROC_DIR_VARIABLE] = path
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def serve_metrics_port(settings: Settings) -> None:
    """Start the metrics listener when GIFTWAVE_METRICS_PORT is set (a daemon thread).

    Raises ``OSError`` when the port cannot be bound."""
    if settings.metrics_port is None:
        return
    from prometheus_client import start_http_server

    from giftwave.metrics import registry

    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry())
