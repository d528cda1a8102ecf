"""The project a run or a book belongs to: the folder holding the Jupyter Book (_toc.yml and _config.yml), under which
runs/, data/reference/ and data/study/ live."""

from __future__ import annotations

from pathlib import Path

from moviegpt.core.errors import UserError


def project_root(start: Path | None = None) -> Path:
    """The book's project: the nearest folder holding _toc.yml, from the current one (the book's chapters
    run in book/, the CLI in the repository)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    raise UserError(f"no Jupyter Book project (_toc.yml) in {here} or above; run this from the moviegpt repository")
