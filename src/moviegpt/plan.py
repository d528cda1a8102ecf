"""Fit a run to the machine it finds: `train.budget_minutes` becomes a step count and a number of films.

A probe times one micro-batch of the run's own model (the last of PROBE_STEPS; the weights are put back as
they were), at the run's batch shape and precision. The seconds it measures set how many optimizer steps fit
in the budget; the training films are capped to what those steps read, and the learning-rate schedule is
planned for exactly those steps (train.max_steps), so it is never cut off part-way. Everything that is not an
optimizer step is planned inside the budget, not on top of it:
    the probe        its own seconds; measured once per machine and shape, shared by the runs that have that
                     shape (the book's full and LoRA runs), cached
    validation       EVALS passes plus one at step 0, on the first train.eval_rows validation blocks, sized so
                     that all of them together cost about EVAL_SHARE of the budget
    samples          train.samples titles sampled at every validation pass, timed per token by the probe
    checkpoints      none in a run of at most SHORT_RUN minutes (a signal still saves one); in a longer run one
                     half-way. The run saves its model when it ends either way.
The plan is cached per machine and config, so a rebuild reuses it (and so the same run); a given plan is
deterministic. An explicit train.max_steps > 0 skips all of this.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tempfile
import time
from pathlib import Path

from moviegpt import hardware, validate
from moviegpt.config import CACHE_DIR, Config
from moviegpt.artifacts import Plan, from_dict, to_dict

PLANS = CACHE_DIR / "plans"
EVALS = 3  # validation passes in a planned run (a curve, not a point), plus one at step 0 (the base model)
EVAL_SHARE = 0.06  # of the budget, for all validation passes together
MIN_EVAL_ROWS = 4  # a validation pass is never smaller than this many blocks
FORWARD_SHARE = 1 / 3  # a forward pass costs about a third of a training step (forward + backward = 3 forwards)
MIN_STEPS = 4
SHORT_RUN = 10  # minutes: a planned run this short writes no checkpoint unless a signal asks for one
PROBE_STEPS = 4  # micro-batches a probe trains, timing the last: a fresh Trainer's steps slow down for a few steps
# (135M model, 2 cores, fp32 AVX2: 13.2, 10.7, 8.0, 6.9, 6.3, 6.6 s; bf16 likewise), and a plan from the second
# step's time (1.6x the steady one) left a third of the budget unspent


def machine_key() -> dict:
    hw = hardware.hardware()
    import torch

    return {k: hw[k] for k in ("cpu", "cpu_capability", "cpu_cores", "torch_threads", "gpu")} | {
        "torch": torch.__version__
    }


def plan_key(cfg: Config) -> str:
    return hashlib.sha256(json.dumps([cfg.hash(), machine_key()], sort_keys=True).encode()).hexdigest()[:16]


def probe_key(cfg: Config) -> str:
    """What a micro-batch's time depends on: the machine, the model, the shape, the precision and the kernels.
    Not the learning rate, the films or LoRA: the book's full and LoRA runs share one probe (of full training,
    the dearer of the two, so a LoRA run planned from it fits its budget too)."""
    m, t = cfg.model, cfg.train
    shape = [
        m.name,
        m.tokenizer,
        m.n_layer,
        m.n_head,
        m.n_embd,
        m.attn_implementation,
        t.batch_size,
        cfg.text.seq_len(),
        t.precision,
        t.optim,
        t.compile,
        t.loss_only,
        t.vocab_multiple,
        t.trainer_args,
        t.samples,  # titles sampled at once: the sampling probe's batch
    ]
    return hashlib.sha256(json.dumps([shape, machine_key()], sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(cfg: Config) -> tuple[Config, Plan | None] | None:
    """The config to run and its plan when nothing has to be measured; None when a budget still needs a plan."""
    t = cfg.train
    if not t.budget_minutes or t.max_steps > 0 or cfg.data.streaming:
        return cfg, _read(PLANS / "by-run" / f"{cfg.run_name}.json")  # a planned config: its plan, when known
    plan = _read(PLANS / f"{plan_key(cfg)}.json")
    return None if plan is None else _planned(cfg, plan)


def resolve(cfg: Config, prepared, log=print) -> tuple[Config, Plan | None]:
    """The config to run (planned when train.budget_minutes asks for it) and its plan, if any. `prepared` is
    the run's moviegpt.train.Prepared: the probe trains on its films and its model."""
    found = cached(cfg)
    if found is not None:
        if found[1] is not None and cfg.train.budget_minutes and cfg.train.max_steps <= 0:
            log(f"Plan for this machine (cached): {found[1].reason}")
        return found
    plan = make(cfg, plan_key(cfg), prepared, log)
    _write(PLANS / f"{plan.key}.json", plan)
    return _planned(cfg, plan)


def _planned(cfg: Config, plan: Plan) -> tuple[Config, Plan]:
    planned = apply(cfg, plan)
    _write(PLANS / "by-run" / f"{planned.run_name}.json", plan)
    return planned, plan


def apply(cfg: Config, plan: Plan) -> Config:
    t = dataclasses.replace(
        cfg.train,
        max_steps=plan.max_steps,
        eval_steps=plan.eval_steps,
        save_steps=plan.save_steps,
        eval_rows=plan.eval_rows,
        logging_steps=max(1, min(cfg.train.logging_steps, plan.max_steps // 20 or 1)),
    )
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


def make(cfg: Config, key: str, prepared, log=print) -> Plan:
    """Probe this machine (or reuse the probe of a run with the same shape), then size the run to the budget."""
    t = cfg.train
    precision, _ = hardware.resolve_precision(t.precision)
    log(f"Planning a {t.budget_minutes:g}-minute run ({precision})...")
    micro_s, probe_s, probed, token_s = measured(cfg, prepared, precision, log)
    seq = cfg.text.seq_len()
    tok_s = t.batch_size * seq / micro_s
    step_s = micro_s * t.grad_accum
    row_eval_s = micro_s / t.batch_size * FORWARD_SHARE  # one validation block
    budget_s = t.budget_minutes * 60
    val_rows = len(prepared.val_ds) if prepared.val_ds is not None else 0
    eval_rows = min(val_rows, max(MIN_EVAL_ROWS, math.floor(EVAL_SHARE * budget_s / (EVALS + 1) / row_eval_s)))
    eval_s = eval_rows * row_eval_s
    rows_per_step = t.batch_size * t.grad_accum
    blocks, films = len(prepared.train_ds), len(prepared.splits.train)
    data_steps = max(1, math.floor(blocks * t.epochs / rows_per_step))
    samples_s = (EVALS + 1) * (token_s[0] + t.sample_tokens * token_s[1])  # train.samples, at every pass
    budget_steps = math.floor((budget_s - probe_s - (EVALS + 1) * eval_s - samples_s) / step_s)
    steps = max(MIN_STEPS, min(budget_steps, data_steps))
    films_needed = math.ceil(steps * rows_per_step / max(t.epochs, 1) * films / max(blocks, 1) * 1.05) + 8
    every = max(1, math.ceil(steps / EVALS))  # Trainer also validates at the last step: EVALS passes at most
    passes = math.ceil(steps / every)  # every `every` steps and at the end
    save_every = 0 if t.budget_minutes <= SHORT_RUN else max(every, steps // 2 // every * every)
    why = (
        f"{t.budget_minutes:g}-minute budget at {tok_s:,.0f} tokens/s ({precision}, measured here): "
        f"{steps} steps of {cfg.tokens_per_step:,} tokens; {passes} validation passes (the last at the last step) "
        f"and one at step 0 on "
        f"{eval_rows} of {val_rows} validation blocks"
        + (f"; {t.samples} titles sampled at each (about {samples_s:.0f} s in all)" if t.samples else "")
        + ("; no checkpoint in a run this short" if save_every == 0 else f"; a checkpoint every {save_every} steps")
    )
    if steps == data_steps and budget_steps > data_steps:
        why += f"; all {films:,} training films fit ({t.epochs:g} epoch(s)), so the run ends early"
    elif budget_steps < MIN_STEPS:
        why += f"; the budget allows fewer than {MIN_STEPS} steps on this machine, so {MIN_STEPS} are run"
    plan = Plan(
        key=key,
        machine=hardware.describe(hardware.hardware()),
        budget_minutes=t.budget_minutes,
        probe_seconds=probe_s,
        step_seconds=step_s,
        tokens_per_second=tok_s,
        eval_seconds=eval_s,
        max_steps=steps,
        max_train_rows=min(films, films_needed),
        eval_steps=every,
        save_steps=save_every,
        eval_rows=eval_rows or None,
        probed=probed,
        planned_seconds=probe_s + steps * step_s + (passes + 1) * eval_s + samples_s,
        samples_seconds=samples_s,
        reason=why,
    )
    log(f"Plan: {why}.")
    return plan


def measured(cfg: Config, prepared, precision: str, log=print) -> tuple[float, float, bool, tuple[float, float]]:
    """Seconds of one micro-batch at the run's shape, what measuring it cost, whether it was measured now (else
    it is the cached probe of a run with this machine and shape), and for train.samples the seconds a sampling
    pass costs before its first token and per token ((0, 0) without samples)."""
    path = PLANS / "probes" / f"{probe_key(cfg)}.json"
    try:
        found = json.loads(path.read_text())
        log(f"Probe for this machine and shape (cached): {found['micro_seconds']:.2f} s a micro-batch")
        return float(found["micro_seconds"]), float(found["seconds"]), False, tuple(found["sampling_seconds"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    log(f"Probing training speed: {PROBE_STEPS} micro-batches of the run's model, timing the last...")
    t0 = time.perf_counter()
    micro_s = probe(cfg, prepared.model, prepared.train_ds, precision)
    sampling = sampling_probe(cfg, prepared) if cfg.train.samples else (0.0, 0.0)
    found = {"micro_seconds": micro_s, "seconds": time.perf_counter() - t0, "sampling_seconds": list(sampling)}
    path.parent.mkdir(parents=True, exist_ok=True)
    validate.write_atomic(path, json.dumps(found))
    return micro_s, found["seconds"], True, sampling


def sampling_probe(cfg: Config, prepared, short: int = 2, long: int = 10) -> tuple[float, float]:
    """A sampling pass of train.samples titles: its fixed cost (prompt, set-up) and its cost per new token, from
    passes of `short` and `long` tokens (after a warm-up). The base model rarely stops this early."""
    from moviegpt.generate import Sampling, generate_overviews

    films = prepared.splits.test.head(cfg.train.samples).to_dict("records")

    def timed(n: int) -> float:
        t0 = time.perf_counter()
        how = Sampling(max_new_tokens=n)
        generate_overviews(prepared.model, prepared.tok, films, cfg.text.template, how=how, batch_size=len(films))
        return time.perf_counter() - t0

    timed(short)  # warm-up
    a, b = timed(short), timed(long)
    prepared.model.train()
    per_token = max(b - a, 0.0) / (long - short)
    return max(a - short * per_token, 0.0), per_token


def probe(cfg: Config, model, train_ds, precision: str) -> float:
    """Seconds of one micro-batch (forward, backward, optimizer step) of full training at the run's batch shape
    and precision: the last of PROBE_STEPS in one Trainer, so the first ones pay for the optimizer's state, the
    kernels' set-up and the allocator, which a run's later steps do not. It trains the run's own model, through
    the Trainer the run trains with (moviegpt.trainer.build), and puts every weight back as it was: the run
    starts from the same weights with or without a probe."""
    from moviegpt import progress
    from moviegpt.callbacks import StepClock
    from moviegpt.trainer import build

    t = cfg.train
    rows = train_ds.select([i % len(train_ds) for i in range(PROBE_STEPS * t.batch_size)])
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    short = dataclasses.replace(
        cfg,
        train=dataclasses.replace(
            t, grad_accum=1, max_steps=PROBE_STEPS, eval_steps=None, save_steps=0, save_minutes=None
        ),
    )
    clock = StepClock()
    with tempfile.TemporaryDirectory() as tmp, progress.bar(total=1, desc="probe") as bar:
        build(short, model, rows, Path(tmp), precision, saves=False, logs=False, callbacks=[clock]).train()
        bar.update(1)
    model.load_state_dict(saved)
    model.zero_grad(set_to_none=True)
    return clock.ends[-1] - clock.starts[-1]
