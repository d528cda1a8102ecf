"""User errors: bad input that gets one clear line and exit code 2, never a traceback; a failing environment (a
full or read-only disk) gets one line and exit code 1. "Internal error" is kept for bugs in moviegpt.
"""

import errno


class UserError(Exception):
    """Raised for anything the user can fix: a missing file or column, a bad config value, an unreachable hub id."""

    exit_code = 2


class Interrupted(UserError):
    """SIGTERM or Ctrl-C during training: a checkpoint was saved and the same command resumes the run."""

    exit_code = 130


class EnvironmentFailure(UserError):
    """The machine, not the input: a full disk, a read-only or unwritable folder. The user fixes it; exit 1."""

    exit_code = 1


ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def environment_failure(e: BaseException) -> EnvironmentFailure | None:
    """An OSError the environment caused, as one line naming the file; None for anything else (a bug)."""
    if not isinstance(e, OSError) or e.errno not in ENVIRONMENT_ERRNOS:
        return None
    where = f" writing {e.filename}" if e.filename else ""
    return EnvironmentFailure(
        f"{ENVIRONMENT_ERRNOS[e.errno]}{where}; free space or choose a writable place (runs_dir, MOVIEGPT_CACHE, "
        "HOME); files already written are kept"
    )


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (libraries often add pages of context below it)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
