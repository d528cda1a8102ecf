"""Where a training step's time goes: torch.profiler over a few Trainer steps of one recipe.

    python benchmarks/profile_step.py [--recipe ours] [--steps 4] [--top 15] [--recipes FILE] [--replica-rows N]

Recipes are those of train_throughput.yaml (or --recipes; "original" is its base). Prints the operators
with the most self time (CPU time, or on a GPU the time its kernels ran) and writes
benchmarks/results/profile-<recipe>.json. On a GPU it also reports how much of the profiled window the GPU
was busy: well below 1 means the GPU waited for the host (data loading, launches, synchronisation).
"""

import argparse
import tempfile
from pathlib import Path

import harness
import torch
import yaml
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from moviegpt import load_config
from moviegpt.data import movies
from moviegpt.model.tokenizer import load_tokenizer

HERE = Path(__file__).parent


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="ours")
    p.add_argument("--recipes", default=str(HERE / "train_throughput.yaml"))
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--set", dest="extra", action="append", default=[])
    p.add_argument("--replica-rows", type=int, default=None, help="profile on this many bundled films, tiled")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    recipes = yaml.safe_load(Path(args.recipes).read_text())
    films = harness.replica_overrides(args.replica_rows) if args.replica_rows else []
    over = (
        recipes["base"] + films + args.extra + ([] if args.recipe == "original" else recipes["variants"][args.recipe])
    )
    cfg = load_config("smoke", over)
    tok, _ = load_tokenizer(cfg.model.tokenizer)
    gpu = torch.cuda.is_available()
    self_time = "self_device_time_total" if gpu else "self_cpu_time_total"  # microseconds
    with tempfile.TemporaryDirectory() as tmp:
        s = harness.setup(args.recipe, cfg, movies.load_splits(cfg.data, cfg.seed), tok, Path(tmp))
        harness.window(s, warmup_steps=1, steps=1)  # warm-up (and compilation) outside the profile
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])) as prof:
            w = harness.window(s, warmup_steps=1, steps=args.steps)
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, self_time), reverse=True)
    # on a GPU an operator (aten::mm) and the kernels it launched both carry the kernels' time: sum kernels only
    counted = [e for e in events if not gpu or e.device_type == DeviceType.CUDA]
    total = sum(getattr(e, self_time) for e in counted)
    rows = [
        {
            "op": e.key[:80],
            "calls": e.count,
            "self_ms": getattr(e, self_time) / 1e3,
            "share": getattr(e, self_time) / total,
        }
        for e in events[: args.top]
    ]
    per_step_ms = total / 1e3 / (args.steps + 1)  # the profile spans the warm-up step and the timed ones
    print(
        f"{args.recipe}: {w['tokens_per_s']:.0f} tokens/s under the profiler; "
        + (f"GPU busy {per_step_ms:.1f} ms of {w['seconds'] / args.steps * 1e3:.1f} ms a step" if gpu else "")
    )
    print(harness.table(rows, ["op", "calls", "self_ms", "share"]))
    harness.write_result(
        f"profile-{args.recipe.replace(' ', '').replace('+', 'plus-').replace(',', '')}",
        {
            "benchmark": "profile_step",
            "recipe": args.recipe,
            "machine": harness.machine(),
            "time": "gpu kernels" if gpu else "cpu",
            "tokens_per_s": w["tokens_per_s"],
            "step_ms": w["seconds"] / args.steps * 1e3,
            "busy_ms_per_step": per_step_ms,
            "top": rows,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
