"""Reference runs: a finished run's artifacts, without its weights, in a folder the book reads.

`moviegpt export RUN DEST` copies what a report needs from a finished run (its config, summary, base and
held-out evaluations, metrics log, and the score.json of a comparison where there is one) into DEST, and
writes DEST/reference.json: the machine, the date and the code version that made the run, and when and by
what code it was exported. The book lists every such folder under data/reference/ beside the runs it
trained itself, and says on the page that a reference was not made by the build that shows it.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

from moviegpt.core import validate
from moviegpt.core.artifacts import code_version, describe_machine
from moviegpt.core.errors import UserError
from moviegpt.core.rundir import RunDir

FILES = ("config.yaml", "summary.json", "base_eval.json", "eval.json", "score.json", "metrics.jsonl")
NEEDED = ("config.yaml", "summary.json", "metrics.jsonl")
STAMP = "reference.json"
FOLDER = Path("data") / "reference"  # under the project: where the book finds the references it shows


def stamp(run: RunDir) -> dict:
    """Who made the run, where and when (from its own records), and who exported it."""
    info = run.info()
    finished = datetime.datetime.fromtimestamp(run.summary_json.stat().st_mtime, datetime.timezone.utc)
    return {
        "run": run.name,
        "machine": describe_machine(info.hardware),
        "finished": finished.strftime("%Y-%m-%d %H:%M UTC"),
        "code": info.code,
        "exported": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "exported_by": code_version(),
    }


def export(run_dir: Path, dest: Path) -> Path:
    """Copy a finished run's artifacts (no weights, no checkpoints) into dest, a new or empty folder."""
    run = RunDir(run_dir)
    if not run.path.is_dir() or not run.finished:
        raise UserError(f"{run_dir} is not a finished moviegpt run (no summary.json); finish it before exporting")
    missing = [f for f in NEEDED if not (run / f).is_file()]
    if missing:
        raise UserError(f"{run_dir} lacks {', '.join(missing)}; it cannot be exported")
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"{dest} exists and is not an empty folder; choose a new one (nothing was written)")
    record = stamp(run)  # read before anything is written: a damaged run fails here
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in FILES:
        if (run / name).is_file():
            shutil.copy2(run / name, tmp / name)
    validate.write_atomic(tmp / STAMP, json.dumps(record, indent=2))
    if dest.exists():
        dest.rmdir()
    tmp.rename(dest)  # all or nothing: a folder under dest is always complete
    return dest


def references(root: Path) -> dict[str, RunDir]:
    """The reference runs shipped with the project (FOLDER), by folder name, each with its reference.json."""
    folder = Path(root) / FOLDER
    found = sorted(p for p in folder.glob("*") if (p / STAMP).is_file() and (p / "summary.json").is_file())
    return {p.name: RunDir(p) for p in found}


def made(run: RunDir) -> dict:
    """A reference's reference.json."""
    return json.loads((run / STAMP).read_text())
