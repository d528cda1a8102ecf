"""User errors: bad input that gets one clear line and exit code 2, never a traceback."""


class UserError(Exception):
    """Raised for anything the user can fix: a missing file or column, a bad config value, an unreachable hub id."""

    exit_code = 2


class Interrupted(UserError):
    """SIGTERM or Ctrl-C during training: a checkpoint was saved and the same command resumes the run."""

    exit_code = 130


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (libraries often add pages of context below it)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
