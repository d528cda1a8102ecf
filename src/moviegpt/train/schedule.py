"""The learning-rate schedule: Trainer's, with a warm-up that trains from its first step.

transformers' warm-up gives step 1 a learning rate of 0: a step wasted, which in a 10-step run is a tenth of the
run. Here step k of a w-step warm-up has k/w of the peak (k = 1..w), and the schedule after it is transformers'
own. What that costs in quality against transformers' warm-up: benchmarks/results/warmup_quality.json.
"""

from __future__ import annotations

from torch.optim.lr_scheduler import LambdaLR
from transformers import TrainingArguments


def first_step_warmup(schedule, warmup: int):
    """schedule(step) with its warm-up moved one step earlier: schedule(step + 1) while warming up."""

    def shifted(step: int) -> float:  # a plain function: LambdaLR keeps it out of the scheduler's state dict
        return schedule(min(step + 1, warmup)) if step < warmup else schedule(step)

    return shifted


def first_step(made, args: TrainingArguments, steps: int):
    """Trainer's scheduler for a `steps`-step run (`made`), with its warm-up training from its first step: a new
    LambdaLR over the same optimizer and the same factors, shifted while warming up. A schedule that is not a
    LambdaLR (reduce-on-plateau) or has no warm-up is returned as it is."""
    warmup = args.get_warmup_steps(steps)
    if not isinstance(made, LambdaLR) or not warmup:
        return made
    for group in made.optimizer.param_groups:  # Trainer's scheduler set each rate to its step-0 value; the new one
        group["lr"] = group["initial_lr"]  # starts from the peak, as any new scheduler does
    return LambdaLR(made.optimizer, [first_step_warmup(f, warmup) for f in made.lr_lambdas])
