"""Trending: live streams ranked by time-decayed engagement (docs/trending.md)."""
