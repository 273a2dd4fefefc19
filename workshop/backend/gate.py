"""A bounded queue in front of the model: when too many predictions are waiting, say so at once.

Without it, a class of students hitting one 2-vCPU VM would pile requests up
in the thread pool and everyone would wait longer and longer. With it, the
requests past the limit get ``503`` with ``Retry-After`` straight away, and
those already in the queue keep a bounded latency.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from workshop.backend.observability import QUEUE_DEPTH
from workshop.registry import ModelError


class ServerBusyError(ModelError):
    """Too many predictions are already waiting; the client should retry after ``retry_after`` seconds."""

    status_code = 503
    retry_after = 1

    def __init__(self, limit: int) -> None:
        super().__init__(f"The server is busy: {limit} predictions are already waiting. Retry in {self.retry_after} s.")


class InferenceGate:
    """Lets at most ``limit`` prediction requests wait for or run inference at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one place in the queue for the duration of a prediction, or raise :class:`ServerBusyError`."""
        with self._lock:
            if self._pending >= self.limit:
                raise ServerBusyError(self.limit)
            self._pending += 1
            QUEUE_DEPTH.set(self._pending)
        try:
            yield
        finally:
            with self._lock:
                self._pending -= 1
                QUEUE_DEPTH.set(self._pending)
