"""What can go wrong when a model is asked for a prediction, and the HTTP answer that fits each case.

These live in their own module because both the registry (which picks models)
and the engines (which run them) raise them; the back-end turns every one of
them into a JSON answer with ``status_code`` (and ``Retry-After`` when set).
"""

from __future__ import annotations


class ModelError(Exception):
    """Base of the model errors; ``status_code`` is the HTTP answer that fits."""

    status_code = 500
    retry_after: int | None = None  # seconds, when trying again later may work


class UnknownModelError(ModelError):
    """The name is not a model this server can serve."""

    status_code = 422


class ModelUnavailableError(ModelError):
    """The model exists but cannot be served now (no weights and no network, or a load failure)."""

    status_code = 503


class ModelBusyError(ModelError):
    """The model stayed busy with other requests for longer than the time budget."""

    status_code = 503
    retry_after = 2


class InferenceError(ModelError):
    """The model raised an exception on an input; the server logged the traceback."""

    status_code = 503
