"""Benchmark scenarios behind ``giftwave bench``: each measures itself beside a baseline."""
