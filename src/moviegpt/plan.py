"""Fit a run to the machine it finds: `train.budget_minutes` becomes a step count and a number of films.

A short probe trains a few micro-batches of the real model, at the real shape and precision, on a copy
of the model that is then thrown away; the tokens/s it measures sets how many optimizer steps fit in the
budget (validation passes included), and the training films are capped to what those steps read. The
learning-rate schedule is then planned for exactly those steps (train.max_steps), so it is never cut off
part-way. The plan is cached per machine and config, so a rebuild reuses it (and so the same run); a given
plan is deterministic. An explicit train.max_steps > 0 skips all of this.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import statistics
import time

from moviegpt import data, hardware, model as model_stage, progress, tokens, validate
from moviegpt.config import CACHE_DIR, Config
from moviegpt.artifacts import Plan, from_dict, to_dict

PLANS = CACHE_DIR / "plans"
EVALS = 3  # validation passes in a planned run (a curve, not a point), plus one at step 0 (the base model)
MIN_STEPS = 4
PROBE_STEPS = 2  # timed micro-batches, after one warm-up
SAVE_BYTES_PER_S = 400e6  # a rough local-disk write rate, for the checkpoints in the plan


def machine_key() -> dict:
    hw = hardware.hardware()
    import torch

    return {k: hw[k] for k in ("cpu", "cpu_capability", "cpu_cores", "torch_threads", "gpu")} | {"torch": torch.__version__}


def plan_key(cfg: Config) -> str:
    return hashlib.sha256(json.dumps([cfg.hash(), machine_key()], sort_keys=True).encode()).hexdigest()[:16]


def resolve(cfg: Config, log=print) -> tuple[Config, Plan | None]:
    """The config to run (planned when train.budget_minutes asks for it) and its plan, if any."""
    t = cfg.train
    if not t.budget_minutes or t.max_steps > 0 or cfg.data.streaming:
        return cfg, _read(PLANS / "by-run" / f"{cfg.run_name}.json")  # a planned config: its plan, when known
    key = plan_key(cfg)
    plan = _read(PLANS / f"{key}.json")
    if plan is None:
        plan = make(cfg, key, log)
        _write(PLANS / f"{key}.json", plan)
    else:
        log(f"Plan for this machine (cached): {plan.reason}")
    planned = apply(cfg, plan)
    _write(PLANS / "by-run" / f"{planned.run_name}.json", plan)
    return planned, plan


def apply(cfg: Config, plan: Plan) -> Config:
    t = dataclasses.replace(cfg.train, max_steps=plan.max_steps, eval_steps=plan.eval_steps, save_steps=plan.save_steps,
                            logging_steps=max(1, min(cfg.train.logging_steps, plan.max_steps // 20 or 1)))
    d = dataclasses.replace(cfg.data, max_train_rows=plan.max_train_rows)
    return dataclasses.replace(cfg, train=t, data=d)


def _read(path) -> Plan | None:
    try:
        return from_dict(Plan, json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write(path, plan: Plan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    validate.write_atomic(path, validate.dumps(to_dict(plan), indent=2))


def make(cfg: Config, key: str, log=print) -> Plan:
    """Probe this machine, then size the run to the budget."""
    t0 = time.perf_counter()
    tok, _ = tokens.load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    splits = data.load_splits(cfg.data, cfg.seed)
    train_ds = tokens.tokenize(splits.train, tok, cfg.text, desc="training films")
    val_rows = len(tokens.tokenize(splits.validation, tok, cfg.text, desc="validation films")) if len(splits.validation) else 0
    precision, _ = hardware.resolve_precision(cfg.train.precision)
    log(f"Planning a {cfg.train.budget_minutes:g}-minute run: probing training speed ({precision})...")
    micro_s, (total, trainable) = probe(cfg, tok, train_ds, precision)
    micro_tokens = cfg.train.batch_size * cfg.text.seq_len()
    tok_s = micro_tokens / micro_s
    step_s = micro_s * cfg.train.grad_accum
    eval_s = val_rows * cfg.text.seq_len() / (3 * tok_s)  # a forward pass is about a third of a training step
    rows_per_step = cfg.train.batch_size * cfg.train.grad_accum
    data_steps = max(1, math.floor(len(train_ds) * cfg.train.epochs / rows_per_step))
    budget_s = cfg.train.budget_minutes * 60
    budget_steps = math.floor((budget_s - (EVALS + 1) * eval_s) / step_s)
    steps = max(MIN_STEPS, min(budget_steps, data_steps))
    films = len(splits.train)
    films_needed = math.ceil(steps * rows_per_step / max(cfg.train.epochs, 1) * films / max(len(train_ds), 1) * 1.05) + 8
    every = max(1, steps // EVALS)
    save_every = max(every, steps // 2 // every * every)  # a checkpoint half-way and at the end
    saved = (trainable if cfg.train.lora else total) * 4 + trainable * 8  # weights (or the adapter) + AdamW moments
    save_s = saved / SAVE_BYTES_PER_S
    why = (f"{cfg.train.budget_minutes:g}-minute budget at {tok_s:,.0f} tokens/s ({precision}, measured here): "
           f"{steps} steps of {cfg.tokens_per_step:,} tokens")
    if steps == data_steps and budget_steps > data_steps:
        why += f"; all {films:,} training films fit ({cfg.train.epochs:g} epoch(s)), so the run ends early"
    elif budget_steps < MIN_STEPS:
        why += f"; the budget allows fewer than {MIN_STEPS} steps on this machine, so {MIN_STEPS} are run"
    plan = Plan(key=key, machine=hardware.describe(hardware.hardware()), budget_minutes=cfg.train.budget_minutes,
                probe_seconds=time.perf_counter() - t0, step_seconds=step_s, tokens_per_second=tok_s, eval_seconds=eval_s,
                max_steps=steps, max_train_rows=min(films, films_needed), eval_steps=every, save_steps=save_every,
                planned_seconds=steps * step_s + (steps // every + 1) * eval_s + (steps // save_every) * save_s, reason=why)
    log(f"Plan: {why}.")
    return plan


def probe(cfg: Config, tok, train_ds, precision: str) -> tuple[float, tuple[int, int]]:
    """Seconds per micro-batch (forward, backward, optimizer step) of a throw-away copy of the model, at the
    run's batch shape and precision (the median of PROBE_STEPS timed steps after one warm-up), and the number
    of parameters (all, trainable)."""
    from transformers import default_data_collator

    from moviegpt.trainer import CountOnDevice, StepClock, quiet, training_args, training_model

    rows = cfg.train.batch_size * (PROBE_STEPS + 1)
    subset = train_ds.select([i % len(train_ds) for i in range(rows)])
    model, _ = model_stage.load_model(cfg.model, tok, cfg.seed)
    model = model_stage.adapt(model, cfg)
    probe_cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, grad_accum=1, max_steps=PROBE_STEPS + 1, eval_steps=None, save_steps=None, trainer_args={}))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        args = training_args(probe_cfg, tmp, precision, has_eval=False)
        args.save_strategy, args.logging_steps, args.disable_tqdm, args.report_to = "no", 10 ** 9, True, []
        clock = StepClock()
        trainer = quiet(CountOnDevice(model=training_model(model, cfg), args=args, train_dataset=subset,
                                      data_collator=default_data_collator, callbacks=[clock]))
        with progress.bar(total=1, desc="probe") as bar:
            trainer.train()
            bar.update(1)
    gaps = [b - a for a, b in zip(clock.ends, clock.ends[1:])]
    return statistics.median(gaps), (model_stage.count_parameters(model), model_stage.count_parameters(model, True))
