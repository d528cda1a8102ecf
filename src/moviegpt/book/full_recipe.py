"""The appendix on the full recipe: its step size, and how long it takes on the GPU this project measured."""

from __future__ import annotations

from moviegpt.core.settings import load_config


def full_recipe_facts() -> dict:
    full = load_config("full")
    return {
        "full_tokens_per_step": full.tokens_per_step,
        "full_batch": full.train.batch_size,
        "full_accum": full.train.grad_accum,
        "full_block": full.text.block_size,
    }
