"""User errors: bad input that gets one clear line and exit code 2, never a traceback; a failing environment (a
full or read-only disk) gets one line and exit code 1. "Internal error" is kept for bugs in moviegpt.
"""

import errno
import os
import re
import sys

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_ESCAPES = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")


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


def terminal(text) -> str:
    """Text from data made safe to print: escape sequences and control characters (which can clear the screen,
    move the cursor or set the window title) are removed; newlines and tabs stay."""
    text = _ESCAPES.sub("", str(text))
    return _CONTROL.sub("", text)


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (libraries often add pages of context below it)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def reporting(work) -> int:
    """Run `work()`; a user's mistake becomes one `moviegpt: error:` line and its exit code, anything else an
    internal error (a bug in moviegpt). Returns the exit code."""
    try:
        work()
    except UserError as e:
        print(f"moviegpt: {'' if isinstance(e, Interrupted) else 'error: '}{terminal(first_line(e))}", file=sys.stderr)
        return e.exit_code
    except SystemExit as e:  # --help, --version
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        print("moviegpt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`moviegpt config --keys | head -1`): nothing more to say
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter flushes stdout at exit)
        except OSError:
            pass
        return 0
    except Exception as e:
        if os.environ.get("MOVIEGPT_DEBUG"):
            raise
        if (env := environment_failure(e)) is not None:  # the machine, not moviegpt: one line, exit 1
            print(f"moviegpt: error: {env}", file=sys.stderr)
            return env.exit_code
        print(
            f"moviegpt: internal error: {type(e).__name__}: {first_line(e)} (MOVIEGPT_DEBUG=1 shows where; "
            "please report it)",
            file=sys.stderr,
        )
        return 1
    return 0
