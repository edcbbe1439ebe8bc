"""Clips: short videos by creators, stored in a clip store, served with range requests;
watermarked downloads and cuts of recordings rendered by FFmpeg in background jobs;
reposts and emoji reactions (docs/clips.md)."""
