"""Trending: live streams (later clips) ranked by time-decayed engagement (docs/trending.md)."""
