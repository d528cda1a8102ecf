"""The reference study: recipes compared one change at a time, at equal tokens, over several training seeds.

A study is a YAML file (the shipped one: configs/studies/cpu.yaml) that names
    profile   the model, the films and the held-out scoring every arm shares (a profile: `moviegpt profiles`)
    films     training films (the first of the profile's seeded shuffle, data.seed fixed: every seed reads them)
    passes    the token budget: this many passes over those films' tokens, EOS included; every arm trains it
    seeds     training seeds: each arm is trained once per seed (data order, and LoRA's initialisation)
    curve     the fractions of a run's steps at which every validation film is scored (train.film_curve)
    common    settings every arm takes (--set syntax)
    arms      in order; each is the arm before it plus its own settings (`set`), or starts from a named arm (`from`)
`moviegpt study FILE` trains every arm at every seed, seed by seed, each run in a process of its own under
runs/study-<name>/, where it is cached and resumed as any run is: the same command makes the study and resumes it.
Each finished run's records (no weights) go to data/study/<name>/<arm>-seed<seed>/, and study.json there says
what the study is, which runs it holds, and the machines, dates and code versions that made them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import shutil
from pathlib import Path

from moviegpt.core import validate
from moviegpt.core.artifacts import code_version, describe_machine
from moviegpt.core.errors import UserError
from moviegpt.core.rundir import RunDir

FOLDER = Path("data") / "study"  # under the project: where the book finds the studies it shows
STAMP = "study.json"
KEYS = {"profile", "films", "passes", "seeds", "curve", "common", "arms", "about"}
COPIED = ("config.yaml", "summary.json", "base_eval.json")


@dataclasses.dataclass
class Arm:
    name: str
    says: str  # the change this arm makes, in words
    overrides: list[str]  # every setting of the arm (common ones included), --set syntax
    start: str | None = None  # the arm it changes (its `from:`, else the arm before it; None for the first)


@dataclasses.dataclass
class Spec:
    name: str
    about: str
    profile: str
    films: int
    passes: float
    seeds: list[int]
    curve: list[float]
    arms: list[Arm]


def load(path: Path) -> Spec:
    """A study file, checked: every arm's config is loaded here, so a bad setting stops the study before it trains."""
    from moviegpt.core.settings import load_config, read_yaml

    path = Path(path)
    d = read_yaml(path)
    validate.need(isinstance(d, dict), f"{path}: a study file is a mapping of settings")
    unknown = sorted(set(d) - KEYS)
    validate.need(not unknown, f"{path}: unknown study key(s) {', '.join(map(str, unknown))}; known: {sorted(KEYS)}")
    name = validate.profile_name(path.stem)
    films = validate.number(f"{path}: films", d.get("films"), integer=True, lo=8, hi=10**7)
    passes = validate.number(f"{path}: passes", d.get("passes", 2), lo=0.01, hi=1000)
    seeds = d.get("seeds")
    validate.need(
        isinstance(seeds, list) and seeds and len(set(map(str, seeds))) == len(seeds),
        f"{path}: seeds must be a list of different whole numbers",
    )
    seeds = [validate.number(f"{path}: seeds", s, integer=True, lo=0, hi=2**32 - 1) for s in seeds]
    curve = d.get("curve", [0, 0.25, 0.5, 0.75, 1])
    common = _overrides(d.get("common", []), f"{path}: common")
    raw = d.get("arms")
    validate.need(isinstance(raw, list) and raw, f"{path}: arms must be a list of arms")
    arms: list[Arm] = []
    for i, a in enumerate(raw):
        where = f"{path}: arm {i + 1}"
        validate.need(isinstance(a, dict) and isinstance(a.get("name"), str), f"{where} needs a name")
        validate.need(not set(a) - {"name", "says", "set", "from"}, f"{where}: keys are name, says, set and from")
        validate.profile_name(a["name"])
        validate.need(a["name"] not in {b.name for b in arms}, f"{where}: the name {a['name']} is taken")
        start = arms[-1].overrides if arms and "from" not in a else common
        if "from" in a:
            found = [b for b in arms if b.name == a["from"]]
            validate.need(bool(found), f"{where}: `from: {a['from']}` names no arm before it")
            start = found[0].overrides
        before = a.get("from") or (arms[-1].name if arms else None)
        arms.append(Arm(a["name"], str(a.get("says", "")), start + _overrides(a.get("set", []), where), before))
    spec = Spec(name, str(d.get("about", "")), str(d.get("profile", "")), films, passes, seeds, curve, arms)
    for arm in arms:
        load_config(spec.profile, settings(spec, arm, seeds[0]))  # every arm's settings checked before any trains
    return spec


def _overrides(items, where: str) -> list[str]:
    validate.need(
        isinstance(items, list) and all(isinstance(x, str) and "=" in x for x in items),
        f"{where}: settings are a list of key=value texts",
    )
    return list(items)


def settings(spec: Spec, arm: Arm, seed: int, steps: int | None = None) -> list[str]:
    """The overrides of one run of the study: the arm's, the study's films and curve, the seed and the steps."""
    from moviegpt.core.settings import load_config

    data_seed = load_config(spec.profile).seed  # every seed reads the profile's films
    return [
        *arm.overrides,
        f"data.max_train_rows={spec.films}",
        f"data.seed={data_seed}",
        "train.budget_minutes=null",
        f"train.film_curve={json.dumps(spec.curve)}",
        f"seed={seed}",
        f"runs_dir={runs_dir(spec)}",
    ] + ([f"train.max_steps={steps}"] if steps else [])


def runs_dir(spec: Spec) -> Path:
    from moviegpt.core.project import project_root

    return project_root() / "runs" / f"study-{spec.name}"


def budget(spec: Spec) -> dict:
    """The study's token budget (`passes` over the training films' tokens, each film whole and ended with its EOS)
    and, for each arm, the steps that train it: its tokens per step are the batch times its rows' real tokens
    (a padded film's own tokens, not its padding; a packed block's block_size)."""
    from moviegpt.core.settings import load_config
    from moviegpt.data.tokens import token_lengths
    from moviegpt.model.causal_lm import choose
    from moviegpt.train import finetune

    first = choose(load_config(spec.profile, settings(spec, spec.arms[0], spec.seeds[0])))
    prepared = finetune.prepare(first, model=False)
    film_tokens = int(token_lengths(prepared.splits.train, prepared.tok, first.text.template).sum())
    tokens = math.floor(spec.passes * film_tokens)
    arms = {}
    for arm in spec.arms:
        cfg = choose(load_config(spec.profile, settings(spec, arm, spec.seeds[0])))
        t = cfg.train
        if cfg.text.batching == "pad":
            ds = finetune.prepare(cfg, model=False).train_ds
            row = sum(map(sum, ds["attention_mask"])) / len(ds)
        else:
            row = cfg.text.block_size
        per_step = t.batch_size * t.grad_accum * row
        arms[arm.name] = {"steps": max(1, round(tokens / per_step)), "tokens_per_step": per_step}
    return {"films": len(prepared.splits.train), "film_tokens": film_tokens, "tokens": tokens, "arms": arms}


def make(path: Path, out: Path | None = None, log=print) -> Path:
    """Train (or reuse, or resume) every run of the study, seed by seed, and export each as it finishes."""
    from moviegpt.core.project import project_root
    from moviegpt.core.settings import load_config
    from moviegpt.train import finetune

    spec = load(path)
    out = Path(out) if out else project_root() / FOLDER / spec.name
    plan = budget(spec)
    log(
        f"Study {spec.name}: {len(spec.arms)} arms x {len(spec.seeds)} seeds, {plan['films']} films, "
        f"{plan['tokens']:,} tokens a run ({spec.passes:g} passes)"
    )
    total, done = len(spec.arms) * len(spec.seeds), 0
    for seed in spec.seeds:
        for arm in spec.arms:
            done += 1
            steps = plan["arms"][arm.name]["steps"]
            cfg = load_config(spec.profile, settings(spec, arm, seed, steps))
            log(f"== {done}/{total}: {arm.name}, seed {seed}, {steps} steps")
            finetune.run_apart(cfg)
            run = RunDir(Path(cfg.runs_dir) / finetune.resolve(cfg, lambda m: None)[0].run_name)
            export_run(run, out / f"{arm.name}-seed{seed}")
            write_stamp(out, spec, plan, path)
    log(f"Study {spec.name} complete: {out}")
    return out


def export_run(run: RunDir, dest: Path) -> None:
    """A finished run's records into dest (replaced whole): config, summary, base evaluation, and its metrics log
    less the lines only a live run needs."""
    validate.need(run.finished, f"{run.path} is not finished; rerun the study to resume it")
    tmp = dest.with_name(f".{dest.name}.exporting")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name in COPIED:
        if (run / name).is_file():
            shutil.copyfile(run / name, tmp / name)
    kept = [r for r in run.metrics() if r["kind"] in ("train", "films", "summary")]
    validate.write_atomic(tmp / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def write_stamp(out: Path, spec: Spec, plan: dict, path: Path) -> None:
    """study.json: the study's design, and each exported run with the machine, date and code that made it."""
    from moviegpt.core.settings import load_run_config

    runs = []
    for arm in spec.arms:
        for seed in spec.seeds:
            folder = out / f"{arm.name}-seed{seed}"
            if not (folder / "summary.json").is_file():
                continue
            run = RunDir(folder)
            info = run.info()
            finished = datetime.datetime.fromtimestamp((folder / "summary.json").stat().st_mtime, datetime.timezone.utc)
            runs.append(
                {
                    "arm": arm.name,
                    "seed": seed,
                    "folder": folder.name,
                    "run": load_run_config(folder).run_name,
                    "machine": describe_machine(info.hardware),
                    "precision": info.precision,
                    "finished": finished.strftime("%Y-%m-%d %H:%M UTC"),
                    "code": info.code,
                }
            )
    record = {
        "name": spec.name,
        "about": spec.about,
        "made_with": f"moviegpt study {path.name} (configs/studies/)",
        "profile": spec.profile,
        "passes": spec.passes,
        "seeds": spec.seeds,
        "curve": spec.curve,
        "budget": plan,
        "arms": [{"name": a.name, "says": a.says, "from": a.start, "settings": a.overrides} for a in spec.arms],
        "runs": runs,
        "updated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "updated_by": code_version(),
    }
    validate.write_atomic(out / STAMP, json.dumps(record, indent=1))


def studies(root: Path) -> dict[str, Path]:
    """The studies shipped with the project (FOLDER), by name."""
    folder = Path(root) / FOLDER
    return {p.name: p for p in sorted(folder.glob("*")) if (p / STAMP).is_file()}


def path_of(name_or_path: str) -> Path:
    """A study by name (configs/studies/NAME.yaml) or a YAML path."""
    from moviegpt.core.project import project_root

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = project_root() / "configs" / "studies" / f"{validate.profile_name(name_or_path)}.yaml"
    if not path.is_file():
        raise UserError(f"no study file {path}; the shipped studies are in configs/studies/")
    return path
