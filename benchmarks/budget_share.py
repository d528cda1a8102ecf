"""How much of a planned run's training time went to optimizer steps: validation, checkpoints and the planner's
estimate as a share of `train_runtime` (moviegpt.core.rundir.RunDir.time_spent, from the run's metrics.jsonl). A
measurement, not a target: the planner's target is planned against actual time within 20% (benchmarks/plan.py).

    python benchmarks/budget_share.py runs/demo-*          # finished runs, e.g. the book's
    python benchmarks/budget_share.py --train demo          # plan and train one run of a profile first

Writes benchmarks/results/budget_share.json.
"""

import argparse
import tempfile
from pathlib import Path

import harness

from moviegpt import load_config
from moviegpt.core.rundir import RunDir
from moviegpt.train import finetune


def rows(runs: list[RunDir]) -> list[dict]:
    out = []
    for run in runs:
        t = run.time_spent()
        plan = run.info().plan
        out.append(
            {
                "run": run.name,
                "budget_min": plan.budget_minutes if plan else None,
                **t,
                "steps": run.summary().steps,
            }
        )
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", help="finished run directories")
    p.add_argument("--train", metavar="PROFILE", help="plan and train a run of this profile in a temporary folder")
    p.add_argument("--set", dest="extra", action="append", default=[], help="an override for --train")
    p.add_argument("--out", default=None)
    p.add_argument("--name", default="budget_share")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [RunDir(Path(r)) for r in args.runs if RunDir(Path(r)).finished]
        if args.train:
            runs.append(finetune.run(load_config(args.train, [f"runs_dir={tmp}", *args.extra])))
        if not runs:
            p.error("no finished run given (and no --train)")
        result = rows(runs)
    print(
        harness.table(
            result,
            [
                "run",
                "budget_min",
                "train_runtime_s",
                "validation_s",
                "passes",
                "save_s",
                "samples_s",
                "estimate_s",
                "overhead_share",
                "met",
            ],
        )
    )
    print(
        "wrote",
        harness.write_result(
            args.name,
            {"benchmark": "budget_share", "machine": harness.machine(), "runs": result},
            args.out,
        ),
    )


if __name__ == "__main__":
    main()
