"""Evaluator settings (``EZSPARK_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field

from ezspark_common.settings import CommonSettings


class EvaluatorSettings(CommonSettings):
    """How one evaluator consumes tasks."""

    metrics_port: int = Field(default=9101, ge=0, le=65535)
    prefetch: int = Field(default=2, ge=1, le=1000)
    # Test-only fault switch: added to every fitness this evaluator reports (0 = honest).
    fault_fitness_offset: float = 0.0
