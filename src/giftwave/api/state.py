"""What the running app holds: settings, the database engine, the posting engine."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from giftwave.config import Settings
from giftwave.ledger.engine import PostingEngine


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Engine
    engine: PostingEngine
