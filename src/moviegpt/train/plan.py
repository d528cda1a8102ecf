"""Fit a run to the machine it finds: `train.budget_minutes` becomes a step count, decided before the first step.

A forward and backward pass of one training micro-batch through the run's own model (the quickest of ESTIMATE_PASSES
after the first; the weights do not change) gives the seconds of one optimizer step. From it,
`fit` fixes everything Trainer needs before it is built, in one place:

    steps = min(the steps the films allow, (budget - estimate - validation - samples - slow start) / step)

and with it the warm-up (train.warmup_steps of those steps), the validation passes (EVALS of them, plus one at
step 0, on train.eval_rows blocks sized so that all passes cost about EVAL_SHARE of the budget), the samples'
time limit (SAMPLE_SHARE of the budget over the passes) and the checkpoints (none in a run of at most SHORT_RUN
minutes; a signal still saves one). The learning-rate schedule is then Trainer's own for those steps. A run that
still overruns its budget by DEADLINE_FACTOR stops there (callbacks.Deadline, through Trainer's public control).

The plan is cached per machine and config (PLANS/<key>.json: its only home; the run's config.yaml records it), so
a rebuild finds the same plan, hence the same config and the same run directory, and a rerun from the cached plan
trains the same weights. An explicit train.max_steps > 0 skips all of this. What the estimate costs and how far
planned and trained time differ on each machine measured: benchmarks/README.md, "Planning a budget".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time

from moviegpt.core import hardware, validate
from moviegpt.core.artifacts import Plan, from_dict, to_dict
from moviegpt.core.config import CACHE_DIR, Config

PLANS = CACHE_DIR / "plans"
EVALS = 3  # validation passes in a planned run (a curve, not a point), plus one at step 0 (the base model)
EVAL_SHARE = 0.05  # of the budget, for all validation passes together
SAMPLE_SHARE = 0.04  # of the budget, for the overviews sampled at all validation passes together (generate's
# max_time stops each pass's samples at its part)
MIN_EVAL_ROWS = 4  # a validation pass is never smaller than this many blocks
MIN_STEPS = 4
SHORT_RUN = 10  # minutes: a planned run this short writes no checkpoint unless a signal asks for one
ESTIMATE_PASSES = 3  # forward and backward passes of a micro-batch; the quickest after the first is the step's
SLOW_START = 1  # steps: a fresh Trainer's first steps are slower than the rest, by about this many steps in all
OPTIMIZER_SHARE = 0.1  # of a step with every weight trained: the optimizer's update, which the estimate does not run
# (it would change weights); it scales with the share of weights trained (LoRA's adapters: almost none)
DEADLINE_FACTOR = 1.5  # a planned run still training at this multiple of its budget stops there
MAX_PLAN_BYTES = 1 << 16  # a cached plan is a small JSON file; anything larger is not one


def plan_key(cfg: Config) -> str:
    return hashlib.sha256(json.dumps([cfg.hash(), hardware.machine_key()], sort_keys=True).encode()).hexdigest()[:16]


def needed(cfg: Config) -> bool:
    """Does this config ask for a plan (a budget, no step count, not a stream)?"""
    t = cfg.train
    return bool(t.budget_minutes) and t.max_steps <= 0 and not cfg.data.streaming


def cached(cfg: Config) -> Plan | None:
    """This machine's plan for this config, if one was made; a damaged cache entry is set aside with one line."""
    return read(PLANS / f"{plan_key(cfg)}.json")


def resolve(cfg: Config, prepared, log=print) -> tuple[Config, Plan]:
    """The planned config and its plan: from the cache, or measured now on `prepared` (moviegpt.train.finetune.Prepared:
    the estimate runs its model on its films) and cached."""
    plan = cached(cfg)
    if plan is not None:
        log(f"Plan for this machine (cached): {plan.reason}")
    else:
        plan = make(cfg, prepared, log)
        write(PLANS / f"{plan.key}.json", plan)
    return apply(cfg, plan), plan


def apply(cfg: Config, plan: Plan) -> Config:
    """The config a plan makes: every number Trainer needs, fixed before it is built."""
    t = dataclasses.replace(
        cfg.train,
        max_steps=plan.max_steps,
        warmup_steps=float(plan.warmup_steps),  # the field is a float: as config.yaml gives it back, so the run's
        # name computed from its saved config is the name it was made under
        eval_steps=plan.eval_steps,
        eval_rows=plan.eval_rows,
        save_steps=plan.save_steps,
        logging_steps=max(1, min(cfg.train.logging_steps, plan.max_steps // 20 or 1)),
    )
    return dataclasses.replace(cfg, train=t)


def make(cfg: Config, prepared, log=print) -> Plan:
    """Measure one row's step on this machine, then fit the budget (fit)."""
    t = cfg.train
    precision, _ = hardware.resolve_precision(t.precision)
    log(f"Planning a {t.budget_minutes:g}-minute run ({precision}): timing a forward and backward pass...")
    started = time.perf_counter()
    model = trained_as(cfg, prepared.model)
    batch_s = estimate(model, prepared.train_ds, t.batch_size, precision)
    cost = time.perf_counter() - started
    params = list(model.parameters())
    trained = sum(p.numel() for p in params if p.requires_grad) / max(sum(p.numel() for p in params), 1)
    val_rows = len(prepared.val_ds) if prepared.val_ds is not None else 0
    data_steps = max(1, math.floor(len(prepared.train_ds) * t.epochs / (t.batch_size * t.grad_accum)))
    plan = fit(cfg, batch_s, cost, val_rows, data_steps, trained)
    log(f"Plan: {plan.reason}.")
    return plan


def fit(cfg: Config, batch_s: float, estimate_s: float, val_rows: int, data_steps: int, trained: float = 1.0) -> Plan:
    """The plan for cfg's budget, from the seconds of one micro-batch's forward and backward pass (`batch_s`), what
    measuring it cost, the validation rows there are, the steps the films allow and the share of weights trained.
    Arithmetic only."""
    t = cfg.train
    budget_s = t.budget_minutes * 60
    step_s = batch_s * t.grad_accum * (1 + OPTIMIZER_SHARE * trained)
    row_eval_s = batch_s / t.batch_size / 3  # a forward pass is about a third of a forward and backward one
    eval_rows = min(val_rows, max(MIN_EVAL_ROWS, math.floor(EVAL_SHARE * budget_s / (EVALS + 1) / row_eval_s)))
    eval_s = eval_rows * row_eval_s
    sample_s = SAMPLE_SHARE * budget_s / (EVALS + 1) if t.samples and eval_rows else 0.0
    passes_s = (EVALS + 1) * (eval_s + sample_s) if eval_rows else 0.0
    room = budget_s - estimate_s - passes_s - SLOW_START * step_s
    steps = max(MIN_STEPS, min(math.floor(room / step_s), data_steps))
    every = max(1, math.ceil(steps / EVALS))  # Trainer also validates at the last step: EVALS passes at most
    save_every = 0 if t.budget_minutes <= SHORT_RUN else max(every, steps // 2 // every * every)
    warmup = int(t.warmup_steps if t.warmup_steps >= 1 else math.ceil(t.warmup_steps * steps))
    tok_s = t.batch_size * t.grad_accum * cfg.text.seq_len() / step_s
    why = (
        f"{t.budget_minutes:g}-minute budget: one step estimated at {step_s:.2f} s ({tok_s:,.0f} tokens/s, "
        f"{hardware.resolve_precision(t.precision)[0]}), so {steps} steps of {cfg.tokens_per_step:,} tokens"
        + (
            f"; validation at step 0 and every {every} steps (and the last) on {eval_rows} validation blocks"
            + (f", with {t.samples} titles sampled (at most {sample_s:.1f} s a pass)" if sample_s else "")
            if eval_rows
            else "; no validation films"
        )
        + ("; no checkpoint in a run this short" if save_every == 0 else f"; a checkpoint every {save_every} steps")
    )
    if steps == data_steps:
        why += f"; every training film is read ({t.epochs:g} epoch(s)), so the run ends before its budget"
    elif room < MIN_STEPS * step_s:
        why += f"; the budget allows fewer than {MIN_STEPS} steps on this machine, so {MIN_STEPS} are run"
    return Plan(
        key=plan_key(cfg),
        machine=hardware.describe(hardware.hardware()),
        budget_minutes=t.budget_minutes,
        estimate_seconds=estimate_s,
        step_seconds=step_s,
        tokens_per_second=tok_s,
        eval_rows=eval_rows or None,
        eval_seconds=eval_s,
        sample_seconds=sample_s,
        max_steps=steps,
        warmup_steps=warmup,
        eval_steps=every if eval_rows else steps + 1,
        save_steps=save_every,
        planned_seconds=estimate_s + (steps + SLOW_START) * step_s + passes_s,
        reason=why,
    )


def read(path) -> Plan | None:
    """A cached plan, checked as input: a regular file of bounded size holding a plan whose numbers are in range.
    Anything else is set aside (renamed *.damaged) with one line, and the run plans afresh."""
    try:
        if path.is_symlink() or not path.is_file():
            return None if not path.exists() and not path.is_symlink() else _set_aside(path, "not a regular file")
        if path.stat().st_size > MAX_PLAN_BYTES:
            return _set_aside(path, "too large to be a plan")
        plan = from_dict(Plan, json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as e:
        return _set_aside(path, f"unreadable ({type(e).__name__})")
    bad = check(plan)
    return _set_aside(path, bad) if bad else plan


def check(plan: Plan) -> str | None:
    """What is wrong with a plan read from outside, or None."""
    counts = (plan.max_steps, plan.warmup_steps, plan.eval_steps, plan.save_steps)
    times = (plan.budget_minutes, plan.step_seconds, plan.planned_seconds, plan.sample_seconds)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in counts):
        return "its step counts are not whole numbers"
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in times):
        return "its times are not numbers"
    if plan.eval_rows is not None and (not isinstance(plan.eval_rows, int) or isinstance(plan.eval_rows, bool)):
        return "its validation size is not a whole number"
    if not isinstance(plan.reason, str) or not isinstance(plan.key, str):
        return "it does not say why"
    if not (1 <= plan.max_steps <= 10**7):
        return f"max_steps {plan.max_steps} is out of range"
    if not (0 <= plan.warmup_steps <= plan.max_steps and 1 <= plan.eval_steps <= plan.max_steps + 1):
        return "its warm-up or validation steps do not fit its step count"
    if plan.save_steps < 0 or (plan.eval_rows is not None and not 1 <= plan.eval_rows <= 10**7):
        return "its checkpoint or validation sizes are out of range"
    if not all(math.isfinite(x) and x >= 0 for x in times):
        return "its times are not finite non-negative numbers"
    return None


def _set_aside(path, why: str) -> None:
    import sys

    target = path.with_name(path.name + ".damaged")
    try:
        path.replace(target)
        print(f"moviegpt: set aside the cached plan {path} ({why}) as {target.name}; planning afresh", file=sys.stderr)
    except OSError:
        print(f"moviegpt: ignored the cached plan {path} ({why}); planning afresh", file=sys.stderr)
    return None


def write(path, plan: Plan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    validate.write_atomic(path, validate.dumps(to_dict(plan), indent=2))


def trained_as(cfg: Config, model):
    """The model as the run will train it: a LoRA run's adapters on a copy (a LoRA step computes no gradient for
    the frozen weights, so it is cheaper than a full one); the model itself otherwise."""
    if not cfg.train.lora:
        return model
    import copy

    from moviegpt.model.causal_lm import adapt

    return adapt(copy.deepcopy(model), cfg)


def estimate(model, train_ds, batch_size: int, precision: str) -> float:
    """Seconds of one forward and backward pass of a training micro-batch through the run's model at the run's
    precision: the micro-batch ESTIMATE_PASSES times, the quickest after the first counting (the first pays for setting
    up the kernels of that shape and for memory touched for the first time, which a warm-up of one row does not, and
    in a fresh process the second can still be slow: benchmarks/README.md, "Planning a budget"). The gradients are
    dropped afterwards and no optimizer runs, so the weights are as they were."""
    import torch
    from transformers import default_data_collator

    device = next(model.parameters()).device
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    rows = [train_ds[i % len(train_ds)] for i in range(batch_size)]
    was, seconds = model.training, []
    model.train()
    try:
        for _ in range(ESTIMATE_PASSES):
            inputs = {k: v.to(device) for k, v in default_data_collator(rows).items()}
            inputs |= {"use_cache": False} if "position_ids" in inputs else {}
            started = time.perf_counter()
            with torch.autocast(device.type, dtype=low or torch.float32, enabled=low is not None):
                loss = model(**inputs).loss
            loss.backward()
            hardware.synchronize()
            seconds.append(time.perf_counter() - started)
            model.zero_grad(set_to_none=True)
    finally:
        model.train(was)
    return min(seconds[1:])
