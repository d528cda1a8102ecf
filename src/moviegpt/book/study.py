"""The reference study as the book reads it: the runs `moviegpt study` exported to data/study/<name>/ (made by
moviegpt.train.study), checked as outside input, and what they say across seeds and across films.

Perplexity is split by token type (moviegpt.data.tokens.TOKEN_TYPES) into three groups a reader can tell apart:
the overview's own tokens, the template and the title (with any other field), and the end-of-text token. The
headline of a comparison is the overview's tokens (OVERVIEW); every group can be asked for by name.

Across seeds, an arm's number is the geometric mean of its seeds' perplexities with Student's t interval over the
seeds (stats.across_seeds); a comparison of two arms pairs them seed by seed. Across films, the seeds' losses are
pooled film by film and the films are resampled (stats.perplexity, stats.perplexity_ratio). Importing this module
loads no model library.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from moviegpt.core import stats
from moviegpt.core.artifacts import HeldOut, Summary, from_dict
from moviegpt.core.errors import UserError
from moviegpt.core.settings import read_yaml

FOLDER = Path("data") / "study"
STAMP = "study.json"
GROUPS = {  # what a reader can tell apart, from the token types each film's loss is split into
    "overview": ("overview",),
    "template and title": ("template", "title", "field"),
    "end-of-text": ("eos",),
    "all tokens": ("template", "title", "field", "overview", "eos"),
}
OVERVIEW = "overview"
MAX_BYTES = 8 << 20  # a study run's largest file (its metrics log) is well under this
FILES = ("config.yaml", "summary.json", "metrics.jsonl")


@dataclass
class Run:
    arm: str
    seed: int
    folder: str
    machine: str
    model: str  # what ran, as its config.yaml records it
    precision: str
    steps: int
    tokens: int
    seconds: float
    final: HeldOut  # the test films, after training
    base: HeldOut  # the test films, before
    curve: list[dict]  # the validation films at each point: step, tokens_seen, train_seconds, film_nll, type_nll, ...


@dataclass
class Study:
    name: str
    about: str
    path: Path
    record: dict
    arms: list[dict]  # name and says, in order
    seeds: list[int]
    runs: dict[tuple[str, int], Run]
    left_out: list[str] = field(default_factory=list)  # one line for each folder or run that could not be read

    def arm_runs(self, arm: str) -> list[Run]:
        return [self.runs[(arm, s)] for s in self.seeds if (arm, s) in self.runs]

    @property
    def complete(self) -> bool:
        return all((a["name"], s) in self.runs for a in self.arms for s in self.seeds)


# ------------------------------------------------------------------ reading, as outside input


def _read(folder: Path, name: str) -> str:
    """A regular file inside `folder` (no link, nothing larger than MAX_BYTES), as text."""
    p = folder / name
    if p.is_symlink() or not p.is_file():
        raise ValueError(f"{name} is missing or not a regular file")
    if p.resolve().parent != folder.resolve():
        raise ValueError(f"{name} leaves its folder")
    if p.stat().st_size > MAX_BYTES:
        raise ValueError(f"{name} is larger than {MAX_BYTES >> 20} MiB")
    return p.read_text(errors="strict")


def _run(folder: Path, arm: str, seed: int, films: int | None) -> Run:
    summary = from_dict(Summary, json.loads(_read(folder, "summary.json")))
    config = read_yaml(folder / "config.yaml") if not (folder / "config.yaml").is_symlink() else None
    if not isinstance(config, dict) or not isinstance(config.get("resolved"), dict):
        raise ValueError("config.yaml has no record of what ran")
    rows = []
    for line in _read(folder, "metrics.jsonl").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and r.get("kind") == "films":
            rows.append(r)
    if len(rows) < 2:
        raise ValueError("its metrics log holds fewer than two points of the validation curve")
    n = len(rows[0]["film_nll"])
    for r in rows:
        if not (isinstance(r.get("step"), int) and isinstance(r.get("tokens_seen"), int)):
            raise ValueError("a curve point has no step or token count")
        if not isinstance(r.get("train_seconds"), (int, float)):
            raise ValueError("a curve point has no training seconds")
        lists = [r["film_nll"], r["film_tokens"], *_groups(r["type_nll"]), *_groups(r["type_tokens"])]
        if not all(_numbers(v, n) for v in lists):
            raise ValueError("its curve points do not score the same films by token type")
    for h in (summary.final, summary.base):
        if h.film_nll is None or h.type_nll is None or (films is not None and len(h.film_nll) != films):
            raise ValueError("its held-out record has no per-film losses by token type for the study's test films")
        m = len(h.film_nll)
        lists = [h.film_nll, h.film_tokens, *_groups(h.type_nll), *_groups(h.type_tokens or {})]
        if not all(_numbers(v, m) for v in lists):
            raise ValueError("its held-out record's per-film losses are not numbers for every film and token type")
    hw = config["resolved"].get("hardware") or {}
    from moviegpt.core.artifacts import describe_machine

    return Run(
        arm=arm,
        seed=seed,
        folder=folder.name,
        machine=describe_machine(hw) if isinstance(hw, dict) else "unknown",
        model=str(config["resolved"].get("model", "")),
        precision=str(config["resolved"].get("precision", "")),
        steps=summary.steps,
        tokens=summary.tokens_seen,
        seconds=summary.train_runtime_s,
        final=summary.final,
        base=summary.base,
        curve=sorted(rows, key=lambda r: r["step"]),
    )


def _groups(by_type) -> list:
    """The per-type lists of a record, each of the token types the book groups (a missing one is not a list)."""
    if not isinstance(by_type, dict):
        return [None]
    return [by_type.get(k) for k in {k for g in GROUPS.values() for k in g}]


def _numbers(values, n: int) -> bool:
    """A list of n finite numbers."""
    return (
        isinstance(values, list)
        and len(values) == n
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in values)
    )


def load(root: Path, name: str | None = None) -> Study | None:
    """The study under root/FOLDER (the one named, or the only one there), every run checked; None when there is none.
    A run that cannot be read is left out with a line in `left_out`, never a failed build."""
    folder = Path(root) / FOLDER
    found = sorted(p for p in folder.glob("*") if p.is_dir() and not p.is_symlink() and (p / STAMP).is_file())
    if name is not None:
        found = [p for p in found if p.name == name]
    if not found:
        return None
    path = found[0]
    try:
        record = json.loads(_read(path, STAMP))
        arms = [
            {
                "name": str(a["name"]),
                "says": str(a.get("says", "")),
                "from": a.get("from"),
                "settings": [str(x) for x in a.get("settings", [])],
            }
            for a in record["arms"]
        ]
        seeds = [int(s) for s in record["seeds"]]
        listed = [(str(r["arm"]), int(r["seed"]), str(r["folder"])) for r in record["runs"]]
        record |= {  # what the book's sentences read besides the runs, as the types they need
            "budget": {k: int(v) for k, v in dict(record.get("budget", {})).items() if k in ("films", "tokens")},
            "passes": float(record.get("passes", 0)),
            "made_with": str(record.get("made_with", "moviegpt study")),
            "runs": [
                r | {"code": _code(r.get("code")), "finished": str(r.get("finished", ""))} for r in record["runs"]
            ],
        }
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as e:
        return Study(path.name, "", path, {}, [], [], {}, [f"{STAMP}: {type(e).__name__}: {e}"[:300]])
    study = Study(path.name, str(record.get("about", "")), path, record, arms, seeds, {})
    films = None
    for arm, seed, sub in listed:
        run_folder = path / sub
        try:
            if run_folder.is_symlink() or run_folder.resolve().parent != path.resolve():
                raise ValueError("the folder is a link or leaves the study")
            run = _run(run_folder, arm, seed, films)
            films = films or len(run.final.film_nll)
            study.runs[(arm, seed)] = run
        except (OSError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, UserError) as e:
            study.left_out.append(f"{sub}: {e}"[:300])
    return study


def _code(code) -> dict[str, str]:
    """A run's code stamp (moviegpt.core.artifacts.code_version): its version and source hash, as text."""
    if code is None:
        return {}
    if not isinstance(code, dict):
        raise TypeError(f"a run's code is {type(code).__name__}, not an object")
    return {k: str(code[k]) for k in ("version", "source") if k in code}


# ------------------------------------------------------------------ numbers


def _group(nll: dict, tokens: dict, group: str) -> tuple[np.ndarray, np.ndarray]:
    kinds = GROUPS[group]
    return sum(np.asarray(nll[k], float) for k in kinds), sum(np.asarray(tokens[k], float) for k in kinds)


def held_out_group(h: HeldOut, group: str) -> tuple[np.ndarray, np.ndarray]:
    """Per test film, the summed NLL and target count of one group of tokens."""
    return _group(h.type_nll, h.type_tokens, group)


def point_group(row: dict, group: str) -> tuple[np.ndarray, np.ndarray]:
    return _group(row["type_nll"], row["type_tokens"], group)


def ppl(nll, n) -> float:
    return math.exp(float(np.sum(nll)) / float(np.sum(n)))


def final(study: Study, arm: str, group: str = OVERVIEW) -> dict:
    """One arm's held-out perplexity on the test films: per seed, across seeds (t interval) and across films (the
    seeds' losses pooled film by film, films resampled)."""
    runs = study.arm_runs(arm)
    per_seed = [ppl(*held_out_group(r.final, group)) for r in runs]
    pooled = [held_out_group(r.final, group) for r in runs]
    nll, n = sum(p[0] for p in pooled), sum(p[1] for p in pooled)
    return {
        "per_seed": per_seed,
        "seeds": stats.across_seeds(np.log(per_seed)),
        "films": stats.perplexity(nll, n),
    }


def base(study: Study, group: str = OVERVIEW) -> stats.Interval:
    """The pretrained model on the test films (the same for every run: the first run's record)."""
    h = next(iter(study.runs.values())).base
    return stats.perplexity(*held_out_group(h, group))


def compare(study: Study, a: str, b: str, group: str = OVERVIEW) -> dict:
    """Arm b's perplexity over arm a's on the test films (below 1: b is better): paired seed by seed (t interval
    over the seeds) and film by film (the seeds pooled, films resampled in pairs)."""
    seeds = [s for s in study.seeds if (a, s) in study.runs and (b, s) in study.runs]
    ra = [held_out_group(study.runs[(a, s)].final, group) for s in seeds]
    rb = [held_out_group(study.runs[(b, s)].final, group) for s in seeds]
    logs = [math.log(ppl(*y) / ppl(*x)) for x, y in zip(ra, rb)]
    na, ta = sum(x[0] for x in ra), sum(x[1] for x in ra)
    nb, tb = sum(y[0] for y in rb), sum(y[1] for y in rb)
    return {
        "seeds": stats.across_seeds(logs),
        "films": stats.perplexity_ratio(na, ta, nb, tb),
        "n_seeds": len(seeds),
        "per_seed": [math.exp(x) for x in logs],
    }


def steps_table(study: Study, group: str = OVERVIEW) -> pd.DataFrame:
    """Each change, one at a time: the arm it starts from, the ratio across seeds and across films."""
    rows = []
    names = [a["name"] for a in study.arms]
    for i, arm in enumerate(study.arms):
        start = _from(study, arm["name"]) if i else None
        if start is None or start not in names:
            continue
        if not any((start, s) in study.runs and (arm["name"], s) in study.runs for s in study.seeds):
            continue  # no seed trained both yet
        c = compare(study, start, arm["name"], group)
        rows.append(
            {"change": arm["says"], "from": start, "to": arm["name"], "settings": changed(study, arm["name"]), **c}
        )
    return pd.DataFrame(rows)


def settings(arm: dict) -> dict[str, str]:
    """An arm's settings as study.json lists them (the study's common ones, then each arm's in turn), the last
    value of each key."""
    return dict(x.split("=", 1) for x in arm.get("settings", []) if "=" in x)


def changed(study: Study, arm: str) -> list[str]:
    """The settings in which an arm differs from the arm it changes (empty for a study stamped without settings)."""
    start = _from(study, arm)
    by_name = {a["name"]: settings(a) for a in study.arms}
    if start is None or not by_name.get(arm) or not by_name.get(start):
        return []
    a, b = by_name[start], by_name[arm]
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _from(study: Study, arm: str) -> str | None:
    """The arm this one changes (study.json's `from`; a study stamped before it was recorded: the arm before it)."""
    names = [a["name"] for a in study.arms]
    i = names.index(arm)
    return next((a.get("from") for a in study.arms if a["name"] == arm and a.get("from")), names[i - 1] if i else None)


def curve(study: Study, arm: str, group: str = OVERVIEW) -> pd.DataFrame:
    """An arm's validation curve: at each point, the tokens and seconds trained (mean over seeds), each seed's
    perplexity of the validation films (one film at a time), their geometric mean and their range."""
    runs = study.arm_runs(arm)
    points = min(len(r.curve) for r in runs)
    rows = []
    for i in range(points):
        at = [r.curve[i] for r in runs]
        seeds = [ppl(*point_group(p, group)) for p in at]
        rows.append(
            {
                "step": at[0]["step"],
                "tokens": float(np.mean([p["tokens_seen"] for p in at])),
                "seconds": float(np.mean([p["train_seconds"] for p in at])),
                "perplexity": float(np.exp(np.mean(np.log(seeds)))),
                "low": min(seeds),
                "high": max(seeds),
                "per_seed": seeds,
            }
        )
    return pd.DataFrame(rows)


def plateau(study: Study, arm: str, group: str = OVERVIEW, share: float = 0.9) -> dict:
    """When an arm's gain arrives: the first curve points by which the validation perplexity has made half and `share`
    of its whole fall (from step 0 to its lowest point), and whether the second half of the run (the second pass)
    helped: the last point over the half-way point, per seed, with its interval across seeds."""
    c = curve(study, arm, group)
    start, best = c["perplexity"].iloc[0], c["perplexity"].min()
    reached = c[c["perplexity"] <= start - share * (start - best)].iloc[0]
    half_way = c[c["perplexity"] <= start - 0.5 * (start - best)].iloc[0]
    half = (c["tokens"] - c["tokens"].iloc[-1] / 2).abs().idxmin()
    second = stats.across_seeds([math.log(e / h) for e, h in zip(c["per_seed"].iloc[-1], c["per_seed"].iloc[half])])
    return {
        "start": float(start),
        "best": float(best),
        "best_tokens": float(c.loc[c["perplexity"].idxmin(), "tokens"]),
        "reached_tokens": float(reached["tokens"]),
        "reached_share": float(reached["tokens"] / c["tokens"].iloc[-1]),
        "reached_ppl": float(reached["perplexity"]),
        "half_fall_tokens": float(half_way["tokens"]),
        "half_fall_share": float(half_way["tokens"] / c["tokens"].iloc[-1]),
        "half_ppl": float(c["perplexity"].iloc[half]),
        "end_ppl": float(c["perplexity"].iloc[-1]),
        "second_pass": second,
    }


def at_tokens(study: Study, arm: str, tokens: float, group: str = OVERVIEW) -> dict | None:
    """The arm's validation curve at a token count (each seed's perplexity interpolated linearly in log tokens
    between the two points around it): its seed range there. None outside the curve."""
    c = curve(study, arm, group)
    x = np.log(np.maximum(c["tokens"].to_numpy(), 1.0))
    if not c["tokens"].iloc[1] <= tokens <= c["tokens"].iloc[-1]:
        return None
    seeds = np.array(c["per_seed"].tolist())  # points x seeds
    at = [float(np.exp(np.interp(math.log(tokens), x, np.log(seeds[:, j])))) for j in range(seeds.shape[1])]
    return {"low": min(at), "high": max(at), "mean": float(np.exp(np.mean(np.log(at)))), "per_seed": at}


def type_table(study: Study) -> pd.DataFrame:
    """Held-out perplexity of each token group, for the pretrained model and each arm (geometric mean over seeds,
    with the seeds' range)."""
    rows = []
    first = next(iter(study.runs.values()))
    rows.append(
        {"model": "pretrained (no training)", **{g: f"{ppl(*held_out_group(first.base, g)):,.2f}" for g in GROUPS}}
    )
    for a in study.arms:
        if not study.arm_runs(a["name"]):
            continue
        row = {"model": a["name"]}
        for g in GROUPS:
            f = final(study, a["name"], g)["per_seed"]
            row[g] = f"{np.exp(np.mean(np.log(f))):,.2f} ({min(f):,.2f}–{max(f):,.2f})"
        rows.append(row)
    return pd.DataFrame(rows)


def token_counts(study: Study) -> dict:
    """How many test tokens each group holds (the same for every run: the films and the template are fixed)."""
    first = next(iter(study.runs.values()))
    return {g: int(held_out_group(first.final, g)[1].sum()) for g in GROUPS}
