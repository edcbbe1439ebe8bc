"""Outgoing webhooks: signed HTTP POSTs to a creator's endpoints when gifts, combos, goals and
battles happen, for bots and alert tools (docs/webhooks.md).

    gift committed ──► OutboxWriter ──► webhook_deliveries (the outbox)  ◄── battles, pings
    room tick (goal_reached) ──┘  └──► webhook_combos ──(quiet window)──┘
                                                  │
                              Dispatcher (one per process): claim due rows, POST, record;
                              retry with backoff, then failed; disable endpoints that keep failing

Written before the gift is acknowledged, delivered at least once: receivers dedupe by the
``Giftwave-Delivery`` header.
"""
