"""Evolver settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from ezspark_common.settings import CommonSettings


class EvolverSettings(CommonSettings):
    """Where the evolver keeps checkpoints and how it cuts work into tasks."""

    metrics_port: int = Field(default=9102, ge=0, le=65535)
    data_dir: str = "./ezspark-data"
    task_batch_size: int = Field(default=100, ge=1, le=100_000)
    task_timeout_s: float = Field(default=60.0, gt=0)
    max_concurrent_trainings: int = Field(default=4, ge=1, le=1000)
