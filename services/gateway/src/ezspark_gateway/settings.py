"""Gateway settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from ezspark_common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """Where the gateway listens and keeps its state."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str = "sqlite:///./ezspark-gateway.db"
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
