"""Errors any layer may raise and every face (HTTP, CLI) reports in its own way."""

from __future__ import annotations


class InputError(Exception):
    """A client mistake: HTTP `status` with a message that names the field."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"error": f"{self.field}: {self.message}", "field": self.field}


class StartupError(Exception):
    """The relay cannot start as configured; the CLI prints it as one line and exits 2."""
