"""Reference runs: a finished run's artifacts, without its weights, in a folder the book reads.

`moviegpt export RUN DEST` copies what a report needs from a finished run (its config, summary, base and
held-out evaluations, metrics log, and the score.json of a comparison where there is one) into DEST, and
writes DEST/reference.json: the machine, the date and the code version that made the run, and when and by
what code it was exported. The book lists every such folder under data/reference/ beside the runs it
trained itself, and says on the page that a reference was not made by the build that shows it.

A reference folder is outside input: `references` reads each one as it would read anything from outside (regular
files inside the folder, bounded in size, parsed into typed records) and leaves out one that fails, with a line
saying why. Export reads and checks the run before it copies, copies no link that leaves the run, writes into a
staging folder of its own making, and deletes nothing it did not create.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from moviegpt.core import validate
from moviegpt.core.artifacts import HeldOut, Score, Summary, code_version, describe_machine, from_dict
from moviegpt.core.errors import UserError
from moviegpt.core.rundir import RunDir

FILES = ("config.yaml", "summary.json", "base_eval.json", "eval.json", "score.json", "metrics.jsonl")
NEEDED = ("config.yaml", "summary.json", "metrics.jsonl")
STAMP = "reference.json"
FOLDER = Path("data") / "reference"  # under the project: where the book finds the references it shows
MAX_BYTES = 32 << 20  # a reference's largest file (its metrics log or eval.json) is far smaller
STAMP_KEYS = {"run": str, "machine": str, "finished": str, "code": dict, "exported": str, "exported_by": dict}


def stamp(run: RunDir) -> dict:
    """Who made the run, where and when (from its own records), and who exported it."""
    info = run.info()
    finished = datetime.datetime.fromtimestamp(run.summary_json.stat().st_mtime, datetime.timezone.utc)
    return {
        "run": run.name,
        "machine": describe_machine(info.hardware),
        "finished": finished.strftime("%Y-%m-%d %H:%M UTC"),
        "code": info.code or {},
        "exported": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "exported_by": code_version(),
    }


def _inside(run: RunDir, name: str) -> Path | None:
    """run/name when it is a regular file inside the run (a link is followed only where it stays inside)."""
    p = run.path / name
    if not p.exists():
        return None
    if not p.is_file() or run.path.resolve() not in p.resolve().parents:
        raise UserError(f"{p} is not a regular file inside the run; it cannot be exported (nothing was written)")
    return p


def export(run_dir: Path, dest: Path) -> Path:
    """Copy a finished run's artifacts (no weights, no checkpoints) into dest, a new or empty folder."""
    run = RunDir(run_dir)
    if not run.path.is_dir() or not run.finished:
        raise UserError(f"{run_dir} is not a finished moviegpt run (no summary.json); finish it before exporting")
    missing = [f for f in NEEDED if not (run / f).is_file()]
    if missing:
        raise UserError(f"{run_dir} lacks {', '.join(missing)}; it cannot be exported")
    run.summary()  # read and checked before anything is written: a damaged summary is named here
    record = stamp(run)
    sources = {name: p for name in FILES if (p := _inside(run, name)) is not None}
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise UserError(f"{dest} exists and is not an empty folder; choose a new one (nothing was written)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))  # ours alone
    try:
        for name, src in sources.items():
            target = staging / name
            try:
                shutil.copyfile(src, target, follow_symlinks=True)
            except OSError as e:
                raise UserError(f"cannot write {target}: {e.strerror or e}; nothing was exported") from None
        validate.write_atomic(staging / STAMP, json.dumps(record, indent=2))
        if dest.exists():
            dest.rmdir()  # empty, checked above
        os.rename(staging, dest)  # all or nothing: a folder under dest is always complete
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


@dataclass
class Reference:
    """One reference folder as the book may show it: its records, read and checked."""

    name: str
    run: RunDir
    made: dict  # reference.json
    summary: Summary
    score: Score | None


@dataclass
class Found:
    ok: dict[str, Reference] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # "<folder>: why", one line each


def _read(folder: Path, name: str) -> str:
    p = folder / name
    if p.is_symlink() or not p.is_file():
        raise ValueError(f"{name} is missing or not a regular file")
    if p.stat().st_size > MAX_BYTES:
        raise ValueError(f"{name} is larger than {MAX_BYTES >> 20} MiB")
    return p.read_text(errors="strict")


def read(folder: Path) -> Reference:
    """One reference folder, checked: its stamp, summary and (where present) score, each a regular file inside it."""
    made = validate.loads(_read(folder, STAMP))
    if not isinstance(made, dict):
        raise ValueError(f"{STAMP} is not a mapping")
    for key, kind in STAMP_KEYS.items():
        if not isinstance(made.get(key), kind):
            raise ValueError(f"{STAMP} has no {key} of the right type")
    summary = from_dict(Summary, validate.loads(_read(folder, "summary.json")))
    _check_held_out(summary.final, "summary.json")
    score = None
    if (folder / "score.json").exists():
        score = from_dict(Score, validate.loads(_read(folder, "score.json")))
        _check_held_out(score.held_out, "score.json")
        if len(score.eos_nll) != len(score.held_out.film_nll or []):
            raise ValueError("score.json's end-of-text losses do not match its films")
    for name in ("config.yaml", "metrics.jsonl"):
        _read(folder, name)
    return Reference(folder.name, RunDir(folder), made, summary, score)


def _check_held_out(h: HeldOut, where: str) -> None:
    if h.film_nll is None or h.film_tokens is None or len(h.film_nll) != len(h.film_tokens) or not h.film_nll:
        raise ValueError(f"{where} has no per-film losses")
    if len(h.film_nll) != h.films:
        raise ValueError(f"{where} claims {h.films} films but holds {len(h.film_nll)}")


def references(root: Path) -> Found:
    """The reference runs shipped with the project (FOLDER), by folder name, each read and checked; a folder that
    cannot be read is left out with one line (never a failed build)."""
    folder = Path(root) / FOLDER
    found = Found()
    for p in sorted(folder.glob("*")):
        if p.name.startswith(".") or not (p.is_dir() or p.is_symlink()):
            continue
        try:
            if p.is_symlink() or p.resolve().parent != folder.resolve():
                raise ValueError("the folder is a link")
            found.ok[p.name] = read(p)
        except (OSError, ValueError, TypeError, KeyError, UnicodeDecodeError) as e:
            found.left_out.append(f"{p.name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"[:300])
    return found
