"""Persistence: SQLAlchemy models, the engine and the repository."""

from ezspark_gateway.storage.db import Database, normalize_url
from ezspark_gateway.storage.repository import Repository

__all__ = ["Database", "Repository", "normalize_url"]
