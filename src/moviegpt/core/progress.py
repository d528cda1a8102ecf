"""Progress on screen: shown in a terminal and in a notebook, silent in logs and pipes (CI), and never in the book.

MOVIEGPT_PROGRESS=1 forces progress on, =0 off (the book's Sphinx extension sets 0, so pages stay clean).
"""

from __future__ import annotations

import os
import sys


def in_notebook() -> bool:
    from transformers.utils import is_in_notebook

    return bool(is_in_notebook())


def enabled() -> bool:
    forced = os.environ.get("MOVIEGPT_PROGRESS", "").strip().lower()
    if forced in ("0", "1", "true", "false", "yes", "no"):
        return forced in ("1", "true", "yes")
    return sys.stderr.isatty() or in_notebook()


def bar(iterable=None, desc: str = "", total: int | None = None, unit: str = "it"):
    """A tqdm bar on stderr when progress is enabled; the bare iterable otherwise."""
    from tqdm import tqdm

    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        disable=not enabled(),
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
    )
