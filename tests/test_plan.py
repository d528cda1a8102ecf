"""The budget planner (train.budget_minutes): an estimate, then the run's own step, become a plan that is cached,
recorded in config.yaml, deterministic to train, and overridden by an explicit step count."""

from __future__ import annotations

import math

import pytest
import yaml
from safetensors.torch import load_file

from moviegpt import load_config, plan as planner
from moviegpt.train import resolve, run


@pytest.fixture
def plans(tmp_path, monkeypatch):
    """Plans go to a temporary cache, not the user's."""
    monkeypatch.setattr(planner, "PLANS", tmp_path / "plans")
    return tmp_path / "plans"


def budget(tmp_path, minutes: float, *extra: str):
    return load_config("smoke", [f"runs_dir={tmp_path / 'runs'}", f"train.budget_minutes={minutes}", *extra])


def schedule(peak: float, steps: int, warmup: int) -> list[float]:
    """The rate each step of a planned run uses: transformers' cosine schedule with its warm-up moved one step
    earlier (moviegpt.trainer.first_step_warmup), so the first step trains at peak / warmup, not at 0."""
    import torch
    from transformers import get_scheduler

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak)
    base = get_scheduler("cosine", opt, num_warmup_steps=warmup, num_training_steps=steps).lr_lambdas[0]
    return [peak * (base(min(i + 1, warmup)) if i < warmup else base(i)) for i in range(steps)]


def no_estimate(*a, **k):
    raise AssertionError("estimated again although a plan for this machine was cached")


def test_a_budget_becomes_a_first_plan_that_is_cached_per_machine(plans, tmp_path, monkeypatch):
    cfg = budget(tmp_path, 0.1, "data.max_train_rows=4000", "train.epochs=50")  # 6 s: the budget binds, not the data
    planned, plan = resolve(cfg, log=lambda m: None)
    assert plan is not None and plan.budget_minutes == 0.1 and plan.tokens_per_second > 0 and plan.probe_seconds > 0
    assert plan.max_steps == plan.schedule_steps >= planner.MIN_STEPS and plan.data_steps > plan.max_steps
    # until the run measures itself: as many steps as the films allow, no validation pass and no checkpoint
    assert not plan.measured_step and planned.train.max_steps == plan.data_steps < plan.eval_steps
    assert planned.train.eval_rows == plan.eval_rows >= planner.MIN_EVAL_ROWS and plan.save_steps == 0
    assert planned.train.warmup_steps == plan.warmup_steps == math.ceil(0.1 * plan.max_steps)  # smoke: 10%
    assert plan.planned_seconds <= 0.1 * 60 * 1.2 or plan.max_steps == planner.MIN_STEPS, plan
    assert f"about {plan.max_steps} steps" in plan.reason and planned.run_name == f"smoke-{plan.key[:8]}"

    monkeypatch.setattr(planner, "estimate", no_estimate)
    again, plan2 = resolve(cfg, log=lambda m: None)
    assert again == planned and plan2 == plan  # a rebuild on this machine resolves to the same run

    other = dict(planner.machine_key(), cpu="another CPU")
    monkeypatch.setattr(planner, "machine_key", lambda: other)
    with pytest.raises(AssertionError, match="estimated again"):
        resolve(cfg, log=lambda m: None)  # another machine plans for itself


def test_an_explicit_step_count_overrides_the_budget(plans, tmp_path, monkeypatch):
    monkeypatch.setattr(planner, "estimate", no_estimate)
    cfg = budget(tmp_path, 5, "train.max_steps=6")
    planned, plan = resolve(cfg, log=lambda m: None)
    assert plan is None and planned == cfg and planned.train.max_steps == 6


def test_a_planned_run_fixes_its_steps_as_it_trains_and_a_rerun_trains_the_same_weights(plans, tmp_path):
    extra = ["data.max_train_rows=4000", "train.epochs=50"]  # the budget binds, not the films
    cfg = budget(tmp_path, 0.15, *extra)
    first = run(cfg, log=lambda m: None)
    plan = first.info().plan
    assert plan is not None and plan.measured_step == planner.MEASURED_STEP and plan.max_steps < plan.data_steps
    assert first.summary().steps == plan.max_steps  # the whole schedule ran: none cut off, none extended
    assert plan.save_steps == 0 and "no checkpoint" in plan.reason and f"{plan.max_steps} steps" in plan.reason
    assert plan.planned_seconds <= 0.15 * 60 * 1.2 or "fewer than" in plan.reason, plan
    logged = {m["step"]: m["learning_rate"] for m in first.metrics() if m["kind"] == "train" and "learning_rate" in m}
    # steps 1..MEASURED_STEP at the rates of the estimate's schedule, the rest at those of the measured one, which
    # ends at the last step; Trainer logs the rate each step used, and the warm-up trains from the first step
    before, after = (
        schedule(cfg.train.learning_rate, n, plan.warmup_steps) for n in (plan.schedule_steps, plan.max_steps)
    )
    assert logged[1] > 0 and len(logged) == plan.max_steps
    for step, lr in logged.items():
        assert lr == pytest.approx((before if step <= plan.measured_step else after)[step - 1], abs=1e-9), step
    recorded = yaml.safe_load((first.path / "config.yaml").read_text())
    assert recorded["train"]["max_steps"] == plan.max_steps and recorded["resolved"]["plan"]["reason"] == plan.reason
    spent = first.time_spent()  # where its training time went (benchmarks/budget_share.py prints it)
    assert spent["passes"] <= planner.EVALS + 1 and spent["saves"] == 0 and spent["probe_s"] == plan.probe_seconds
    assert 0 < spent["validation_s"] < spent["train_runtime_s"]

    again = run(budget(tmp_path / "again", 0.15, *extra), log=lambda m: None)  # from the cached plan
    assert again.path.name == first.path.name and again.info().plan == plan
    a, b = load_file(first.model_dir / "model.safetensors"), load_file(again.model_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)  # the same plan trains the same weights


def test_the_estimate_runs_the_runs_own_model_and_changes_nothing(tmp_path):
    import torch

    from moviegpt import train

    cfg = budget(tmp_path, 0.1)
    prepared = train.prepare(cfg, log=lambda m: None)
    before, mode = {k: v.clone() for k, v in prepared.model.state_dict().items()}, prepared.model.training
    assert planner.estimate(cfg, prepared.model, prepared.train_ds, "fp32") > 0
    after = prepared.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in prepared.model.parameters()) and prepared.model.training == mode


def test_each_run_is_estimated_for_itself(plans, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(planner, "estimate", lambda *a: calls.append(a[0].train.lora) or 0.01)
    full, plan = resolve(budget(tmp_path, 0.1), log=lambda m: None)
    lora, lora_plan = resolve(budget(tmp_path, 0.1, "train.lora=true", "train.learning_rate=1e-3"), log=lambda m: None)
    assert calls == [False, True]  # LoRA's steps cost what they cost: no run is planned from another's time
    assert lora.run_name != full.run_name and lora_plan.key != plan.key


def test_what_the_plan_cuts_changes_the_time_not_the_weights(tmp_path):
    """Fewer validation passes and no mid-run checkpoint (the plan's cuts) leave the trained weights bit for bit
    as they were: at the same steps they cost no held-out quality, and the time they free buys more steps."""
    import torch

    from moviegpt.rundir import RunDir

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
