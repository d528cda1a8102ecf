"""The introduction's facts: what the book found (the reference study, then this build's runs on its curves), what
ran in this build, and the table of what produced it. Importing this module loads no model library."""

from __future__ import annotations

import pandas as pd

from moviegpt.book import results
from moviegpt.book.records import ORIGINAL, held_out, machine, model_why, original_recipe, run_config, code_note
from moviegpt.book.words import ci, texts
from moviegpt.core import stats
from moviegpt.core.artifacts import SPLITS
from moviegpt.core.rundir import RunDir
from moviegpt.data.movies import WYKONOS_ROWS


def facts(run: RunDir) -> dict:
    """What ran in this build: the model, the films, the steps and the machine, and what came of it."""
    s, info, cfg = run.summary(), run.info(), run_config(run)
    iv = held_out(run)
    films, pool = s.data.used("train") or 0, info.data.splits["train"].available or 0
    return {
        "profile": cfg.profile,
        "model": info.model.split(" (")[0],
        "model_why": model_why(cfg, info.model),
        "source": cfg.data.source,
        "train_pool": f"the {films:,} training films"
        if films >= pool
        else f"the first {films:,} of {pool:,} training films",
        "test_films": s.final.films,
        "steps": s.steps,
        "tokens_trained": s.tokens_seen,
        "epochs": s.epochs,
        "machine": machine(run),
        "precision": info.precision,
        "train_minutes": s.train_runtime_s / 60,
        "ppl_before_ci": ci(iv["before"]),
        "ppl_after_ci": ci(iv["after"]),
        "ratio_ci": ci(iv["ratio"]),
        "improved_films": round(iv["improved"].value * iv["improved"].n),
        "budget": info.plan.budget_minutes if info.plan else 0.0,
        "resamples": stats.RESAMPLES,
        "original": ORIGINAL,
        "wykonos_rows": WYKONOS_ROWS,
        "code_note": code_note(info.code),
        **original_recipe(),
    }


def found(study, runs: dict[str, RunDir], scored: dict) -> dict:
    """The study's answer and this build's place on its curves (moviegpt.book.results), for the first box."""
    table = results.placement(study, runs, scored)
    return results.study_facts(study) | results.placement_facts(table, study)


def provenance(run: RunDir):
    """Everything that produced the book's numbers, read from the run's config.yaml."""
    c, r = run.settings(), run.info()
    rows = {
        "profile": c["profile"],
        "run directory": f"runs/{run.name}",
        "model": r.model,
        "parameters (trained)": f"{r.parameters:,} ({r.trainable_parameters or r.parameters:,})",
        "tokenizer": r.tokenizer,
        "precision": r.precision_note,
        "data source": c["data"]["source"],
        "films (in / after cleaning)": f"{r.data.rows_in or 0:,} / {r.data.rows_out or 0:,}",
        "films used (train / validation / test)": " / ".join(f"{r.data.used(s) or 0:,}" for s in SPLITS),
        "plan": r.plan.reason if r.plan else "none: a fixed step count",
        "hardware": machine(run),
        "versions": ", ".join(f"{k} {v}" for k, v in r.versions.items()),
    }
    return texts(pd.DataFrame({"setting": list(rows), "value": list(rows.values())}))
