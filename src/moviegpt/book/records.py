"""A run as the book's pages read it: its config, its evaluation, its log, its machine, and the one place a run's
held-out perplexity gets its interval. Importing this module loads neither torch nor transformers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from moviegpt.core import stats
from moviegpt.core.artifacts import Evaluation, HeldOut, code_version, describe_machine, eval_settings
from moviegpt.core.config import Config
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import load_config, load_run_config

ORIGINAL = "GPT-2 Fine-Tuning on Movie Dataset: Condensed Report"  # the report this book reproduces
DATASET_URL = "https://huggingface.co/datasets/wykonos/movies"


def run_config(run: RunDir) -> Config:
    return load_run_config(run.path)


def evaluation(run: RunDir) -> Evaluation:
    """The run's eval.json; computed (with a model, so torch is imported) only when missing or out of date."""
    ev = run.evaluation()
    if ev is not None and ev.settings == eval_settings():
        return ev
    from moviegpt.eval import evaluate

    return evaluate.evaluate_run(run.path, log=lambda m: None)


def metrics_log(run: RunDir) -> pd.DataFrame:
    return pd.DataFrame(run.metrics())


def loop_rates(run: RunDir) -> list[float]:
    """Tokens per second of each interval between training log rows (metrics.jsonl), validation and saving left
    out: the training loop's own speed."""
    return [r["tokens_per_second"] for r in run.metrics() if r["kind"] == "train" and r.get("tokens_per_second")]


def loop_rate(run: RunDir) -> float:
    """The median of loop_rates (0 when the run logged none)."""
    rates = loop_rates(run)
    return float(np.median(rates)) if rates else 0.0


def machine(run: RunDir) -> str:
    return describe_machine(run.info().hardware)


def perplexity(h: HeldOut) -> stats.Interval:
    """A held-out record's perplexity with its bootstrap interval over the films: the one place it is computed."""
    return stats.perplexity(h.film_nll, h.film_tokens)


def held_out(run: RunDir) -> dict[str, stats.Interval]:
    """Held-out perplexity before and after, and after/before, with bootstrap intervals over the test films."""
    s = run.summary()
    b, f = s.base, s.final
    film_ppl = lambda h: np.array(h.film_nll) / np.maximum(np.array(h.film_tokens), 1)
    return {
        "before": perplexity(b),
        "after": perplexity(f),
        "ratio": stats.perplexity_ratio(b.film_nll, b.film_tokens, f.film_nll, f.film_tokens),
        "improved": stats.share(film_ppl(f) < film_ppl(b)),
    }


def code_note(made_by: dict | None) -> str:
    """Whether the run was made by the code building the book (artifacts.code_version), in a sentence."""
    now = code_version()
    if made_by is None:
        return (
            f"The run does not record the code that made it (it predates that record); this build's code is "
            f"moviegpt {now['version']}, source {now['source']}."
        )
    if made_by.get("source") == now["source"]:
        return f"The run was made by the code that built this book (moviegpt {now['version']}, source {now['source']})."
    return (
        f"The run was made by other code (moviegpt {made_by.get('version')}, source {made_by.get('source')}) "
        f"and reused by this build (moviegpt {now['version']}, source {now['source']}), because its settings "
        "are the same; delete its folder to retrain it with this code."
    )


def model_why(cfg: Config, model: str) -> str:
    """Why this model ran, in one sentence, from the run's config."""
    if cfg.model.requested:
        from moviegpt.model.assets import STAND_INS

        source = model.split("), ", 1)[-1] if "), " in model else model
        weights = STAND_INS.get(cfg.model.name, {}).get("weights")
        return (
            f"It stands in for {cfg.model.requested}, whose weights this machine could not reach (no Hugging Face "
            f"hub, nothing in the local cache); it comes {source}" + (f", and {weights}." if weights else ".")
        )
    return f"The profile asks for it ({cfg.model.name})."


def original_recipe() -> dict:
    """The original report's recipe as configs/seed.yaml states it."""
    seed = load_config("seed")
    return {
        "orig_epochs": seed.train.epochs,
        "orig_batch": seed.train.batch_size,
        "orig_length": seed.text.max_length,
        "orig_batching": seed.text.batching,
        "orig_lr": seed.train.learning_rate,
        "orig_precision": seed.train.precision,
        "orig_scheduler": seed.train.lr_scheduler,
    }
