"""Fit a run to the machine it finds: `train.budget_minutes` becomes a step count.

A planned run measures itself. Before its first step, one timed forward pass of a micro-batch of the run's own
model (the estimate: the quickest of ESTIMATE_FORWARDS after the first; no weight changes) gives a first step count. It
fixes what must be known before training starts: the warm-up's length (train.warmup_steps of the estimated
steps), the validation blocks per pass (train.eval_rows) and the first steps' learning rates. Then the run
trains, and at the end of its step MEASURED_STEP it knows what its own steps cost (that step's time, after the
slow first ones), what it has spent so far and what a validation pass with its samples costs (step 0's): it
sets its step count there (moviegpt.callbacks.PlanAtStep), so the schedule decays to zero at the last step
the budget pays for. No step is thrown away. Everything that is not an optimizer step is planned inside the
budget, not on top of it:
    the estimate     its own seconds, before the first step
    validation       EVALS passes plus one at step 0, on the first train.eval_rows validation blocks, sized so
                     that all of them together cost about EVAL_SHARE of the budget
    samples          train.samples titles sampled at every validation pass, each pass's stopped after its part
                     of SAMPLE_SHARE of the budget
    checkpoints      none in a run of at most SHORT_RUN minutes (a signal still saves one); in a longer run one
                     half-way. The run saves its model when it ends either way.
A planned run's directory is named by its plan's key (the config before planning, and the machine), since its
step count is only known once it trains. The plan is cached per machine and config, so a rebuild reuses it (and
so the same run), and a plan trains the same weights every time: the learning rates of the steps before
MEASURED_STEP follow the estimate's schedule, those after it the measured one, in the first run and any rerun
alike. An explicit train.max_steps > 0 skips all of this.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time

from moviegpt import hardware, validate
from moviegpt.config import CACHE_DIR, Config
from moviegpt.artifacts import Plan, from_dict, to_dict

PLANS = CACHE_DIR / "plans"
EVALS = 3  # validation passes in a planned run (a curve, not a point), plus one at step 0 (the base model)
EVAL_SHARE = 0.05  # of the budget, for all validation passes together (sized from the estimate, which has
# erred by a quarter: 3.1 s a pass planned at 2.5 s, a LoRA run on 2 AMD EPYC cores)
SAMPLE_SHARE = 0.04  # of the budget, for the overviews sampled at all validation passes together (generate's
# max_time stops a pass's samples at its part: 48 tokens for 2 titles took 4.3 s a pass, 12% of a 2.75-minute
# budget over 4 passes, on 2 AMD EPYC cores in bf16)
MIN_EVAL_ROWS = 4  # a validation pass is never smaller than this many blocks
FORWARD_SHARE = 1 / 3  # a forward pass costs about a third of a training step (forward + backward = 3 forwards)
MIN_STEPS = 4
SHORT_RUN = 10  # minutes: a planned run this short writes no checkpoint unless a signal asks for one
ESTIMATE_FORWARDS = 3  # forward passes of the estimate; the quickest after the first (which pays for the kernels'
# set-up) counts: from the second alone, three runs of one build estimated 28, 35 and 44 steps for one model
MEASURED_STEP = 4  # the step whose time sizes the run: a fresh Trainer's steps slow down for a few steps
# (135M model, 2 cores, fp32 AVX2: 13.2, 10.7, 8.0, 6.9, 6.3, 6.6 s; bf16 likewise), and a plan from the second
# step's time (1.6x the steady one) left a third of the budget unspent. The slow steps themselves are training.


def machine_key() -> dict:
    hw = hardware.hardware()
    import torch

    return {k: hw[k] for k in ("cpu", "cpu_capability", "cpu_cores", "torch_threads", "gpu")} | {
        "torch": torch.__version__
    }


def plan_key(cfg: Config) -> str:
    return hashlib.sha256(json.dumps([cfg.hash(), machine_key()], sort_keys=True).encode()).hexdigest()[:16]


def cached(cfg: Config) -> tuple[Config, Plan | None] | None:
    """The config to run and its plan when nothing has to be measured; None when a budget still needs a plan."""
    t = cfg.train
    if not t.budget_minutes or t.max_steps > 0 or cfg.data.streaming:
        return cfg, _read(PLANS / "by-run" / f"{cfg.run_name}.json")  # a planned config: its plan, when known
    plan = _read(PLANS / f"{plan_key(cfg)}.json")
    return None if plan is None else _planned(cfg, plan)


def resolve(cfg: Config, prepared, log=print) -> tuple[Config, Plan | None]:
    """The config to run (planned when train.budget_minutes asks for it) and its plan, if any. `prepared` is
    the run's moviegpt.train.Prepared: the estimate runs its model on its films."""
    found = cached(cfg)
    if found is not None:
        if found[1] is not None and cfg.train.budget_minutes and cfg.train.max_steps <= 0:
            log(f"Plan for this machine (cached): {found[1].reason}")
        return found
    plan = make(cfg, plan_key(cfg), prepared, log)
    _write(PLANS / f"{plan.key}.json", plan)
    return _planned(cfg, plan)


def record(cfg: Config, plan: Plan) -> Config:
    """A plan fixed while its run trains (PlanAtStep): cached for rebuilds; returns the config it makes."""
    _write(PLANS / f"{plan.key}.json", plan)
    return _planned(cfg, plan)[0]


def _planned(cfg: Config, plan: Plan) -> tuple[Config, Plan]:
    planned = apply(cfg, plan)
    _write(PLANS / "by-run" / f"{planned.run_name}.json", plan)
    return planned, plan


def apply(cfg: Config, plan: Plan) -> Config:
    """The config a plan makes. Before its run has measured itself, max_steps is the most the films allow (the
    schedule is the estimate's: PlanAtStep), and no validation pass or checkpoint falls before MEASURED_STEP."""
    t = dataclasses.replace(
        cfg.train,
        max_steps=plan.max_steps if plan.measured_step else plan.data_steps,
        eval_steps=plan.eval_steps,
        save_steps=plan.save_steps,
        eval_rows=plan.eval_rows,
        warmup_steps=plan.warmup_steps,
        logging_steps=max(1, min(cfg.train.logging_steps, (plan.schedule_steps or plan.max_steps) // 20 or 1)),
        planned_by=plan.key[:8],
    )
    return dataclasses.replace(cfg, train=t)


def _read(path) -> Plan | None:
    try:
        return from_dict(Plan, json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write(path, plan: Plan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    validate.write_atomic(path, validate.dumps(to_dict(plan), indent=2))


def make(cfg: Config, key: str, prepared, log=print) -> Plan:
    """The plan a run starts with: its step count estimated from one forward pass (estimate), to be fixed by
    the run itself at MEASURED_STEP (fit)."""
    t = cfg.train
    precision, _ = hardware.resolve_precision(t.precision)
    log(f"Planning a {t.budget_minutes:g}-minute run ({precision}): timing a forward pass...")
    started = time.perf_counter()
    forward_s = estimate(cfg, prepared.model, prepared.train_ds, precision)
    cost = time.perf_counter() - started
    step_s = forward_s / FORWARD_SHARE * t.grad_accum
    row_eval_s = forward_s / t.batch_size
    budget_s = t.budget_minutes * 60
    val_rows = len(prepared.val_ds) if prepared.val_ds is not None else 0
    eval_rows = min(val_rows, max(MIN_EVAL_ROWS, math.floor(EVAL_SHARE * budget_s / (EVALS + 1) / row_eval_s)))
    eval_s = eval_rows * row_eval_s
    data_steps = max(1, math.floor(len(prepared.train_ds) * t.epochs / (t.batch_size * t.grad_accum)))
    steps = max(MIN_STEPS, min(math.floor((budget_s - cost - (EVALS + 1) * eval_s) / step_s), data_steps))
    warmup = t.warmup_steps if t.warmup_steps >= 1 else math.ceil(t.warmup_steps * steps)
    plan = Plan(
        key=key,
        machine=hardware.describe(hardware.hardware()),
        budget_minutes=t.budget_minutes,
        probe_seconds=cost,
        step_seconds=step_s,
        tokens_per_second=t.batch_size * cfg.text.seq_len() / (step_s / t.grad_accum),
        eval_seconds=eval_s,
        max_steps=steps,
        max_train_rows=None,
        eval_steps=data_steps + 1,  # no validation pass before the run has measured itself
        save_steps=0 if t.budget_minutes <= SHORT_RUN else data_steps + 1,
        planned_seconds=cost + steps * step_s + (EVALS + 1) * eval_s,
        reason=f"estimated from a forward pass: about {steps} steps (fixed at step {MEASURED_STEP})",
        eval_rows=eval_rows or None,
        sample_seconds=SAMPLE_SHARE * budget_s / (EVALS + 1) if t.samples else 0.0,
        warmup_steps=int(warmup),
        schedule_steps=steps,
        data_steps=data_steps,
    )
    log(f"Plan: {plan.reason}; warm-up {plan.warmup_steps} steps, {eval_rows} validation blocks a pass.")
    return plan


def fit(cfg: Config, start: Plan, step_s: float, spent_s: float, pass_s: float) -> Plan:
    """The plan `start` becomes at the end of step MEASURED_STEP: `step_s` that step's seconds, `spent_s` the
    seconds since training began (step 0's validation and the steps so far), `pass_s` a validation pass with
    its samples (step 0's; 0: the estimate's)."""
    t, k = cfg.train, MEASURED_STEP
    pass_s = pass_s or start.eval_seconds
    left = t.budget_minutes * 60 - start.probe_seconds - spent_s - EVALS * pass_s
    steps = max(MIN_STEPS, min(k + math.floor(left / step_s), start.data_steps))
    every = max(1, math.ceil(steps / EVALS))  # Trainer also validates at the last step: EVALS passes at most
    passes = math.ceil(steps / every) - (k - 1) // every  # from step k on: every `every` steps, and the last
    save_every = 0 if t.budget_minutes <= SHORT_RUN else max(every, steps // 2 // every * every)
    tok_s = t.batch_size * cfg.text.seq_len() * t.grad_accum / step_s
    why = (
        f"{t.budget_minutes:g}-minute budget: step {k} took {step_s:.2f} s ({tok_s:,.0f} tokens/s, "
        f"{hardware.resolve_precision(t.precision)[0]}, measured in the run), so {steps} steps of "
        f"{cfg.tokens_per_step:,} tokens; "
        + (
            f"validation at step 0 and every {every} steps (and the last) on {start.eval_rows} validation blocks, "
            f"{pass_s:.0f} s a pass"
            + (f" with {t.samples} titles sampled (for at most {start.sample_seconds:.1f} s)" if t.samples else "")
            if start.eval_rows
            else "no validation films"
        )
        + ("; no checkpoint in a run this short" if save_every == 0 else f"; a checkpoint every {save_every} steps")
    )
    if steps == start.data_steps:
        why += f"; every training film is read ({t.epochs:g} epoch(s)), so the run ends before its budget"
    elif left < (MIN_STEPS - k) * step_s:
        why += f"; the budget allows fewer than {MIN_STEPS} steps on this machine, so {MIN_STEPS} are run"
    return dataclasses.replace(
        start,
        step_seconds=step_s,
        tokens_per_second=tok_s,
        eval_seconds=pass_s,
        max_steps=steps,
        eval_steps=every,
        save_steps=save_every,
        planned_seconds=start.probe_seconds + spent_s + (steps - k) * step_s + passes * pass_s,
        samples_seconds=0.0,
        reason=why,
        measured_step=k,
    )


def estimate(cfg: Config, model, train_ds, precision: str) -> float:
    """Seconds of one forward pass of a training micro-batch through the run's model at the run's precision
    (the quickest of ESTIMATE_FORWARDS after the first; no gradients, nothing changed). It times one row and
    counts it train.batch_size times: a quarter of the cost at the demo's batch of 4 (3 forwards of the batch
    took 7.4-7.8 s, 5% of a 2.75-minute budget, on 2 AMD EPYC cores computing as AVX2 in fp32), and if anything
    pessimistic, since one row uses the cores less well."""
    import torch
    from transformers import default_data_collator

    batch = default_data_collator([train_ds[0]])
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    low = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    was, seconds = model.training, []
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=low or torch.float32, enabled=low is not None):
            for _ in range(ESTIMATE_FORWARDS):
                started = time.perf_counter()
                model(**batch)
                hardware.synchronize()
                seconds.append(time.perf_counter() - started)
    finally:
        model.train(was)
    return min(seconds[1:] or seconds) * cfg.train.batch_size
