"""Settings every giftwave the tests start runs with, in process or as a child process."""

from __future__ import annotations

from typing import Final

# Argon2id at its default cost (64 MiB, 3 passes) takes about 0.18 s of CPU a hash here, and
# the tests sign up and log in thousands of people: at the lowest cost the suite spends its CPU
# on what it tests. The tests of the cost itself set their own (tests/security/test_accounts.py,
# the log-in flood).
CHEAP_PASSWORD_HASHES: Final = {
    "GIFTWAVE_PASSWORD_TIME_COST": "1",
    "GIFTWAVE_PASSWORD_MEMORY_KIB": "8",
}
