"""What the planner (train.budget_minutes, moviegpt.plan) costs and how well it predicts: its estimate's time
(a forward pass before the first step; the steps it measures in the run are training), the planned against the
actual training time of a run it planned, on this machine, and the share of that run's training time that
went to validation, checkpoints and the estimate (budget_share.py; target <= 15%).

    python benchmarks/plan.py [--profile demo] [--budget 3]

The plan cache for this config and machine is cleared first, so the run plans itself; the run goes to a
temporary folder. Writes benchmarks/results/plan.json.
"""

import argparse
import tempfile

import harness
from moviegpt import load_config, plan as planner, train


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--budget", type=float, default=3.0, help="minutes")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as runs:
        cfg = load_config(args.profile, [f"train.budget_minutes={args.budget}", f"runs_dir={runs}"])
        chosen = train.model_stage.choose(cfg)
        (planner.PLANS / f"{planner.plan_key(chosen)}.json").unlink(missing_ok=True)
        run = train.run(cfg)
        plan, s, spent = run.info().plan, run.summary(), run.time_spent()
    result = {
        "benchmark": "plan",
        "machine": harness.machine(),
        "profile": args.profile,
        "budget_minutes": args.budget,
        "probe_seconds": plan.probe_seconds,
        "tokens_per_second_planned": plan.tokens_per_second,
        "tokens_per_second_run": s.tokens_per_second,
        "planned_seconds": plan.planned_seconds,
        "actual_seconds": s.train_runtime_s,
        "steps": s.steps,
        "reason": plan.reason,
        "perplexity_before": s.base.perplexity,
        "perplexity_after": s.final.perplexity,
        **spent,
    }
    print(
        f"estimate {plan.probe_seconds:.1f} s; planned {plan.planned_seconds:.0f} s, trained {s.train_runtime_s:.0f} s "
        f"({s.train_runtime_s / plan.planned_seconds - 1:+.0%}); {plan.reason}"
    )
    print(
        f"validation {spent['validation_s']:.0f} s ({spent['passes']} passes), checkpoints {spent['save_s']:.0f} s, "
        f"estimate {spent['probe_s']:.1f} s: {spent['overhead_share']:.1%} of train_runtime "
        f"{spent['train_runtime_s']:.0f} s"
        " (target <= 15%)"
    )
    print("wrote", harness.write_result("plan", result, args.out))


if __name__ == "__main__":
    main()
