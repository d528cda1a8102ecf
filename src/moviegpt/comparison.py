"""The book's runs side by side: full fine-tuning against LoRA on the same model, films and budget, with
intervals, and where each run's training time went. Importing it loads no model library.
"""

from __future__ import annotations

import pandas as pd

from moviegpt import stats
from moviegpt.report import numbers, run_config
from moviegpt.results import _ci, verdict
from moviegpt.rundir import RunDir


def comparison(runs: dict[str, RunDir]):
    """The book's runs side by side, measured from their artifacts (the same test films: paired intervals)."""
    rows = {}
    for name, run in runs.items():
        s, info, cfg = run.summary(), run.info(), run_config(run)
        after = _ci(s.final)
        rows[name] = {
            "trainable parameters": info.trainable_parameters or info.parameters,
            "training films": s.data.used("train") or 0,
            "steps": s.steps,
            "tokens trained": s.tokens_seen,
            "learning rate": f"{cfg.train.learning_rate:g}",
            "tokens/s": round(s.tokens_per_second or 0),
            "training minutes": round(s.train_runtime_s / 60, 2),
            "peak memory (MB)": round(s.peak_memory_mb or 0),
            "perplexity after": round(after.value, 2),
            "95% CI": f"{after.lo:,.2f}–{after.hi:,.2f}",
        }
    return numbers(pd.DataFrame(rows).rename_axis("measure").reset_index()).hide(axis="index")


def probe_note(a, b) -> str:
    """One sentence on how the two runs were planned (artifacts.Plan of each, or None for a fixed step count)."""
    if a is None or b is None:
        return "At least one of them ran a fixed step count, not a plan."
    if a.step_seconds == b.step_seconds:
        return (
            "Both were planned from one probe of full training on this machine, so both were given the same "
            "number of steps; a LoRA step costs less, so LoRA used less of its budget."
        )
    return "Each was planned for this machine by its own probe, so they trained different amounts."


def comparison_facts(runs: dict[str, RunDir], main: str = "full fine-tuning", other: str = "LoRA") -> dict:
    (full, lora) = (runs[main], runs[other])
    f, lo = full.summary(), lora.summary()
    gap = stats.perplexity_ratio(f.final.film_nll, f.final.film_tokens, lo.final.film_nll, lo.final.film_tokens)
    fi, li = full.info(), lora.info()
    fc, lc = run_config(full), run_config(lora)
    return {
        "lora_trainable": li.trainable_parameters or 0,
        "full_trainable": fi.trainable_parameters or 0,
        "lora_share": (li.trainable_parameters or 0) / max(fi.parameters, 1),
        "lora_ppl": lo.final.perplexity,
        "full_ppl": f.final.perplexity,
        "lora_gap_ci": f"{gap:.2f}",
        "lora_gap_verdict": verdict(gap, "worse than", "better than", "not measurably different from", none=1.0),
        "lora_speed_x": (lo.tokens_per_second or 0) / max(f.tokens_per_second or 1, 1e-9),
        "lora_memory_x": (lo.peak_memory_mb or 0) / max(f.peak_memory_mb or 1, 1e-9),
        "full_memory_mb": f.peak_memory_mb or 0,
        "lora_memory_mb": lo.peak_memory_mb or 0,
        "adam_state_mb": (fi.trainable_parameters or fi.parameters) * 8 / 2**20,
        "grad_mb": (fi.trainable_parameters or fi.parameters) * 4 / 2**20,
        "weights_mb": fi.parameters * 4 / 2**20,
        "lora_memory_diff": (lo.peak_memory_mb or 0) - (f.peak_memory_mb or 0),
        "memory_verdict": "shows" if (lo.peak_memory_mb or 0) < (f.peak_memory_mb or 0) else "does not show",
        "batch_rows": fc.train.batch_size,
        "row_tokens": fc.text.seq_len(),
        "full_films": f.data.used("train") or 0,
        "lora_films": lo.data.used("train") or 0,
        "full_steps": f.steps,
        "lora_steps": lo.steps,
        "full_tokens": f.tokens_seen,
        "lora_tokens": lo.tokens_seen,
        "full_lr": fc.train.learning_rate,
        "lora_lr": lc.train.learning_rate,
        "budget_minutes": fi.plan.budget_minutes if fi.plan else f.train_runtime_s / 60,
        "full_minutes": f.train_runtime_s / 60,
        "lora_minutes": lo.train_runtime_s / 60,
        "probe_note": probe_note(fi.plan, lora.info().plan),
    }


OVERHEAD_TARGET = 0.15  # validation + checkpoints + probe, at most this share of train_runtime in a planned run


def time_rows(runs: dict[str, RunDir]) -> pd.DataFrame:
    """Each of the book's runs: what its plan predicted and where train_runtime went (RunDir.time_spent), in
    seconds unless named otherwise."""
    rows = []
    for name, run in runs.items():
        t, plan = run.time_spent(), run.info().plan
        rows.append(
            {
                "run": name,
                "budget (min)": f"{plan.budget_minutes:g}" if plan else "",
                "planned": plan.planned_seconds - plan.probe_seconds if plan else None,
                "trained": t["train_runtime_s"],
                "validation": t["validation_s"],
                "passes": t["passes"],
                "saves": t["save_s"],
                "probe": t["probe_s"],
                "not steps": f"{t['overhead_share']:.1%}",
            }
        )
    return pd.DataFrame(rows)


def time_facts(runs: dict[str, RunDir]) -> dict:
    shares = {name: run.time_spent()["overhead_share"] for name, run in runs.items()}
    worst = max(shares.values())
    return {
        "overhead_worst": f"{worst:.1%}",
        "overhead_target": f"{OVERHEAD_TARGET:.0%}",
        "overhead_verdict": "within" if worst <= OVERHEAD_TARGET else "over",
    }
