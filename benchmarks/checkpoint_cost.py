"""Share of training time spent writing checkpoints: the report's policy against ours.

    python benchmarks/checkpoint_cost.py [--models bench gpt2-124m]

For each model size: the median time of a full checkpoint written the report's way (Trainer, in
place) and ours (staged under tmp-checkpoint-N, renamed when complete), and the time of a training
step of each recipe on this machine, measured now. The report saved every 200 steps of 4 padded
films (configs/seed.yaml); ours saves every `save_steps` steps of 32k tokens or every
`save_minutes`, whichever comes first (configs/full.yaml). Writes benchmarks/results/checkpoint_cost.json.
"""

import argparse
import math
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import harness

from moviegpt import load_config
from moviegpt.data import movies, tokens
from moviegpt.model.tokenizer import load_tokenizer

MODELS = {  # scratch GPT-2 shapes: random weights are as large as trained ones
    "bench": ["model.n_layer=4", "model.n_head=4", "model.n_embd=256", "model.n_positions=512"],
    "gpt2-124m": ["model.n_layer=12", "model.n_head=12", "model.n_embd=768", "model.n_positions=1024"],
}
COMMON = ["model.name=scratch", "model.tokenizer=gpt2-bundled", "data.max_train_rows=400", "data.max_eval_rows=16"]


def recipe(name: str, size: list[str]) -> list[str]:
    """Overrides that put the report's (seed) or our (full) training settings on a scratch model of this size."""
    prof = load_config(name)
    t = prof.train
    return (
        COMMON
        + size
        + [
            f"text.batching={prof.text.batching}",
            f"text.max_length={prof.text.max_length}",
            f"text.block_size={prof.text.block_size}",
            f"train.batch_size={t.batch_size}",
            f"train.grad_accum={t.grad_accum}",
            f"train.precision={t.precision}",
            f"train.optim={t.optim}",
        ]
    )


def checkpoint_seconds(cfg, tok, out: Path, atomic: bool, saves: int = 3) -> dict:
    """Median wall time of one full checkpoint (weights, optimizer, scheduler, RNG, state) of cfg's model,
    after one optimizer step so the optimizer state exists; `atomic` uses moviegpt's staged save."""
    import datasets

    from moviegpt.core.hardware import resolve_precision
    from moviegpt.model import causal_lm
    from moviegpt.train.trainer import build

    model, _ = causal_lm.load_model(cfg.model, tok, cfg.seed)
    ids = [[tok.eos_token_id] * 32] * 2
    ds = datasets.Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * 32] * 2, "labels": ids})
    cfg = replace(cfg, train=replace(cfg.train, batch_size=1, max_steps=1, save_total_limit=1))
    trainer = build(
        cfg, model, ds, out, resolve_precision(cfg.train.precision)[0], saves=False, logs=False, atomic=atomic
    )  # atomic false: Trainer's own checkpoint, in place
    trainer.train()
    times = []
    for i in range(saves):
        trainer.state.global_step = 100 + i  # a new checkpoint each time; rotation keeps one, as both recipes do
        t = time.perf_counter()
        trainer._save_checkpoint(trainer.model, trial=None)
        times.append(time.perf_counter() - t)
    ckpt = max(out.glob("checkpoint-*"))
    return {
        "seconds": statistics.median(times),
        "bytes": sum(p.stat().st_size for p in ckpt.rglob("*") if p.is_file()),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def saving_share(
    save_seconds: float, step_seconds: float, save_every_steps: int | None, save_minutes: float | None = None
) -> float:
    """Share of wall time spent saving when a save happens every N steps or every M minutes, whichever first."""
    from moviegpt.core.config import save_interval

    return save_seconds / (save_seconds + save_interval(step_seconds, save_every_steps, save_minutes))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--out", default=None)
    p.add_argument("--name", default="checkpoint_cost")
    args = p.parse_args(argv)
    rows = []
    tok, _ = load_tokenizer("gpt2-bundled")
    bundled, _ = movies.load_clean(load_config("smoke").data)
    film_tokens = float(tokens.token_lengths(bundled, tok, load_config("full").text.template).mean())
    for size in args.models:
        for name, atomic in (("seed", False), ("full", True)):
            over, prof = recipe(name, MODELS[size]), load_config(name)
            cfg = load_config("smoke", over)
            with tempfile.TemporaryDirectory() as tmp:
                save = checkpoint_seconds(cfg, tok, Path(tmp) / "ckpt", atomic=atomic)
                # a step of the recipe's real shape is too slow for a CPU benchmark at full batch (64 x 512);
                # its time is tokens per step over the tokens/s measured on a batch of the same sequence length
                small = load_config(
                    "smoke", [*over, f"train.batch_size={min(cfg.train.batch_size, 4)}", "train.grad_accum=1"]
                )  # later overrides win
                splits = movies.load_splits(small.data, small.seed)
                s = harness.setup(name, small, splits, tok, Path(tmp) / "steps")
                w = harness.window(s, warmup_steps=1, steps=2)
            seq = cfg.text.block_size if cfg.text.batching == "pack" else cfg.text.max_length
            tokens_per_step = cfg.train.batch_size * cfg.train.grad_accum * seq
            step = tokens_per_step / w["tokens_per_s"]
            share = saving_share(save["seconds"], step, prof.train.save_steps, prof.train.save_minutes)
            # the whole of wykonos/movies: the report's epochs of padded films, one film per row;
            # our epochs of packed tokens, at the mean tokens per film of the bundled films
            films = harness.WYKONOS_ROWS * prof.data.splits[0]
            per_step = cfg.train.batch_size * cfg.train.grad_accum if name == "seed" else tokens_per_step / film_tokens
            steps = math.ceil(films / per_step) * prof.train.epochs
            rows.append(
                {
                    "model": size,
                    "recipe": "original" if name == "seed" else "ours",
                    "precision": s.precision,
                    "save_s": save["seconds"],
                    "checkpoint_MB": save["bytes"] / 1e6,
                    "step_s": step,
                    "save_steps": prof.train.save_steps,
                    "save_minutes": prof.train.save_minutes,
                    "saving_share": share,
                    "full_data_steps": int(steps),
                }
            )
            print(harness.table(rows[-1:], list(rows[-1])))
    print(
        harness.table(rows, ["model", "recipe", "save_s", "checkpoint_MB", "step_s", "saving_share", "full_data_steps"])
    )
    print(
        "wrote",
        harness.write_result(
            args.name,
            {"benchmark": "checkpoint_cost", "machine": harness.machine(), "rows": rows, "target_share": 0.05},
            args.out,
        ),
    )


if __name__ == "__main__":
    main()
