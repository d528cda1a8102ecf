"""What sampling costs inside a training run (train.samples): seconds per generated token through the forward that
Trainer leaves on the model after it starts (under bf16 or fp16, accelerate's autocast and its copy of every
output to fp32), against the model's own forward (moviegpt.model.causal_lm.plain_forward, which generate.sample uses).
Both on the same model, titles and seed, in the same process; the ratio is the baseline's time over ours.

    python benchmarks/sampling.py                     # the demo profile's model, precision and titles
    python benchmarks/sampling.py --config smoke

Writes benchmarks/results/sampling.json.
"""

import argparse
import contextlib
import dataclasses
import tempfile
import time
from pathlib import Path

import harness

from moviegpt import load_config
from moviegpt.core import hardware
from moviegpt.eval import generate
from moviegpt.eval.generate import Sampling, generate_overviews
from moviegpt.model import causal_lm
from moviegpt.train import finetune, trainer


def per_token(p, cfg, films, forward, short: int = 8, long: int = 48) -> float:
    """Seconds per new token: a pass of `long` tokens less one of `short`, after a warm-up pass; `forward` stands
    in for generate's plain_forward (contextlib.nullcontext: the model as Trainer left it)."""

    def timed(n: int) -> float:
        t0 = time.perf_counter()
        how = Sampling(max_new_tokens=n)
        generate_overviews(p.model, p.tok, films, cfg.text.template, how=how, batch_size=len(films))
        return time.perf_counter() - t0

    generate.plain_forward = forward
    timed(short)
    return (timed(long) - timed(short)) / (long - short)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="demo")
    p.add_argument("--titles", type=int, default=2, help="titles sampled at once (the demo's train.samples)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    cfg = causal_lm.choose(load_config(args.config))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=1, eval_steps=None, save_steps=0))
    precision, _ = hardware.resolve_precision(cfg.train.precision)
    prepared = finetune.prepare(cfg, log=lambda m: None)
    films = prepared.splits.test.head(args.titles).to_dict("records")
    with tempfile.TemporaryDirectory() as tmp:  # one step, so that Trainer wraps the model as a run's does
        trainer.build(cfg, prepared.model, prepared.train_ds, Path(tmp), precision, saves=False, logs=False).train()
    as_trained = per_token(prepared, cfg, films, contextlib.nullcontext)
    plain = per_token(prepared, cfg, films, causal_lm.plain_forward)
    rows = [
        {"forward": "as Trainer leaves it", "ms_per_token": as_trained * 1e3, "x": 1.0},
        {"forward": "plain (moviegpt)", "ms_per_token": plain * 1e3, "x": as_trained / plain},
    ]
    print(f"{cfg.model.name}, {precision}, {args.titles} titles at once")
    print(harness.table(rows, ["forward", "ms_per_token", "x"]))
    result = {
        "benchmark": "sampling",
        "machine": harness.machine(),
        "model": cfg.model.name,
        "precision": precision,
        "titles": args.titles,
        "rows": rows,
    }
    print("wrote", harness.write_result("sampling", result, args.out))


if __name__ == "__main__":
    main()
