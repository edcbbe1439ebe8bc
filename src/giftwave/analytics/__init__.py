"""Economy health: rollups of the ledger and the figures read from them (docs/analytics.md).

No web imports: the API, the pages, the simulator and the benchmark use this package.
"""
