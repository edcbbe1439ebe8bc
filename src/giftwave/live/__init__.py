"""Streams and their live rooms: combos, leaderboards, goals, battles, moderation."""
