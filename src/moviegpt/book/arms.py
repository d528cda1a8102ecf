"""The book's runs: which runs the report shows, training them (`moviegpt book`), and finding them again.

`moviegpt book` (what scripts/build_book.sh runs before `jupyter-book build`) resolves the book's configs for
this machine, trains or reuses each run with progress on the terminal, evaluates the main one, and writes
runs/book-<profile>.json naming the runs. A chapter calls `runs()`, which reads that file and returns the
finished runs without importing torch or transformers; only when a run is missing or unfinished (the book
built without `moviegpt book`) does it train them, as `moviegpt book` does: each in a process of its own, whose
output goes to the terminal that runs the build, not into a page.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from moviegpt.core.errors import UserError
from moviegpt.core.project import project_root
from moviegpt.core.rundir import RunDir

DEFAULT_PROFILE = "demo"  # the offline profile the book shows unless MOVIEGPT_PROFILE says otherwise
MAIN = "full fine-tuning"
LORA = "LoRA"
ORIGINAL = "original recipe"
LORA_ARM = ["train.lora=true", "train.learning_rate=1.0e-3"]  # the book's LoRA run: the main run's profile and budget,
# adapters only, with the larger step LoRA needs
ORIGINAL_PROFILE = "seed"  # the report's recipe (configs/seed.yaml), trained on the book's model, films and budget
FROM_BOOK = ("model", "data")  # the sections the original arm takes from the book's profile, with train.budget_minutes


def profile() -> str:
    return os.environ.get("MOVIEGPT_PROFILE", DEFAULT_PROFILE)


def arms() -> list[str]:
    """Every run the book shows, the main one first."""
    return [MAIN, LORA, ORIGINAL]


def requested(root: Path | None = None) -> dict:
    """The book's configs as asked for, runs under the project's runs/: the book's profile (MOVIEGPT_PROFILE),
    its LoRA arm (overrides of it), and the report's recipe (configs/seed.yaml) with only the model, the films
    and the budget of the book's profile, so that only the recipe differs."""
    from moviegpt.core.settings import check, load_config

    runs_dir = f"runs_dir={project_root(root) / 'runs'}"
    main = load_config(profile(), [runs_dir])
    seed = load_config(ORIGINAL_PROFILE, [runs_dir])
    original = dataclasses.replace(
        seed,
        **{section: getattr(main, section) for section in FROM_BOOK},
        train=dataclasses.replace(seed.train, budget_minutes=main.train.budget_minutes),
    )
    check(original)
    return {MAIN: main, LORA: load_config(profile(), [runs_dir, *LORA_ARM]), ORIGINAL: original}


def configs(log=lambda m: None, root: Path | None = None) -> dict:
    """The book's configs resolved for this machine: the model that can be had and, for a budget, the plan
    (cached once its run has trained; otherwise made here)."""
    from moviegpt.train import finetune

    return {name: finetune.resolve(cfg, log)[0] for name, cfg in requested(root).items()}


def train_all(log=print, root: Path | None = None) -> dict[str, RunDir]:
    """Train (or reuse) every run the book shows, each in a process of its own that plans it (its estimate runs
    that run's model), then write runs/book-<profile>.json naming them."""
    from moviegpt.train import finetune

    for name, cfg in requested(root).items():
        log(f"== {name}")
        finetune.run_apart(cfg)
    cfgs = configs(root=root)  # every plan is cached now: nothing is estimated or loaded here
    write_manifest(cfgs, root)
    return {name: RunDir(Path(c.runs_dir) / c.run_name) for name, c in cfgs.items()}


def manifest(root: Path | None = None) -> Path:
    return project_root(root) / "runs" / f"book-{profile()}.json"


def write_manifest(cfgs: dict, root: Path | None = None) -> None:
    from moviegpt.core.validate import write_atomic

    path = manifest(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"profile": profile(), "runs": {k: c.run_name for k, c in cfgs.items()}}, indent=2))


def prepare(log=print, root: Path | None = None) -> dict[str, RunDir]:
    """`moviegpt book`: train (or reuse) and evaluate every run the book shows, with progress on the terminal:
    the main run in depth (eval.json), and every run on the same films and titles (score.json)."""
    from moviegpt.eval import evaluate, score

    out = train_all(log, root)
    log("== evaluating the main run")  # the chapters evaluate the main run in depth
    evaluate.evaluate_run(out[MAIN].path, log=log)
    main = requested(root)[MAIN]
    for run in out.values():
        score.score(run, main, log)
    return out


def runs(root: Path | None = None) -> dict[str, RunDir]:
    """The book's finished runs, read from runs/book-<profile>.json; trained first where one is not finished."""
    try:
        names = json.loads(manifest(root).read_text())["runs"]
        found = {name: RunDir(manifest(root).parent / names[name]) for name in arms()}
    except (OSError, ValueError, KeyError, TypeError):
        found = {}
    if found and all(r.finished for r in found.values()):
        return found
    try:
        return train_all(lambda m: None, root)
    except SystemExit as e:
        raise UserError(f"training the book's runs failed (exit {e.code}); the lines above say why") from None


def main_run(root: Path | None = None) -> RunDir:
    return runs(root)[MAIN]
