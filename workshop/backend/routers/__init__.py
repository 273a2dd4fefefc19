"""The back-end's routes, one router per concern."""
