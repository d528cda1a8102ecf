"""Training throughput of the report's recipe and ours, each change alone, MFU, and time to quality.

    python benchmarks/train_throughput.py [--rounds 5] [--skip-quality] [--recipes FILE] [--only NAME ...]

GPT-2 124M, the original against ours only (the figures in results/train_throughput_gpt2-124m.json):

    python benchmarks/train_throughput.py --only ours --skip-quality --rounds 3 --name train_throughput_gpt2-124m \
        --set model.n_layer=12 --set model.n_embd=768 --set model.n_head=12 --set model.n_positions=1024

A recipe whose precision this machine does not compute natively (bf16 on a CPU without AVX-512 bf16
or AMX) is skipped and listed under "skipped": emulated bf16 is hundreds of times slower and nobody
trains with it. "ours" uses precision=auto, as configs/full.yaml does.

Every recipe in train_throughput.yaml trains the same seeded model on the same films through
`moviegpt.train.finetune.training_args` and Trainer. Rounds are interleaved (each round runs every recipe
once) and each recipe's figure is the median over rounds of a window after two warm-up steps.
Useful tokens are positions with a real next-token target (padding excluded); MFU is the model's
training FLOPs per second over the peak matmul rate measured in this run for the precision used.
Prints tables and writes benchmarks/results/train_throughput.json.
"""

import argparse
import tempfile
from pathlib import Path

import harness
import yaml

from moviegpt import load_config
from moviegpt.core.hardware import cpu_capability, describe, resolve_precision
from moviegpt.core.mfu import RULE
from moviegpt.data import movies, tokens
from moviegpt.model.tokenizer import load_tokenizer

HERE = Path(__file__).parent


def build(recipes: dict, names: list[str], group: str, out: Path, extra: list[str], skipped: dict):
    """A Setup per recipe whose precision is native here; the others go into `skipped` with the reason."""
    base = recipes["base"] + extra
    cfgs = {"original": load_config("smoke", base + recipes[group].get("original", []))}
    cfgs.update({n: load_config("smoke", base + recipes[group][n]) for n in names if n != "original"})
    for n, c in list(cfgs.items()):
        precision, _ = resolve_precision(c.train.precision)
        if not harness.native(precision):
            skipped[n] = f"{precision} is not native on this machine ({cpu_capability()})"
            del cfgs[n]
    first = cfgs["original"]
    tok, _ = load_tokenizer(first.model.tokenizer)
    splits = movies.load_splits(first.data, first.seed)
    return [harness.setup(n, c, splits, tok, out) for n, c in cfgs.items()], splits, tok, first


def measure_throughput(args, recipes: dict, names: list[str], tmp: Path, films: list[str], result: dict) -> None:
    """Interleaved timed windows of each recipe (harness.throughput); the result is written at once, so a time
    to quality cut short loses nothing."""
    setups, _, _, _ = build(recipes, names, "variants", tmp, args.extra + films, result["skipped"])
    rows, peaks = harness.throughput(
        setups, rounds=args.rounds, window_tokens=args.window_tokens, peak_size=args.peak_size, min_steps=args.min_steps
    )
    result.update(throughput=rows, peak_flops=peaks, parameters=sum(p.numel() for p in setups[0].model.parameters()))
    harness.write_result(args.name, result, args.out)
    print(f"machine: {describe(result['machine'])}; skipped: {result['skipped'] or 'none'}")
    print("peak matmul: " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peaks.items()))
    print(f"mfu: tokens/s x ({RULE}, llm.c) / the peak matmul above")
    print(harness.table(rows, ["recipe", "useful_tokens_per_s", "tokens_per_s", "useful_share", "mfu", "x_original"]))


def measure_quality(args, recipes: dict, tmp: Path, result: dict) -> None:
    """Each quality recipe trains from the same initialisation until the original's final held-out loss."""
    setups, splits, tok, first = build(recipes, list(recipes["quality"]), "quality", tmp, args.extra, result["skipped"])
    val = tokens.tokenize(splits.validation, tok, first.text, batching="pad", desc="validation films")
    quality = harness.time_to_quality(setups, val, stop_at_target=not args.full_curves)
    result["time_to_quality"] = quality
    cols = ["recipe", "steps", "train_seconds", "final_val_loss", "target_val_loss", "seconds_to_target"]
    print(harness.table(quality, cols))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", default=str(HERE / "train_throughput.yaml"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--window-tokens", type=int, default=6144, help="tokens per timed window (at least --min-steps steps)"
    )
    p.add_argument("--skip-quality", action="store_true", help="throughput only")
    p.add_argument("--skip-throughput", action="store_true", help="time to quality only")
    p.add_argument(
        "--full-curves",
        action="store_true",
        help="time to quality: every recipe trains its whole budget (default: stop at the target)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help="a variant to run beside the original, by its full name (repeat for several)",
    )
    p.add_argument("--all", action="store_true", help="every variant, not only the recipes' default list")
    p.add_argument("--min-steps", type=int, default=3, help="at least this many optimizer steps per timed window")
    p.add_argument("--peak-size", type=int, default=2048, help="n of the n x n matmul whose rate is the MFU peak")
    p.add_argument("--set", dest="extra", action="append", default=[], help="an override for every recipe")
    p.add_argument(
        "--replica-rows",
        type=int,
        default=None,
        help="throughput on this many bundled films, tiled (a GPU's large batches need more than 256)",
    )
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--name", default="train_throughput")
    args = p.parse_args(argv)
    recipes = yaml.safe_load(Path(args.recipes).read_text())
    recipes.setdefault("roles", {"baseline": "original", "ours": "ours"})
    result = {
        "benchmark": "train_throughput",
        "machine": harness.machine(),
        "recipes": recipes,
        "extra": args.extra,
        "replica_rows": args.replica_rows,
        "roles": recipes.get("roles", {"baseline": "original", "ours": "ours"}),
    }
    with tempfile.TemporaryDirectory() as tmp:
        names = args.only or (
            list(recipes["variants"]) if args.all else recipes.get("default", list(recipes["variants"]))
        )
        unknown = sorted(set(names) - set(recipes["variants"]))
        if unknown:
            p.error(f"--only: no variant named {', '.join(unknown)} in {args.recipes}")
        result.setdefault("skipped", {})
        films = harness.replica_overrides(args.replica_rows) if args.replica_rows else []
        if not args.skip_throughput:
            measure_throughput(args, recipes, names, Path(tmp), films, result)
        if not args.skip_quality:
            measure_quality(args, recipes, Path(tmp), result)
    print("wrote", harness.write_result(args.name, result, args.out))


if __name__ == "__main__":
    main()
