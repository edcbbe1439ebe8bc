"""The economy simulator: a population of viewers and creators through the real economy code.

scenario.py   the scenario file (TOML) as a strict model: a bad field is named, before
              anything runs
population.py who the viewers and creators are and what they do each simulated day (pure,
              seeded: the same seed plans the same days)
run.py        a scratch SQLite database, the real PostingEngine, users, streams, goals,
              sandbox top-ups, gifts, refunds and payouts through the service layer;
              the rollups, the health figures and ``verify_ledger``
report.py     one or two runs as an HTML report with charts and the differences
"""
