"""The CLI's exit codes and the one error type its commands raise on purpose."""

from __future__ import annotations

OK, FAILED, USAGE = 0, 1, 2


class CliError(Exception):
    """One line for the user; `code` is the exit status (FAILED or USAGE)."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code
