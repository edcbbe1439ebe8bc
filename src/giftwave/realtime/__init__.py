"""Real-time fan-out: the per-room tick, frames encoded once, bounded per-socket buffers."""
