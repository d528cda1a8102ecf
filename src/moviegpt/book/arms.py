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
    """The profile the book shows: MOVIEGPT_PROFILE, which must name a shipped profile (never a path: the book
    writes runs/book-<profile>.json, and a path could lead out of the project)."""
    from moviegpt.core.settings import profiles
    from moviegpt.core.validate import PROFILE_NAME

    name = os.environ.get("MOVIEGPT_PROFILE", DEFAULT_PROFILE)
    if not PROFILE_NAME.match(name) or name not in profiles():
        raise UserError(
            f"MOVIEGPT_PROFILE={name!r} is not a profile the book can build; use one of {', '.join(profiles())}"
        )
    return name


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

    profile()  # MOVIEGPT_PROFILE checked before anything else is read
    check(log, root)
    out = train_all(log, root)
    log("== evaluating the main run")  # the chapters evaluate the main run in depth
    evaluate.evaluate_run(out[MAIN].path, log=log)
    main = requested(root)[MAIN]
    for run in out.values():
        score.score(run, main, log)
    return out


def runs(root: Path | None = None) -> dict[str, RunDir]:
    """The book's finished runs, read from runs/book-<profile>.json (checked: plain folders under runs/, each run's
    own config that of its arm); trained first where one is not finished or the file cannot be trusted."""
    found = pointed(root)
    if found and all(r.finished for r in found.values()):
        return found
    try:
        return train_all(lambda m: None, root)
    except SystemExit as e:
        raise UserError(f"training the book's runs failed (exit {e.code}); the lines above say why") from None


def pointed(root: Path | None = None) -> dict[str, RunDir]:
    """The runs runs/book-<profile>.json names, or {} when it is missing or cannot be trusted: a name that is not a
    plain folder under runs/, a link, or a run whose config is not its arm's (two arms swapped, say)."""
    from moviegpt.core.settings import load_run_config
    from moviegpt.core.validate import PROFILE_NAME, read_small_json

    path = manifest(root)
    d = read_small_json(path)
    names = d.get("runs") if isinstance(d, dict) else None
    if not isinstance(names, dict) or set(names) != set(arms()):
        return {}
    want = requested(root)
    out = {}
    for arm, name in names.items():
        folder = path.parent / str(name)
        if not isinstance(name, str) or not PROFILE_NAME.match(name) or folder.is_symlink() or not folder.is_dir():
            return {}
        try:
            if (folder / "config.yaml").exists() and not same_arm(want[arm], load_run_config(folder)):
                return {}
        except UserError:
            return {}
        out[arm] = RunDir(folder)
    return out


def same_arm(asked, ran) -> bool:
    """Whether a run's own config is the one an arm asks for, on what resolving it for a machine leaves as it was:
    the films, their text, and the recipe's learning rate, schedule, batch, LoRA and budget."""
    t, u = asked.train, ran.train
    keys = ("lora", "learning_rate", "lr_scheduler", "batch_size", "grad_accum", "budget_minutes", "weight_decay")
    return asked.text == ran.text and asked.data == ran.data and all(getattr(t, k) == getattr(u, k) for k in keys)


def check(log=print, root: Path | None = None) -> dict[str, RunDir]:
    """What a build reads, checked before any chapter runs. This build's runs, where they are finished: their
    records parse and each is its arm's (a bad one is refused with one line naming the file and what to do). The
    references and the study: read as outside input; one that cannot be read is left out with one line here and a
    sentence on the page, never a failed build."""
    from moviegpt.book import study
    from moviegpt.core import reference

    root = project_root(root)
    found = pointed(root)
    for run in found.values():
        if run.finished:
            run.check_kinds()
            run.summary(), run.info()
    for line in reference.references(root).left_out:
        log(f"moviegpt: left out the reference run {line}")
    s = study.load(root)
    for line in s.left_out if s else []:
        log(f"moviegpt: left out from the study {line}")
    return found


def main_run(root: Path | None = None) -> RunDir:
    return runs(root)[MAIN]
