"""The FastAPI back-end: ``create_app()`` builds it, ``workshop serve`` runs it."""

from workshop.backend.app import create_app

__all__ = ["create_app"]
