"""giftwave: the live-stream gift economy and sharing engine."""

__version__ = "0.1.0"
