"""The budget planner (train.budget_minutes): one timed step becomes a plan, decided before the first step, cached
per machine, checked when read back, recorded in config.yaml, and deterministic to train. The arithmetic is tested
without training (fast); one test trains a planned run twice."""

from __future__ import annotations

import json
import math
import os
from types import SimpleNamespace

import pytest
import yaml
from safetensors.torch import load_file

from moviegpt import load_config
from moviegpt.core import hardware
from moviegpt.core.artifacts import to_dict
from moviegpt.train import plan as planner
from moviegpt.train.finetune import resolve, run


@pytest.fixture
def plans(tmp_path, monkeypatch):
    """Plans go to a temporary cache, not the user's."""
    monkeypatch.setattr(planner, "PLANS", tmp_path / "plans")
    return tmp_path / "plans"


def budget(tmp_path, minutes: float, *extra: str):
    return load_config("smoke", [f"runs_dir={tmp_path / 'runs'}", f"train.budget_minutes={minutes}", *extra])


def no_estimate(*a, **k):
    raise AssertionError("estimated again although a plan for this machine was cached")


# ------------------------------------------------------------------ the arithmetic (no model, no training)


def test_the_budget_binds_and_everything_fits_inside_it(tmp_path):
    cfg = budget(tmp_path, 3, "train.samples=2")  # 180 s; smoke: batch 8 x 128 tokens, 10% warm-up
    plan = planner.fit(cfg, batch_s=1.0, estimate_s=2.0, val_rows=1000, data_steps=10_000)
    step = 1.0 * (1 + planner.OPTIMIZER_SHARE)
    assert plan.step_seconds == pytest.approx(step)
    passes = (planner.EVALS + 1) * (plan.eval_seconds + plan.sample_seconds)
    assert plan.max_steps == math.floor((180 - 2.0 - passes - planner.SLOW_START * step) / step)
    assert plan.planned_seconds == pytest.approx(2.0 + (plan.max_steps + planner.SLOW_START) * step + passes)
    assert 180 - step < plan.planned_seconds <= 180  # the budget is spent, to within one step
    assert plan.warmup_steps == math.ceil(0.1 * plan.max_steps) and plan.save_steps == 0  # a short run saves none
    assert plan.eval_steps == math.ceil(plan.max_steps / planner.EVALS)  # EVALS passes and one at step 0
    assert plan.sample_seconds == pytest.approx(planner.SAMPLE_SHARE * 180 / (planner.EVALS + 1))
    assert (planner.EVALS + 1) * plan.eval_seconds == pytest.approx(planner.EVAL_SHARE * 180, rel=0.1)
    assert f"so {plan.max_steps} steps of 1,024 tokens" in plan.reason


def test_the_films_bind_a_long_budget_and_a_short_one_still_trains(tmp_path):
    long = planner.fit(budget(tmp_path, 60), batch_s=1.0, estimate_s=1.0, val_rows=40, data_steps=50)
    assert long.max_steps == 50 and "every training film is read" in long.reason
    assert long.save_steps > 0  # a run over planner.SHORT_RUN minutes saves half-way
    short = planner.fit(budget(tmp_path, 0.1), batch_s=5.0, estimate_s=1.0, val_rows=40, data_steps=50)
    assert short.max_steps == planner.MIN_STEPS and "fewer than" in short.reason
    none = planner.fit(budget(tmp_path, 3), batch_s=1.0, estimate_s=1.0, val_rows=0, data_steps=500)
    assert none.eval_rows is None and none.eval_steps > none.max_steps and "no validation films" in none.reason


def test_a_plan_applied_fixes_every_number_trainer_needs(tmp_path):
    cfg = budget(tmp_path, 3)
    plan = planner.fit(cfg, batch_s=1.0, estimate_s=1.0, val_rows=40, data_steps=10_000)
    planned = planner.apply(cfg, plan)
    t = planned.train
    assert (t.max_steps, t.warmup_steps, t.eval_steps, t.eval_rows, t.save_steps) == (
        plan.max_steps,
        plan.warmup_steps,
        plan.eval_steps,
        plan.eval_rows,
        plan.save_steps,
    )
    assert planned.run_name == f"smoke-{planned.hash()}-{hardware.machine_tag()}"  # a budgeted run names its machine
    assert cfg.hash() != planned.hash()  # the fixed step count is part of the name


def test_a_cached_plan_is_input_and_a_bad_one_is_set_aside(plans, tmp_path, capfd):
    cfg = budget(tmp_path, 3)
    good = planner.fit(cfg, batch_s=1.0, estimate_s=1.0, val_rows=40, data_steps=10_000)
    path = plans / f"{good.key}.json"
    planner.write(path, good)
    assert planner.cached(cfg) == good
    for damage in (
        lambda d: d | {"max_steps": 10**9},  # a hang
        lambda d: d | {"max_steps": -5},  # a run that stops at once and is marked finished
        lambda d: d | {"warmup_steps": 10**6},
        lambda d: d | {"step_seconds": "fast"},
    ):
        path.write_text(json.dumps(damage(to_dict(good))))
        assert planner.cached(cfg) is None  # planned afresh
        assert path.with_name(path.name + ".damaged").is_file() and not path.exists()
        assert "set aside the cached plan" in capfd.readouterr().err
    path.write_text('{"key": "cut sh')
    assert planner.cached(cfg) is None and not path.exists()
    os.mkfifo(path)  # a FIFO would hang a reader
    assert planner.cached(cfg) is None
    path.unlink(missing_ok=True)
    path.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text(json.dumps(to_dict(good)))
    assert planner.cached(cfg) is None  # a link is not followed out of the cache


def test_a_plan_is_made_once_per_machine_and_a_step_count_needs_none(plans, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(planner, "estimate", lambda model, *a: calls.append(model) or 0.5)
    prepared = SimpleNamespace(model="the model", train_ds=list(range(4000)), val_ds=list(range(40)))
    cfg = budget(tmp_path, 3, "train.epochs=50")
    planned, plan = planner.resolve(cfg, prepared, log=lambda m: None)
    assert calls == ["the model"] and planned.train.max_steps == plan.max_steps
    again, plan2 = planner.resolve(cfg, prepared, log=lambda m: None)
    assert (again, plan2) == (planned, plan) and len(calls) == 1  # a rebuild resolves to the same run
    other = dict(hardware.machine_key(), cpu="another CPU")
    monkeypatch.setattr(hardware, "machine_key", lambda: other)
    planner.resolve(cfg, prepared, log=lambda m: None)
    assert len(calls) == 2  # another machine plans for itself
    monkeypatch.setattr(planner, "estimate", no_estimate)
    fixed = budget(tmp_path, 5, "train.max_steps=6")
    assert not planner.needed(fixed) and resolve(fixed, log=lambda m: None) == (fixed, None)


# ------------------------------------------------------------------ with the smoke model


def test_the_estimate_runs_the_runs_own_model_and_changes_nothing(tmp_path):
    import torch

    from moviegpt.train import finetune

    cfg = budget(tmp_path, 0.1)
    prepared = finetune.prepare(cfg, log=lambda m: None)
    before, mode = {k: v.clone() for k, v in prepared.model.state_dict().items()}, prepared.model.training
    assert planner.estimate(prepared.model, prepared.train_ds, cfg.train.batch_size, "fp32") > 0
    after = prepared.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in prepared.model.parameters()) and prepared.model.training == mode
    lora = planner.trained_as(budget(tmp_path, 0.1, "train.lora=true"), prepared.model)
    assert lora is not prepared.model and not hasattr(prepared.model, "peft_config")  # adapters on a copy


def test_a_planned_run_trains_its_plan_and_a_rerun_trains_the_same_weights(plans, tmp_path):
    from moviegpt.train.schedule import first_step_warmup

    extra = ["data.max_train_rows=4000", "train.epochs=50"]  # the budget binds, not the films
    cfg = budget(tmp_path, 0.15, *extra)
    first = run(cfg, log=lambda m: None)
    plan = first.info().plan
    assert plan is not None and first.summary().steps == plan.max_steps  # none cut off, none extended
    assert first.path.name.endswith(hardware.machine_tag())
    recorded = yaml.safe_load((first.path / "config.yaml").read_text())
    assert recorded["train"]["max_steps"] == plan.max_steps and recorded["resolved"]["plan"]["reason"] == plan.reason
    logged = {m["step"]: m["learning_rate"] for m in first.metrics() if m["kind"] == "train" and "learning_rate" in m}
    import torch
    from transformers import get_scheduler

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.train.learning_rate)
    cosine = get_scheduler("cosine", opt, plan.warmup_steps, plan.max_steps).lr_lambdas[0]
    rate = first_step_warmup(cosine, plan.warmup_steps)
    assert logged[1] > 0 and len(logged) == plan.max_steps  # the warm-up trains from the first step
    for step, lr in logged.items():  # Trainer's cosine for the plan's steps: decided once, before step 1
        assert lr == pytest.approx(cfg.train.learning_rate * rate(step - 1), abs=1e-9), step
    spent = first.time_spent()
    assert spent["passes"] <= planner.EVALS + 1 and spent["saves"] == 0

    again = run(budget(tmp_path / "again", 0.15, *extra), log=lambda m: None)  # from the cached plan
    assert again.path.name == first.path.name and again.info().plan == plan
    a, b = load_file(first.model_dir / "model.safetensors"), load_file(again.model_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)  # the same plan trains the same weights


def test_what_the_plan_cuts_changes_the_time_not_the_weights(tmp_path):
    """Fewer validation passes and no mid-run checkpoint (the plan's cuts) leave the trained weights bit for bit
    as they were: at the same steps they cost no held-out quality, and the time they free buys more steps."""
    import torch

    from moviegpt.core.rundir import RunDir

    often = ["train.eval_steps=2", "train.save_steps=2", "train.samples=2"]  # the old way: every 2 of 8 steps
    rare = ["train.eval_steps=8", "train.save_steps=0"]  # the plan's way: few passes, no checkpoint
    runs = {}
    for name, extra in (("often", often), ("rare", rare)):
        cfg = load_config("smoke", [f"runs_dir={tmp_path / name}", "train.max_steps=8", "train.epochs=1", *extra])
        runs[name] = RunDir(run(cfg, log=lambda m: None))
    spent = {name: r.time_spent() for name, r in runs.items()}
    assert spent["often"]["saves"] == 4 and spent["rare"]["saves"] == 0
    assert spent["often"]["passes"] > spent["rare"]["passes"]
    a, b = (load_file(runs[n].model_dir / "model.safetensors") for n in ("often", "rare"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert runs["often"].summary().final.perplexity == runs["rare"].summary().final.perplexity
