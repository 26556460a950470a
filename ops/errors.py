"""The one exception type an operator sees: a message that says what failed and what to do."""


class OpsError(Exception):
    """An expected failure: printed as one clear message, never as a traceback."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message
