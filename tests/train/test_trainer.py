"""moviegpt.train.trainer: TrainingArguments from the config, the settings moviegpt owns, and how a batch of films
kept apart reaches the model."""

import pytest
import torch

from moviegpt import load_config
from moviegpt.core.errors import UserError
from moviegpt.train import trainer


def test_every_setting_reaches_training_arguments_once(tmp_path):
    cfg = load_config("smoke", ["train.learning_rate=1e-3", "train.warmup_steps=3"])
    args = trainer.training_args(cfg, tmp_path, "fp32", has_eval=True)
    assert args.learning_rate == 1e-3 and args.warmup_steps == 3 and args.eval_on_start
    assert args.include_num_input_tokens_seen == "non_padding" and args.seed == args.data_seed == cfg.seed
    assert "learning_rate" in trainer.own_args() and "logging_nan_inf_filter" not in trainer.own_args()


def test_trainer_args_may_not_name_what_moviegpt_sets_or_what_does_not_exist():
    with pytest.raises(UserError, match="set by moviegpt itself"):
        trainer.check_args({"learning_rate": 1.0})
    with pytest.raises(UserError, match="did you mean 'gradient_checkpointing'"):
        trainer.check_args({"gradient_checkpointng": True})
    with pytest.raises(UserError, match="must be bool"):
        trainer.check_args({"gradient_checkpointing": "yes"})
    trainer.check_args({"gradient_checkpointing": True})  # a real field moviegpt leaves alone


def test_films_kept_apart_are_batched_without_a_cache_or_a_mask():
    rows = [
        {"input_ids": [1, 2, 3, 4], "position_ids": [0, 1, 0, 1], "labels": [1, 2, -100, 4]},
        {"input_ids": [5, 6, 7, 8], "position_ids": [0, 1, 2, 3], "labels": [5, 6, 7, 8]},
    ]
    batch = trainer.keep_apart_collator(rows)
    assert batch["use_cache"] is False and "attention_mask" not in batch
    assert torch.equal(batch["position_ids"], torch.tensor([[0, 1, 0, 1], [0, 1, 2, 3]]))
