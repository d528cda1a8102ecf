"""The budget planner (train.budget_minutes): one timed step becomes a plan, decided before the first step, cached
per machine and checked when read back. Arithmetic only, no model: these run in well under a second. Planned runs
that train are tested in tests/train/test_finetune.py."""

from __future__ import annotations

import json
import math
import os
from types import SimpleNamespace

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moviegpt.core import hardware
from moviegpt.core.artifacts import to_dict
from moviegpt.train import plan as planner
from moviegpt.train.finetune import resolve


def no_estimate(*a, **k):
    raise AssertionError("estimated again although a plan for this machine was cached")


# ------------------------------------------------------------------ the arithmetic (no model, no training)


def test_the_optimizer_is_counted_for_the_weights_a_run_trains(budget, tmp_path):
    cfg = budget(tmp_path, 3)
    full = planner.fit(cfg, batch_s=1.0, estimate_s=1.0, val_rows=40, data_steps=10_000)
    lora = planner.fit(cfg, batch_s=1.0, estimate_s=1.0, val_rows=40, data_steps=10_000, trained=0.005)
    assert full.step_seconds == pytest.approx(1 + planner.OPTIMIZER_SHARE)
    assert lora.step_seconds == pytest.approx(1 + planner.OPTIMIZER_SHARE * 0.005) and lora.max_steps > full.max_steps


def test_a_planned_config_keeps_its_name_through_its_saved_config(budget, tmp_path):
    """config.yaml gives each number back in its field's type (the warm-up is a float): the name computed from a
    planned run's saved config is the directory it was made in, so a chapter that reruns it reuses it."""
    import yaml

    from moviegpt.core.settings import from_dict, save_config

    cfg = budget(tmp_path, 3)
    planned = planner.apply(cfg, planner.fit(cfg, batch_s=1.0, estimate_s=1.0, val_rows=40, data_steps=10_000))
    save_config(planned, tmp_path / "config.yaml")
    again = from_dict(
        {k: v for k, v in yaml.safe_load((tmp_path / "config.yaml").read_text()).items() if k != "run_name"}
    )
    assert again.run_name == planned.run_name


def test_the_budget_binds_and_everything_fits_inside_it(budget, tmp_path):
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


def test_the_films_bind_a_long_budget_and_a_short_one_still_trains(budget, tmp_path):
    long = planner.fit(budget(tmp_path, 60), batch_s=1.0, estimate_s=1.0, val_rows=40, data_steps=50)
    assert long.max_steps == 50 and "every training film is read" in long.reason
    assert long.save_steps > 0  # a run over planner.SHORT_RUN minutes saves half-way
    short = planner.fit(budget(tmp_path, 0.1), batch_s=5.0, estimate_s=1.0, val_rows=40, data_steps=50)
    assert short.max_steps == planner.MIN_STEPS and "fewer than" in short.reason
    none = planner.fit(budget(tmp_path, 3), batch_s=1.0, estimate_s=1.0, val_rows=0, data_steps=500)
    assert none.eval_rows is None and none.eval_steps > none.max_steps and "no validation films" in none.reason


def test_a_plan_applied_fixes_every_number_trainer_needs(budget, tmp_path):
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


def test_a_cached_plan_is_input_and_a_bad_one_is_set_aside(budget, plans, tmp_path, capfd):
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


def test_a_plan_is_made_once_per_machine_and_a_step_count_needs_none(budget, plans, tmp_path, monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(planner, "estimate", lambda model, *a: calls.append(model) or 0.5)
    model = torch.nn.Linear(2, 2)
    prepared = SimpleNamespace(model=model, train_ds=list(range(4000)), val_ds=list(range(40)))
    cfg = budget(tmp_path, 3, "train.epochs=50")
    planned, plan = planner.resolve(cfg, prepared, log=lambda m: None)
    assert calls == [model] and planned.train.max_steps == plan.max_steps
    again, plan2 = planner.resolve(cfg, prepared, log=lambda m: None)
    assert (again, plan2) == (planned, plan) and len(calls) == 1  # a rebuild resolves to the same run
    other = dict(hardware.machine_key(), cpu="another CPU")
    monkeypatch.setattr(hardware, "machine_key", lambda: other)
    planner.resolve(cfg, prepared, log=lambda m: None)
    assert len(calls) == 2  # another machine plans for itself
    monkeypatch.setattr(planner, "estimate", no_estimate)
    fixed = budget(tmp_path, 5, "train.max_steps=6")
    assert not planner.needed(fixed) and resolve(fixed, log=lambda m: None) == (fixed, None)


# ------------------------------------------------------------------ a cached plan is input (hypothesis)


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.dictionaries(
        st.sampled_from(
            ["max_steps", "warmup_steps", "eval_steps", "save_steps", "eval_rows", "step_seconds", "planned_seconds"]
            + ["budget_minutes", "sample_seconds", "reason", "key", "machine", "tokens_per_second"]
        ),
        ANY_VALUE,
        max_size=4,
    )
)
def test_any_mutation_of_a_cached_plan_gives_a_valid_plan_or_none(budget, tmp_path, monkeypatch, changes):
    monkeypatch.setattr(planner, "PLANS", tmp_path / "plans")
    cfg = budget(tmp_path, 3)
    good = planner.fit(cfg, batch_s=1.0, estimate_s=1.0, val_rows=40, data_steps=10_000)
    path = planner.PLANS / f"{good.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_dict(good) | changes))  # NaN and Infinity as JSON writes them
    got = planner.cached(cfg)  # never raises
    assert got is None or (planner.check(got) is None and 1 <= got.max_steps <= 10**7)
