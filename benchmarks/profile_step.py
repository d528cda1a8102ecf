"""Where a training step's time goes: torch.profiler over a few Trainer steps of one recipe.

    python benchmarks/profile_step.py [--recipe ours] [--steps 4] [--top 15]

Recipes are those of train_throughput.yaml ("original" is its base). Prints the operators with
the most self CPU time and writes benchmarks/results/profile-<recipe>.json.
"""
import argparse
import tempfile
from pathlib import Path

import yaml
from torch.profiler import ProfilerActivity, profile

import harness
from moviegpt import data, load_config, tokens

HERE = Path(__file__).parent


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="ours")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--set", dest="extra", action="append", default=[])
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    recipes = yaml.safe_load((HERE / "train_throughput.yaml").read_text())
    over = recipes["base"] + ([] if args.recipe == "original" else recipes["variants"][args.recipe]) + args.extra
    cfg = load_config("smoke", over)
    tok, _ = tokens.load_tokenizer(cfg.model.tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        s = harness.setup(args.recipe, cfg, data.load_splits(cfg.data, cfg.seed), tok, Path(tmp))
        harness.window(s, warmup_steps=1, steps=1)  # warm-up outside the profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            w = harness.window(s, warmup_steps=1, steps=args.steps)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [{"op": e.key, "calls": e.count, "self_ms": e.self_cpu_time_total / 1e3,
             "share": e.self_cpu_time_total / total} for e in events[: args.top]]
    print(f"{args.recipe}: {w['tokens_per_s']:.0f} tokens/s under the profiler")
    print(harness.table(rows, ["op", "calls", "self_ms", "share"]))
    harness.write_result(f"profile-{args.recipe.replace(' ', '').replace('+', 'plus-')}",
                       {"benchmark": "profile_step", "recipe": args.recipe, "machine": harness.machine(),
                        "tokens_per_s": w["tokens_per_s"], "top": rows}, args.out)


if __name__ == "__main__":
    main()
