"""The appendix on the full recipe: its step size, and how long one pass over wykonos/movies takes at the speed this
project measured for it on a GPU (benchmarks/results/train_throughput_gpu.json). Importing it loads no model library;
`film_tokens` loads the shipped GPT-2 tokenizer."""

from __future__ import annotations

from moviegpt.core.settings import load_config
from moviegpt.data.movies import WYKONOS_ROWS


def facts(gpu_result: dict, tokens_per_film: float, end_to_end: dict) -> dict:
    """The full recipe's step, and one pass over the full dataset at the GPU run's useful tokens/s (the row named
    "ours": the training loop's steady rate), with `tokens_per_film` GPT-2 tokens per film (the bundled sample's mean),
    beside the rate of the full profile's short end-to-end run (benchmarks/results/gpu_full_profile.json), whose
    compilation, start-up and validation a pass over the full data would pay only once."""
    full = load_config("full")
    ours = next(r for r in gpu_result["throughput"] if r["recipe"] == "ours")
    tokens = WYKONOS_ROWS * tokens_per_film
    return {
        "full_tokens_per_step": full.tokens_per_step,
        "full_batch": full.train.batch_size,
        "full_accum": full.train.grad_accum,
        "full_block": full.text.block_size,
        "full_tokens_per_film": tokens_per_film,
        "full_epoch_tokens": tokens,
        "full_gpu": gpu_result["machine"].get("gpu") or "a GPU",
        "full_gpu_tps": ours["useful_tokens_per_s"],
        "full_epoch_minutes": tokens / ours["useful_tokens_per_s"] / 60,
        "full_e2e_tps": end_to_end["summary"]["tokens_per_second"],
        "full_e2e_steps": end_to_end["summary"]["steps"],
        "full_e2e_overhead": 1
        - end_to_end["summary"]["tokens_seen"] / ours["useful_tokens_per_s"] / end_to_end["summary"]["train_runtime_s"],
    }


def film_tokens() -> float:
    """GPT-2 tokens per film of the bundled sample, written with the default template and ended with EOS."""
    from moviegpt.core.config import DataConfig, TextConfig
    from moviegpt.data import movies, tokens
    from moviegpt.model.tokenizer import load_tokenizer

    tok, _ = load_tokenizer("gpt2-bundled")
    films, _ = movies.load_clean(DataConfig())
    return float(tokens.token_lengths(films, tok, TextConfig().template).mean())
