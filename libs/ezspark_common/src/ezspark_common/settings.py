"""Settings shared by every service, read from ``EZSPARK_*`` environment variables.

Each service builds its settings once in ``main()`` and passes them down; nothing reads
the environment at import time.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ezspark_common.quotas import Quotas


class CommonSettings(BaseSettings):
    """What every EzSpark process needs: where the broker is, how to log, which env plug-ins."""

    model_config = SettingsConfigDict(env_prefix="EZSPARK_", extra="ignore")

    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    log_level: str = "INFO"
    log_json: bool = True
    # Comma-separated module names imported at start-up to register custom environments.
    env_modules: str = ""
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # False where this service's broker user may not configure anything (least privilege,
    # docs/deploy.md): it then declares nothing and waits for the evolver, which owns the
    # queues and exchanges.  The evolver itself always declares.
    broker_declares: bool = True
    # Play a user's environment in a child process (an evaluator's tasks; ``ezspark train``
    # even with one worker), so a native crash or hang of it costs only the genomes that
    # cause it.  False: in the process itself (a debugger's breakpoints in the env work).
    isolate_envs: bool = True
    # Per-user quotas: the gateway and the evolver must be given the same values.
    quota_active_trainings: int = Field(default=4, ge=1)
    quota_population: int = Field(default=20_000, ge=2)
    quota_work_per_generation: int = Field(default=100_000_000, ge=1)

    @property
    def quotas(self) -> Quotas:
        """The operator's per-user quotas."""
        return Quotas(
            active_trainings=self.quota_active_trainings,
            population=self.quota_population,
            work_per_generation=self.quota_work_per_generation,
        )

    @property
    def env_module_list(self) -> list[str]:
        """The allow-listed environment plug-in modules, in order."""
        return [m.strip() for m in self.env_modules.split(",") if m.strip()]
