"""What a new training must pass before anything is stored or published.

* ``config_errors``: the operator's per-user quotas on the config itself
  (``quota_errors``) and its environment (``EnvironmentCheck``); ``/api/validate`` reports
  exactly these.
* ``admit``: the user may have at most ``quotas.active_trainings`` trainings queued,
  running or stopping.  The count and the insert happen under a row lock on the user
  (PostgreSQL: concurrent requests of one user queue in the database, other users'
  requests are not held up), or under one lock per gateway process on SQLite, which has no
  row locks.  Either way concurrent requests cannot both slip under the limit.  A thread
  never waits for that lock while holding a pooled connection: the holder may need one,
  and the pool would run dry.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager, nullcontext

from ezspark_common.config import ConfigError, TrainingConfig
from ezspark_common.quotas import Quotas, quota_errors
from ezspark_gateway.core.env_check import EnvironmentCheck
from ezspark_gateway.core.errors import QuotaExceededError
from ezspark_gateway.storage import Repository
from ezspark_gateway.storage.models import User


class Admission:
    """The gate every create path (API, upload, web form) goes through."""

    def __init__(self, quotas: Quotas, environments: EnvironmentCheck) -> None:
        self.quotas = quotas
        self.environments = environments
        self._lock = threading.Lock()

    def config_errors(
        self, config: TrainingConfig, *, detailed: bool = True
    ) -> list[tuple[str, str]]:
        """``(field, message)`` for each quota the config exceeds and each environment fault
        (``detailed``: name the served environments, for authenticated callers)."""
        return quota_errors(config, self.quotas) + self.environments.errors(
            config, detailed=detailed
        )

    def check_config(self, config: TrainingConfig, *, detailed: bool = True) -> None:
        """Raise ConfigError (422, like any invalid config) listing ``config_errors``."""
        errors = self.config_errors(config, detailed=detailed)
        if errors:
            raise ConfigError(errors)

    @contextmanager
    def admit(self, repo: Repository, owner: User, active: Collection[str]) -> Iterator[None]:
        """Hold the owner's slot while the body stores the training; QuotaExceededError
        (nothing stored) when ``owner`` already has ``active_trainings`` active ones."""
        limit = self.quotas.active_trainings
        sqlite = repo.session.get_bind().dialect.name == "sqlite"
        if sqlite:
            # End the request's read transaction first, so that a thread waiting for the
            # lock holds no pooled connection the lock's holder might need.
            repo.rollback()
        with self._lock if sqlite else nullcontext():
            repo.lock_user(owner.id)
            count = repo.count_trainings_of(owner.id, statuses=active)
            if count >= limit:
                repo.rollback()  # release the row lock
                raise QuotaExceededError(
                    f"you already have {count} active trainings (queued, running or "
                    f"stopping); the limit is {limit} per user "
                    "(EZSPARK_QUOTA_ACTIVE_TRAININGS): wait for one to end or stop one"
                )
            yield
