"""Training throughput of the report's recipe and ours, each change alone, MFU, and time to quality.

    python benchmarks/train_throughput.py [--rounds 5] [--skip-quality] [--recipes FILE]

GPT-2 124M, the original against ours only (the figures in results/train_throughput_gpt2-124m.json):

    python benchmarks/train_throughput.py --only ours --skip-quality --rounds 3 --name train_throughput_gpt2-124m \
        --set model.n_layer=12 --set model.n_embd=768 --set model.n_head=12 --set model.n_positions=1024

Every recipe in train_throughput.yaml trains the same seeded model on the same films through
`moviegpt.train.training_args` and Trainer. Rounds are interleaved (each round runs every recipe
once) and each recipe's figure is the median over rounds of a window after two warm-up steps.
Useful tokens are positions with a real next-token target (padding excluded); MFU is the model's
training FLOPs per second over the peak matmul rate measured in this run for the precision used.
Prints tables and writes benchmarks/results/train_throughput.json.
"""
import argparse
import tempfile
from pathlib import Path

import yaml

from moviegpt import bench, data, load_config, tokens

HERE = Path(__file__).parent


def build(recipes: dict, names: list[str], group: str, out: Path, extra: list[str]):
    base = recipes["base"] + extra
    cfgs = {"original": load_config("smoke", base + recipes[group].get("original", []))}
    cfgs.update({n: load_config("smoke", base + recipes[group][n]) for n in names if n != "original"})
    first = cfgs["original"]
    tok, _ = tokens.load_tokenizer(first.model.tokenizer)
    splits = data.load_splits(first.data, first.seed)
    return [bench.setup(n, c, splits, tok, out) for n, c in cfgs.items()], splits, tok, first


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", default=str(HERE / "train_throughput.yaml"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--window-tokens", type=int, default=8192, help="tokens per timed window (at least 3 steps)")
    p.add_argument("--skip-quality", action="store_true", help="throughput only")
    p.add_argument("--only", default=None, help="comma-separated variants to run beside the original (default: all)")
    p.add_argument("--set", dest="extra", action="append", default=[], help="an override for every recipe")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--name", default="train_throughput")
    args = p.parse_args(argv)
    recipes = yaml.safe_load(Path(args.recipes).read_text())
    result = {"benchmark": "train_throughput", "machine": bench.machine(), "recipes": recipes, "extra": args.extra}
    with tempfile.TemporaryDirectory() as tmp:
        names = args.only.split(",") if args.only else list(recipes["variants"])
        unknown = sorted(set(names) - set(recipes["variants"]))
        if unknown:
            p.error(f"--only: no variant named {', '.join(unknown)} in {args.recipes}")
        setups, splits, tok, first = build(recipes, names, "variants", Path(tmp), args.extra)
        rows, peaks = bench.throughput(setups, rounds=args.rounds, window_tokens=args.window_tokens)
        result.update(throughput=rows, peak_flops=peaks, parameters=sum(p.numel() for p in setups[0].trainer.model.parameters()))
        print(f"peak matmul: fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
        print(bench.table(rows, ["recipe", "useful_tokens_per_s", "tokens_per_s", "useful_share", "mfu", "x_original"]))
        if not args.skip_quality:
            setups, splits, tok, first = build(recipes, list(recipes["quality"]), "quality", Path(tmp), args.extra)
            val = tokens.tokenize(splits.validation, tok, first.text, batching="pad", desc="validation films")
            quality = bench.time_to_quality(setups, val)
            result["time_to_quality"] = quality
            print(bench.table(quality, ["recipe", "steps", "train_seconds", "final_val_loss", "target_val_loss",
                                        "seconds_to_target"]))
    print("wrote", bench.write_result(args.name, result, args.out))


if __name__ == "__main__":
    main()
