"""Gateway settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from ezspark_common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """Where the gateway listens and keeps its state."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str = "sqlite:///./ezspark-gateway.db"
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    # A checkpoint handed over by ``ezspark train --gateway`` travels on to the evolver in
    # one message: kept under RabbitMQ 4's default 16 MiB message limit.
    max_checkpoint_bytes: int = Field(default=12_000_000, ge=1024)
    # Set behind HTTPS so browsers only send the session cookie over TLS.
    cookie_secure: bool = False
    session_ttl_s: int = Field(default=14 * 24 * 3600, ge=60)
    # Log-in / sign-up attempts allowed per (client IP, username) in each window.
    auth_rate_limit: int = Field(default=10, ge=1)
    auth_rate_window_s: float = Field(default=300.0, gt=0)
    # Users' own evaluators (``ezspark evaluator``): RabbitMQ's management API and an
    # administrator user of it, which never leave the gateway, and the AMQP URL (no
    # credentials) those machines reach.  Empty admin URL: /api/evaluators answers 503.
    broker_admin_url: str = ""
    broker_admin_user: str = ""
    broker_admin_password: SecretStr = SecretStr("")
    evaluator_broker_url: str = ""
    # Broker users one account's machines may hold at once.
    max_user_evaluators: int = Field(default=16, ge=1, le=1000)
