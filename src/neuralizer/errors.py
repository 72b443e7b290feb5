"""The errors a user can cause (bad files, arguments or configs): the command line prints them
as one line and exits with status 2, folder mode reports and skips the target, and the web app
shows them on the page. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

#: ``MemoryLimitError`` (``neuralizer.model.limits``) is a ValueError, so it is one of them.
USER_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
)


def one_line(error: BaseException) -> str:
    """``error``'s message on one line, whatever the library said."""
    return " ".join(str(error).split())
