"""Gateway settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ezspark_common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """Where the gateway listens and keeps its state."""

    model_config = SettingsConfigDict(env_prefix="EZSPARK_", extra="ignore", populate_by_name=True)

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
    # Lifetime of API tokens created without ``expires_in_days``.
    api_token_ttl_s: int = Field(default=90 * 24 * 3600, ge=60)
    # Log-in / sign-up attempts allowed per (client IP, username) in each window (the
    # budget is counted in the database, so it holds across workers and replicas).
    auth_rate_limit: int = Field(default=10, ge=1)
    auth_rate_window_s: float = Field(default=300.0, gt=0)
    # Argon2id memory per hash and how many hashes may run at once: peak hashing memory
    # is their product, whatever the number of concurrent log-ins.
    argon2_memory_kib: int = Field(default=19 * 1024, ge=8 * 1024, le=256 * 1024)
    hash_concurrency: int = Field(default=2, ge=1, le=64)
    # Proxies whose X-Forwarded-For/-Proto are believed (comma-separated IPs or CIDRs, as
    # uvicorn's --forwarded-allow-ips).  Empty: none, the peer address is the client.
    forwarded_allow_ips: str = Field(
        default="",
        validation_alias=AliasChoices("EZSPARK_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"),
    )
    # Origins (scheme://host[:port]) besides the request's own allowed to post with the
    # session cookie, e.g. the public URL when a proxy rewrites Host.
    allowed_origins: str = ""
    # HTTP server hardening: complete request headers within this many seconds, keep idle
    # connections this long, and serve at most this many connections at once (503 beyond).
    header_timeout_s: float = Field(default=10.0, gt=0)
    keep_alive_s: int = Field(default=5, ge=1)
    max_connections: int = Field(default=1000, ge=1)
    # Worker processes serving HTTP, each a whole gateway (see ``workers``).
    workers: int = Field(default=1, ge=1, le=64)
    # Threads per process for sync handlers (database work); FastAPI's default is 40.
    # Fewer did not reliably shorten the slowest reads on 2 cores (docs/production.md).
    threads: int = Field(default=40, ge=1, le=200)
    # Per-generation history: the newest rows are kept as they come, older ones thinned
    # so that at most about as many again remain, evenly spread.
    history_recent: int = Field(default=1000, ge=10)
    # Users' own evaluators (``ezspark evaluator``): RabbitMQ's management API and an
    # administrator user of it, which never leave the gateway, and the AMQP URL (no
    # credentials) those machines reach.  Empty admin URL: /api/evaluators answers 503.
    broker_admin_url: str = ""
    broker_admin_user: str = ""
    broker_admin_password: SecretStr = SecretStr("")
    evaluator_broker_url: str = ""
    # Broker users one account's machines may hold at once.
    max_user_evaluators: int = Field(default=16, ge=1, le=1000)
    # How often the broker users of expired (or otherwise dead) tokens are deleted: an
    # expired token's machine loses its access within this many seconds.
    evaluator_sweep_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    # Silence after which an active training is shown as stalled, at the least (longer for
    # runs whose generations take long: core/health.py).
    stall_min_s: float = Field(default=60.0, gt=0.0, le=86_400.0)
    # The example configs the training form offers as starting points (web/presets.py).
    # Empty: the source checkout's examples/ when there is one.
    examples_dir: str = ""
