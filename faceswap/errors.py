"""The one error type for bad user input: the CLI prints it as one line and exits with code 2."""
from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (missing file, corrupt video, bad override, ...).

    The message must name the input and say what to do; the CLI prints
    ``error: <message>`` on one line and exits with status 2.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
