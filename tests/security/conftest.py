"""The attack suite: each test tries one attack as an attacker would, over real HTTP or
WebSocket, against a real `giftwave serve` process (docs/security.md lists what each proves).

The helpers of the integration tests (real server processes, the browser, the economy client)
serve here too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
