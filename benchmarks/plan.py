"""What the planner (train.budget_minutes, moviegpt.train.plan) costs and how well it predicts: its estimate's time (one
micro-batch's forward and backward pass before the first step), and the planned against the actual time of a run
it planned, on this machine (the estimate plus Trainer's train_runtime; target: within 20%), with the share of
that time that went to validation, checkpoints and the estimate.

    python benchmarks/plan.py [--profile demo] [--budget 3]

The plan cache for this config and machine is cleared first, so the run plans itself; the run goes to a
temporary folder. Writes benchmarks/results/plan.json.
"""

import argparse
import tempfile

import harness

from moviegpt import load_config
from moviegpt.train import finetune
from moviegpt.train import plan as planner


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--budget", type=float, default=3.0, help="minutes")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as runs:
        cfg = load_config(args.profile, [f"train.budget_minutes={args.budget}", f"runs_dir={runs}"])
        chosen = finetune.causal_lm.choose(cfg)
        (planner.PLANS / f"{planner.plan_key(chosen)}.json").unlink(missing_ok=True)
        run = finetune.run(cfg)
        plan, s, spent = run.info().plan, run.summary(), run.time_spent()
    result = {
        "benchmark": "plan",
        "machine": harness.machine(),
        "profile": args.profile,
        "budget_minutes": args.budget,
        "estimate_seconds": plan.estimate_seconds,
        "tokens_per_second_planned": plan.tokens_per_second,
        "tokens_per_second_run": s.tokens_per_second,
        "planned_seconds": plan.planned_seconds,
        "actual_seconds": plan.estimate_seconds + s.train_runtime_s,
        "steps": s.steps,
        "reason": plan.reason,
        "perplexity_before": s.base.perplexity,
        "perplexity_after": s.final.perplexity,
        **spent,
    }
    print(
        f"estimate {plan.estimate_seconds:.1f} s; planned {plan.planned_seconds:.0f} s, took "
        f"{result['actual_seconds']:.0f} s ({result['actual_seconds'] / plan.planned_seconds - 1:+.0%}, target within "
        f"20%); {plan.reason}"
    )
    print(
        f"validation {spent['validation_s']:.0f} s ({spent['passes']} passes), checkpoints {spent['save_s']:.0f} s, "
        f"estimate {spent['estimate_s']:.1f} s: {spent['overhead_share']:.1%} of train_runtime "
        f"{spent['train_runtime_s']:.0f} s"
    )
    print("wrote", harness.write_result("plan", result, args.out))


if __name__ == "__main__":
    main()
