"""What the first-step warm-up costs or buys in held-out quality: a finished run against the same run trained
again with transformers' own warm-up, whose first step trains at a learning rate of 0 (moviegpt.train.schedule
`first_step_warmup` undone). Same config, plan, films, seed and step count; only the warm-up differs. Held-out
perplexity of each on the same test films, and their paired ratio with a 95% bootstrap interval (moviegpt.core.stats).

The plan's other cuts need no such run: fewer validation passes and no mid-run checkpoint leave the weights bit for
bit as they were (tests/train/test_finetune.py::test_what_the_plan_cuts_changes_the_time_not_the_weights).

    python benchmarks/warmup_quality.py runs/demo-XXXXXXXX        # e.g. the book's main run

Writes benchmarks/results/warmup_quality.json.
"""

import argparse
import dataclasses
import tempfile
from pathlib import Path

import harness

from moviegpt.core import stats
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import load_run_config
from moviegpt.train import finetune, schedule


def transformers_warmup(schedule, warmup: int):
    return schedule  # step 1 at schedule(0) = 0, as transformers plans it


def row(name: str, run: RunDir) -> dict:
    s = run.summary()
    return {
        "warm-up": name,
        "run": run.name,
        "steps": s.steps,
        "first_lr": next(m["learning_rate"] for m in run.metrics() if m["kind"] == "train" and "learning_rate" in m),
        "perplexity": s.final.perplexity,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a finished run directory (a planned one: its plan is reused, nothing is probed)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    ours = RunDir(Path(args.run))
    if not ours.finished:
        p.error(f"{args.run} is not a finished run")
    cfg = load_run_config(ours.path)
    with tempfile.TemporaryDirectory() as tmp:
        schedule.first_step_warmup = transformers_warmup  # the one change: Trainer's own warm-up
        theirs = RunDir(finetune.run(dataclasses.replace(cfg, runs_dir=tmp)))
        rows = [row("first step trains (moviegpt)", ours), row("step 1 at lr 0 (transformers)", theirs)]
        a, b = ours.summary().final, theirs.summary().final
        ratio = stats.perplexity_ratio(a.film_nll, a.film_tokens, b.film_nll, b.film_tokens)
    print(harness.table(rows, ["warm-up", "steps", "first_lr", "perplexity"]))
    print(f"transformers' warm-up / moviegpt's, held-out perplexity: {ratio:.3f} (paired, {ratio.n} films)")
    result = {
        "benchmark": "warmup_quality",
        "machine": harness.machine(),
        "runs": rows,
        "ratio": dataclasses.asdict(ratio),
    }
    print("wrote", harness.write_result("warmup_quality", result, args.out))


if __name__ == "__main__":
    main()
