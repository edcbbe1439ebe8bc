"""The gift economy on top of the ledger: catalogue, packages, gifting, top-ups, earnings,
payouts, refunds. Uses ``ledger``; never imports the web framework."""
