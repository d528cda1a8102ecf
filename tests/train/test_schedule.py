"""moviegpt.train.schedule: Trainer's schedule with a warm-up that trains from its first step, made without training."""

import pytest
import torch
from transformers import TrainingArguments, get_scheduler

from moviegpt.train import schedule


def made(kind: str, warmup: int, steps: int):
    opt = torch.optim.AdamW([torch.zeros(2, requires_grad=True)], lr=1e-3)
    args = TrainingArguments(output_dir="unused", lr_scheduler_type=kind, warmup_steps=warmup, report_to="none")
    return opt, args, get_scheduler(kind, opt, warmup, steps)


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant_with_warmup"])
def test_step_k_of_the_warm_up_trains_at_k_over_w_of_the_peak_and_the_rest_is_transformers(kind):
    steps, warmup = 20, 4
    opt, args, theirs = made(kind, warmup, steps)
    factor = theirs.lr_lambdas[0]
    ours = schedule.first_step(theirs, args, steps)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])  # the rate the next optimizer step uses
        opt.step()
        ours.step()
    assert rates[:warmup] == pytest.approx([1e-3 * k / warmup for k in range(1, warmup + 1)])
    assert rates[warmup:] == pytest.approx([1e-3 * factor(i) for i in range(warmup, steps)])
    assert rates[0] > 0  # transformers' own warm-up gives step 1 a rate of 0


def test_no_warm_up_leaves_transformers_scheduler_as_it_is():
    opt, args, theirs = made("linear", 0, 10)
    assert schedule.first_step(theirs, args, 10) is theirs


def test_the_schedule_resumes_from_its_state_dict():
    steps, warmup = 12, 3
    opt, args, theirs = made("cosine", warmup, steps)
    ours = schedule.first_step(theirs, args, steps)
    for _ in range(5):
        opt.step()
        ours.step()
    state = ours.state_dict()
    opt2, args2, theirs2 = made("cosine", warmup, steps)
    again = schedule.first_step(theirs2, args2, steps)
    again.load_state_dict(state)  # what Trainer does on resume: the functions are rebuilt, the step is restored
    assert again.get_last_lr() == pytest.approx(ours.get_last_lr())
