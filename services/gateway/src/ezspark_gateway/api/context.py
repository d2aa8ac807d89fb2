"""Everything a request may need, built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ezspark_gateway.api.metrics import GatewayMetrics
from ezspark_gateway.core.admission import Admission
from ezspark_gateway.core.environments import EnvironmentRegistry
from ezspark_gateway.core.evaluators import EvaluatorIssuer
from ezspark_gateway.core.ports import Clock, CommandPublisher
from ezspark_gateway.core.security import AuthThrottle, Passwords
from ezspark_gateway.settings import GatewaySettings
from ezspark_gateway.storage import Database

SESSION_COOKIE = "ezspark_session"


@dataclass
class AppContext:
    """The gateway's collaborators; tests build it with fakes."""

    settings: GatewaySettings
    db: Database
    publisher: CommandPublisher
    broker_ping: Callable[[], None]
    passwords: Passwords
    throttle: AuthThrottle
    metrics: GatewayMetrics
    clock: Clock
    environments: EnvironmentRegistry
    admission: Admission
    # Issues users' own evaluators broker users (None: this gateway does not).
    evaluators: EvaluatorIssuer | None = None
