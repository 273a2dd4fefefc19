"""Latency summaries: percentiles and throughput of one series of timed calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles in milliseconds, and how many calls per second were completed."""

    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput: float  # successful calls per second of wall-clock time

    @classmethod
    def of(cls, seconds: Sequence[float], wall_seconds: float, errors: int = 0) -> LatencySummary:
        if not seconds:
            return cls(count=0, errors=errors, p50_ms=float("nan"), p95_ms=float("nan"), p99_ms=float("nan"), throughput=0.0)
        p50, p95, p99 = np.percentile(np.asarray(seconds) * 1000, [50, 95, 99]).tolist()
        return cls(
            count=len(seconds),
            errors=errors,
            p50_ms=round(p50, 2),
            p95_ms=round(p95, 2),
            p99_ms=round(p99, 2),
            throughput=round(len(seconds) / wall_seconds, 2) if wall_seconds > 0 else 0.0,
        )

    def to_dict(self) -> dict:
        return asdict(self)
