"""The learning-rate schedule: Trainer's, with a warm-up that trains from its first step, and the two-part
schedule of a run that fixes its step count as it trains (moviegpt.plan)."""

from __future__ import annotations

from torch.optim.lr_scheduler import LambdaLR
from transformers import TrainingArguments


def first_step_warmup(schedule, warmup: int):
    """schedule(step) with its warm-up moved one step earlier: schedule(step + 1) while warming up."""

    def shifted(step: int) -> float:  # a plain function: LambdaLR keeps it out of the scheduler's state dict
        return schedule(min(step + 1, warmup)) if step < warmup else schedule(step)

    return shifted


def schedule_factors(args: TrainingArguments, optimizer, steps: int) -> list:
    """The factors of the peak learning rate Trainer's schedule gives each step of a `steps`-step run, with
    the warm-up training from its first step (first_step_warmup)."""
    from transformers.optimization import get_scheduler

    warmup = args.get_warmup_steps(steps)
    made = get_scheduler(
        args.lr_scheduler_type, optimizer, warmup, steps, scheduler_specific_kwargs=args.lr_scheduler_kwargs
    )
    return [first_step_warmup(f, warmup) if warmup else f for f in made.lr_lambdas]


def resize_schedule(scheduler, args: TrainingArguments, before: int, steps: int, at: int) -> None:
    """A planned run's schedule (moviegpt.plan): the first `at` steps at the rates of a `before`-step run,
    those from step `at` on at the rates of a `steps`-step run (the same when both are equal)."""
    if not isinstance(scheduler, LambdaLR):
        return
    first, then = (schedule_factors(args, scheduler.optimizer, n) for n in (before, steps))
    follow(scheduler, [switched(a, b, at) for a, b in zip(first, then)])


def switched(first, then, at: int):
    def factor(step: int) -> float:  # LambdaLR's step i sets the rate of optimizer step i + 1
        return first(step) if step < at else then(step)

    return factor


def follow(scheduler: LambdaLR, factors: list) -> None:
    """The scheduler goes on with these factors; the optimizer's rates are set to them at once."""
    scheduler.lr_lambdas = factors
    for group, base, f in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, factors):
        group["lr"] = base * f(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
