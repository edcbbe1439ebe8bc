"""Streams and, later, live rooms: combos, leaderboards, goals, battles."""
