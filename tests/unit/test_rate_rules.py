"""The pure rules behind the rate limits: GCRA (ratelimit.py) and the log-in backoff
(identity/throttle.py)."""

from __future__ import annotations

from giftwave.identity.throttle import NEW_KEY, Backoff, charge
from giftwave.ratelimit import Rate, gcra

S = 1_000_000  # microseconds


def test_gcra_allows_the_burst_then_the_rate() -> None:
    rate, tat, now = Rate(per_s=2.0, burst=3), 0, 10 * S
    for _ in range(3):
        tat, wait = gcra(tat, now, rate)
        assert wait == 0
    refused_tat, wait = gcra(tat, now, rate)
    assert refused_tat == tat  # a refusal spends nothing
    assert wait == S // 2
    assert gcra(tat, now + S // 2, rate)[1] == 0


def test_backoff_doubles_past_the_free_attempts_and_refusals_do_not_count() -> None:
    policy = Backoff(free_attempts=3, base_ms=1000, max_s=5, decay_s=900)
    state, now = NEW_KEY, 100 * S
    waits = []
    for _ in range(6):
        state, wait = charge(state, now, policy)
        assert wait == 0
        waits.append(state.blocked_until_us - now if state.blocked_until_us else 0)
        if state.blocked_until_us:
            refused, wait = charge(state, now, policy)
            assert refused == state  # refused while blocked: not counted
            assert wait == state.blocked_until_us - now
            now = state.blocked_until_us
    assert waits == [0, 0, 1 * S, 2 * S, 4 * S, 5 * S]


def test_attempts_are_forgotten_one_per_decay_interval() -> None:
    policy = Backoff(free_attempts=2, base_ms=1000, max_s=60, decay_s=10)
    state, _ = charge(NEW_KEY, 0, policy)
    state, _ = charge(state, 0, policy)  # the second: blocked for 1 s
    state, wait = charge(state, 25 * S, policy)  # two forgotten: this is the first again
    assert wait == 0
    assert state.attempts == 1
    assert state.blocked_until_us == 0
