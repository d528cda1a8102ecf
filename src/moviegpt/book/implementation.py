"""The Implementation chapter's facts and tables: the settings that applied, the run's files and model card, how a
budgeted run was sized, and where its training time went. Importing it loads no model library."""

from __future__ import annotations

import pandas as pd
import yaml

from moviegpt.book.records import loop_rate
from moviegpt.book.words import numbers
from moviegpt.core.config import Config
from moviegpt.core.rundir import RunDir


def applied(cfg: Config) -> dict:
    """The settings that applied to a run: no place on disk, no section or key its other settings switch off."""
    d = cfg.to_dict()
    d.pop("runs_dir")
    if not cfg.train.lora:
        d.pop("lora")
    if cfg.model.name != "scratch":
        for k in ("n_layer", "n_head", "n_embd", "n_positions", "dropout"):
            d["model"].pop(k)
    if cfg.text.batching != "pack":
        d["text"].pop("block_size")
    if cfg.data.source == "bundled" or "/" not in cfg.data.source:
        d["data"].pop("hub_split")
    if cfg.train.max_steps > 0:
        d["train"].pop("epochs")
    if not cfg.data.streaming and "://" not in cfg.data.source and "/" not in cfg.data.source:
        d["data"].pop("timeout_s")  # remote reads only
    for section in ("data", "text", "model", "train"):
        d[section] = {k: v for k, v in d[section].items() if v not in (None, {}, [])}
    return d


class _Dumper(yaml.SafeDumper):
    """YAML as a person writes it: a text with newlines (the template) as a literal block."""


_Dumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
)


def config_yaml(cfg: Config) -> str:
    return yaml.dump(applied(cfg), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def run_files(run: RunDir):
    """Every file of a run with its size, checkpoints folded to one line each."""
    rows = []
    for p in sorted(run.path.rglob("*")):
        rel = p.relative_to(run.path)
        folded = rel.parts[0] in ("checkpoints", "tensorboard") and len(rel.parts) > 2
        if p.is_file() and not folded and not p.name.startswith("."):
            rows.append((str(rel), p.stat().st_size))
        elif p.is_dir() and rel.parts[0] == "checkpoints" and len(rel.parts) == 2:
            rows.append((f"{rel}/", sum(f.stat().st_size for f in p.rglob("*") if f.is_file())))
    return numbers(pd.DataFrame(rows, columns=["file", "bytes"]).set_index("file"))


def card_data(run: RunDir) -> dict:
    """The model card's machine-readable part (what the hub's tooling reads)."""
    from huggingface_hub import ModelCard

    d = ModelCard.load(str(run.model_dir / "README.md")).data.to_dict()
    return {k: d.get(k) for k in ("base_model", "datasets", "license", "pipeline_tag", "tags")}


# ------------------------------------------------------------------ how a budgeted run was sized, and what it took


TOLERANCE = 0.20  # a plan's target: the run takes within this share of its planned time (benchmarks/plan.py)


def plan_facts(run: RunDir) -> dict:
    """How the main run was sized (its plan, from config.yaml), in the numbers the chapter states."""
    from moviegpt.train.plan import DEADLINE_FACTOR

    plan = run.info().plan
    if plan is None:
        return {
            "plan_reason": "none: the run was given a step count",
            "plan_estimate_s": 0.0,
            "plan_budget": 0.0,
            "plan_step_s": 0.0,
            "plan_deadline": DEADLINE_FACTOR,
        }
    return {
        "plan_deadline": DEADLINE_FACTOR,
        "plan_reason": plan.reason,
        "plan_estimate_s": plan.estimate_seconds,
        "plan_budget": plan.budget_minutes,
        "plan_step_s": plan.step_seconds,
    }


def time_rows(runs: dict[str, RunDir]) -> pd.DataFrame:
    """Each of the book's runs: its planned time against the time it took (the estimate plus Trainer's
    train_runtime), and where train_runtime went (RunDir.time_spent), in seconds."""
    rows = []
    for name, run in runs.items():
        t, plan = run.time_spent(), run.info().plan
        took = t["estimate_s"] + t["train_runtime_s"]
        rows.append(
            {
                "run": name,
                "planned": plan.planned_seconds if plan else None,
                "took": took,
                "took / planned": f"{took / plan.planned_seconds:.2f}" if plan else "",
                "validation": t["validation_s"],
                "samples": t["samples_s"],
                "saves": t["save_s"],
                "estimate": t["estimate_s"],
            }
        )
    return pd.DataFrame(rows)


def time_facts(runs: dict[str, RunDir]) -> dict:
    """The plans' error against what the runs took, the worst one, and whether it is within TOLERANCE."""
    errors = {}
    for name, run in runs.items():
        plan, t = run.info().plan, run.time_spent()
        if plan:
            errors[name] = (t["estimate_s"] + t["train_runtime_s"]) / plan.planned_seconds - 1
    budgets = sorted({f"{p.budget_minutes:g}" for p in (r.info().plan for r in runs.values()) if p})
    if not errors:
        return {
            "overhead_budgets": "a step count, no budget",
            "plan_worst": "none (no run was planned)",
            "plan_verdict": "not applicable to",
            "plan_tolerance": f"{TOLERANCE:.0%}",
        }
    worst = max(errors, key=lambda k: abs(errors[k]))
    return {
        "overhead_budgets": f"a budget of {' or '.join(budgets)} minutes",
        "plan_worst": f"{errors[worst]:+.0%} ({worst})",
        "plan_verdict": "within" if abs(errors[worst]) <= TOLERANCE else "outside",
        "plan_tolerance": f"{TOLERANCE:.0%}",
    }


def throughput_facts(run: RunDir) -> dict:
    """The run's tokens/s and MFU in the loop (metrics.jsonl's training rows), and what its MFU is stated against."""
    import numpy as np

    rows = [r for r in run.metrics() if r["kind"] == "train" and r.get("tokens_per_second")]
    gpu = run.info().hardware.get("gpu")
    peak = next((r["mfu_peak_flops"] for r in rows if r.get("mfu_peak_flops")), None)
    what = (
        f"the vendor's dense bf16 peak of the {gpu}"
        if gpu
        else "the matmul peak measured once on this CPU at the run's precision"
    )
    mfus = [r["mfu"] for r in rows if r.get("mfu") is not None]
    return {
        "loop_intervals": len(rows),
        "loop_tps_median": loop_rate(run),
        "loop_mfu_median": f"{np.median(mfus):.1%}" if mfus else "not stated (no native peak for this precision)",
        "loop_peak": f"{what}, {peak / 1e9:,.0f} GFLOP/s" if peak else "none",
    }
