"""Benchmark harness: the measurements behind benchmarks/*.py, beside them (not part of the package), importable
so tests can run them tiny.

Every benchmark measures the report's original recipe and ours in the same process run, on the
same data and model, and reports ratios to the original. Nothing here is timed by a test; tests
check that the harness runs and that its token accounting is right.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from moviegpt.core.mfu import RULE, utilisation
import numpy as np
import pandas as pd

from moviegpt.data import movies
from moviegpt.data.movies import WYKONOS_ROWS

ROOT = Path(__file__).resolve().parents[1]  # the repository
RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------------------------------------
# machine and results


def machine() -> dict:
    """The machine a result came from: CPU, the ISA torch dispatches to, native precisions, cores, GPU."""
    import torch

    from moviegpt.core.hardware import hardware

    return {**hardware(), "python": platform.python_version(), "torch": torch.__version__}


def native(precision: str) -> bool:
    """Whether this machine computes `precision` in hardware; benchmarks measure nothing else."""
    from moviegpt.core.hardware import native_precisions

    return precision in native_precisions()


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its (finished) children, in MB (Linux: ru_maxrss is KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024


def write_result(name: str, result: dict, out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir or RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    return path


def table(rows: list[dict], cols: list[str]) -> str:
    """A plain text table of dict rows (floats to 3 significant digits)."""
    fmt = lambda v: (
        f"{v:,.3g}"
        if isinstance(v, float) and abs(v) < 1000
        else (f"{v:,.0f}" if isinstance(v, (int, float)) else str(v))
    )
    cells = [[c for c in cols]] + [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


# ---------------------------------------------------------------------------------------------
# data preparation at full scale


def replica(rows: int = WYKONOS_ROWS, seed: int = 0) -> pd.DataFrame:
    """The bundled films repeated to `rows` rows in wykonos layout. Each copy gets a new id and its copy
    number in the title, so cleaning (which drops repeated ids and repeated title+overview) keeps it."""
    base = movies.read_table("bundled")
    reps = -(-rows // len(base))
    out = pd.concat([base] * reps, ignore_index=True).head(rows)
    copy = np.arange(len(out)) // len(base)
    out["id"] = out["id"].astype("int64") + copy * 10_000_000
    out["title"] = out["title"].where(copy == 0, out["title"] + " " + pd.Series(copy, dtype=str))
    return out.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def replica_file(rows: int = WYKONOS_ROWS) -> Path:
    from moviegpt.core.config import CACHE_DIR

    path = CACHE_DIR / "bench" / f"wykonos-replica-{rows}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        replica(rows).to_parquet(path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    return path


def replica_overrides(rows: int) -> list[str]:
    """Settings that train on `rows` bundled films tiled (replica_file): enough data that a large batch does not
    end an epoch every step, as 256 films would (an epoch restarts the data loader)."""
    return [f"data.source={replica_file(rows)}", f"data.max_train_rows={rows}"]


# ---------------------------------------------------------------------------------------------
# training throughput, model FLOPs utilisation, time to quality


def peak_matmul_flops(precision: str, n: int = 2048, **timing) -> float:
    """Best FLOP/s of an n x n matmul in this process, measured now (moviegpt.core.hardware.matmul_peak, the
    function a run's MFU is stated against on a CPU; `timing`: its reps and trials)."""
    from moviegpt.core.hardware import matmul_peak

    return matmul_peak(precision, n, **timing)


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token by the one rule a run's metrics.jsonl uses too: llm.c's 6N + 6LCT
    (moviegpt.core.mfu.model_flops_per_token)."""
    from moviegpt.core import mfu

    return mfu.model_flops_per_token(model.config, sum(p.numel() for p in model.parameters()), seq_len)


class CountingCollator:
    """default_data_collator that records, for every batch it makes, all tokens and the useful ones:
    positions whose next token is a real target (label != -100 after the shift), i.e. not padding."""

    def __init__(self):
        self.counts: list[tuple[int, int]] = []

    def __call__(self, features):
        from transformers import default_data_collator

        batch = default_data_collator(features)
        self.counts.append((batch["input_ids"].numel(), int((batch["labels"][:, 1:] != -100).sum())))
        return batch


@dataclass
class Setup:
    """One recipe ready to train: its config, model, data, and the instruments on it."""

    name: str
    cfg: object
    model: object
    train_ds: object
    collator: CountingCollator
    clock: object
    precision: str
    seq_len: int
    flops_per_token: float
    out: Path

    def trainer(self, max_steps: int, callbacks: list | None = None):
        """The Trainer `moviegpt train` trains (moviegpt.train.trainer.build) for `max_steps` steps (-1: the configured
        epochs), with no saving, evaluation or logging; a new one for each window, on the same model."""
        from moviegpt.train.trainer import build

        cfg = replace(self.cfg, train=replace(self.cfg.train, max_steps=max_steps))
        return build(
            cfg,
            self.model,
            self.train_ds,
            self.out / self.name,
            self.precision,
            collator=self.collator,
            callbacks=[self.clock, *(callbacks or [])],
            saves=False,
            logs=False,
        )


def setup(name: str, cfg, splits, tok, out: Path) -> Setup:
    """A recipe's model and data, made as `moviegpt train` makes them, with a collator and clock that count
    tokens and time steps."""
    from moviegpt.core.hardware import resolve_precision
    from moviegpt.data import tokens
    from moviegpt.model import causal_lm
    from moviegpt.train.callbacks import StepClock

    precision, _ = resolve_precision(cfg.train.precision)
    ds = tokens.tokenize(splits.train, tok, cfg.text, desc=f"bench {name}")
    model, _ = causal_lm.load_model(cfg.model, tok, cfg.seed)  # the same seeded initialisation for every recipe
    seq = cfg.text.seq_len()
    return Setup(
        name, cfg, model, ds, CountingCollator(), StepClock(), precision, seq, flops_per_token(model, seq), out
    )


def window(s: Setup, warmup_steps: int, steps: int) -> dict:
    """Train `warmup_steps + steps` optimizer steps; time the last `steps` (end of step to end of step,
    so data loading, forward, backward and optimizer are all inside) and count their tokens."""
    import torch

    s.collator.counts = []
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    s.trainer(warmup_steps + steps).train()
    accum = s.cfg.train.grad_accum
    elapsed = s.clock.ends[-1] - s.clock.ends[warmup_steps - 1]
    batches = s.collator.counts[warmup_steps * accum : (warmup_steps + steps) * accum]
    total, useful = sum(c[0] for c in batches), sum(c[1] for c in batches)
    memory = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {
        "seconds": elapsed,
        "tokens": total,
        "useful_tokens": useful,
        "peak_memory_mb": memory,
        "tokens_per_s": total / elapsed,
        "useful_tokens_per_s": useful / elapsed,
    }


def throughput(
    setups: list[Setup],
    rounds: int = 3,
    warmup_steps: int = 2,
    window_tokens: int = 8192,
    peak_size: int = 2048,
    min_steps: int = 3,
) -> list[dict]:
    """Interleaved windows: every round runs each recipe once, so drift (thermal, other load) hits all alike.
    Reports the median over rounds of useful and total tokens/s, and MFU against the peak matmul rate of
    the precision each recipe computes in, measured in this run (only the precisions the recipes use;
    callers drop recipes whose precision is not native, see native())."""
    peaks = {p: peak_matmul_flops(p, n=peak_size) for p in sorted({s.precision for s in setups})}
    from moviegpt.core import progress

    runs = {s.name: [] for s in setups}
    bar = progress.bar(total=rounds * len(setups), desc="timed windows", unit="window")
    for r in range(rounds):
        for s in setups[r % len(setups) :] + setups[: r % len(setups)]:  # each round starts with another recipe
            bar.set_postfix_str(f"round {r + 1}: {s.name}")
            runs[s.name].append(window(s, warmup_steps, max(min_steps, -(-window_tokens // s.cfg.tokens_per_step))))
            bar.update(1)
    bar.close()
    out = []
    for s in setups:
        w = runs[s.name]
        tps = statistics.median(r["tokens_per_s"] for r in w)
        useful = statistics.median(r["useful_tokens_per_s"] for r in w)
        peak = peaks[s.precision]
        out.append(
            {
                "recipe": s.name,
                "precision": s.precision,
                "batching": s.cfg.text.batching,
                "batch_size": s.cfg.train.batch_size,
                "optim": s.cfg.train.optim,
                "attention": s.cfg.model.attn_implementation,
                "seq_len": s.seq_len,
                "useful_tokens_per_s": useful,
                "tokens_per_s": tps,
                "useful_share": useful / tps,
                "flops_per_token": s.flops_per_token,
                "achieved_flops": tps * s.flops_per_token,
                "peak_flops": peak,
                "mfu": utilisation(tps, 1.0, s.flops_per_token, peak)[1],  # the median rate: tps tokens in 1 s
                "mfu_rule": RULE,
                "windows": [round(r["useful_tokens_per_s"], 1) for r in w],
                "peak_memory_mb": max((r["peak_memory_mb"] or 0) for r in w) or None,
            }
        )
    base = out[0]["useful_tokens_per_s"]
    for r in out:
        r["x_original"] = r["useful_tokens_per_s"] / base
        r["x_original_by_round"] = [w / b for w, b in zip(r["windows"], out[0]["windows"])]  # same round, paired
    return out, peaks


def time_to_quality(
    setups: list[Setup], val_ds, evals: int = 6, batch_size: int = 16, stop_at_target: bool = True
) -> list[dict]:
    """Each recipe trains its configured epochs of the same films from the same initialisation; the held-out
    token-weighted loss (the same padded validation films for every recipe, moviegpt.eval.evaluate.perplexity)
    is measured `evals` times, with the clock stopped while it is. The target is the loss the first recipe
    (the original) ends its budget with; a recipe's time to quality is when it first reaches it, and with
    `stop_at_target` the others stop there (the rest of their budget measures nothing the target needs)."""
    from transformers import TrainerCallback

    from moviegpt.eval.evaluate import perplexity

    class Probe(TrainerCallback):
        def __init__(self, every, target):
            self.every, self.target, self.points, self.paused, self.t0 = every, target, [], 0.0, None

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % self.every == 0 or state.global_step == state.max_steps:
                t = time.perf_counter()
                loss = perplexity(model, val_ds, batch_size).loss
                model.train()
                self.points.append(
                    {
                        "step": state.global_step,
                        "train_seconds": t - self.t0 - self.paused,
                        "tokens": int(sum(c[0] for c in collator.counts)),
                        "val_loss": loss,
                    }
                )
                self.paused += time.perf_counter() - t
                if self.target is not None and loss <= self.target:
                    control.should_training_stop = True

    results = []
    for s in setups:
        collator = s.collator
        collator.counts = []
        steps = int(len(s.trainer(-1).get_train_dataloader()) // s.cfg.train.grad_accum * s.cfg.train.epochs)
        target = results[0]["final_val_loss"] if results and stop_at_target else None
        probe = Probe(max(1, steps // evals), target)
        s.trainer(-1, callbacks=[probe]).train()
        results.append(
            {
                "recipe": s.name,
                "steps": steps,
                "curve": probe.points,
                "stopped_at_target": probe.points[-1]["step"] < steps,
                "final_val_loss": probe.points[-1]["val_loss"],
                "train_seconds": probe.points[-1]["train_seconds"],
            }
        )
    target = results[0]["final_val_loss"]
    for r in results:
        hit = next((p for p in r["curve"] if p["val_loss"] <= target), None)
        r["target_val_loss"] = target
        r["seconds_to_target"] = hit["train_seconds"] if hit else None
    return results
