"""The Performance chapter's data: the committed benchmark results (benchmarks/results/*.json), as tables and
numbers. Each result names its machine and the roles of its rows (which one is the baseline, which ours), so
nothing here knows a benchmark's row labels. Sentences are the chapter's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from moviegpt.book.words import numbers as shown  # noqa: F401 (the chapter's perf.shown: a table with thousands separators)
from moviegpt.core.artifacts import describe_machine as describe
from moviegpt.core.config import save_interval
from moviegpt.core.mfu import llmc_flops_per_token, spec_peak


def results(root: Path) -> dict:
    """Every committed result by name (each records the machine it ran on)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((Path(root) / "benchmarks" / "results").glob("*.json"))}


def machine(result: dict) -> str:
    m = result["machine"]
    return f"{describe(m)}, {m.get('torch_threads', m.get('cpu_cores', '?'))} threads, torch {m.get('torch', '?')}"


def recipe(result: dict, name: str = "base", kind: str = "variants") -> dict:
    """A benchmarked recipe's settings as its result file records them: the base's --set overrides, then those of
    the named variant (a throughput row, or a time-to-quality arm), by their last key ("n_layer": "4")."""
    rec = result["recipes"]
    extra = [] if name == "base" else rec.get(kind, {})[name]
    return {k.rsplit(".", 1)[-1]: v for k, v in (o.split("=", 1) for o in [*rec["base"], *extra])}


def recipe_numbers(result: dict, prefix: str, names=("ours",), kind: str = "variants") -> dict:
    """The recipe facts the chapter's prose names, glued from the result: model shape, and for the original
    ("orig") and each named variant its batching, length, batch, precision, learning rate and schedule."""
    base = recipe(result)
    out = {f"{prefix}layers": base["n_layer"], f"{prefix}width": base["n_embd"]}
    for label, name in (("orig", "base"), *((n.replace(" ", "_"), n) for n in names)):
        r = recipe(result, name, kind)
        out |= {
            f"{prefix}{label}_{k}": r[k]
            for k in (
                "batching",
                "max_length",
                "block_size",
                "batch_size",
                "precision",
                "learning_rate",
                "lr_scheduler",
                "warmup_steps",
            )
            if k in r
        }
    return out


def throughput_runs(res: dict) -> list[str]:
    """The training-throughput results, CPU ones first."""
    names = [k for k, v in res.items() if v.get("benchmark") == "train_throughput" and "throughput" in v]
    return sorted(names, key=lambda k: (res[k]["machine"].get("gpu") is not None, k))


def _rows(result: dict) -> dict:
    return {r["recipe"]: r for r in result["throughput"]}


def throughput_table(result: dict) -> pd.DataFrame:
    rows = result["throughput"]
    return pd.DataFrame(
        {
            "recipe": [r["recipe"] for r in rows],
            "useful tokens/s": [round(r["useful_tokens_per_s"]) for r in rows],
            "all tokens/s": [round(r["tokens_per_s"]) for r in rows],
            "useful share": [round(r["useful_share"], 3) for r in rows],
            "precision": [r["precision"] for r in rows],
            measured_rule(rows): [f"{r['mfu']:.1%}" for r in rows],
            **({SPEC_RULE: [f"{spec_mfu(result, r):.1%}" for r in rows]} if spec_peak_of(result) else {}),
            "x original": [round(r["x_original"], 2) for r in rows],
            "x original, by round": [" ".join(f"{x:.2f}" for x in r["x_original_by_round"]) for r in rows],
        }
    ).set_index("recipe")


MEASURED_RULE = (
    "MFU (6N + 12LCT, measured peak)"  # the harness's FLOPs per token (PaLM, nanoGPT) / matmul peak measured
)


def measured_rule(rows: list[dict]) -> str:
    """The MFU column's name: the rule the result was computed with (results made before the harness recorded
    it used 6N + 12LCT; it now uses moviegpt.core.mfu.RULE, the training loop's rule)."""
    rule = rows[0].get("mfu_rule") if rows else None
    return f"MFU ({rule}, measured peak)" if rule else MEASURED_RULE


SPEC_RULE = (
    "MFU (6N + 6LCT, spec peak)"  # llm.c's FLOPs per token / the vendor's dense bf16 peak (core.mfu.SPEC_BF16_PEAK)
)


def spec_peak_of(result: dict) -> float | None:
    return spec_peak(result["machine"].get("gpu"))


def spec_mfu(result: dict, row: dict) -> float:
    """A row's MFU by llm.c's rule: useful tokens/s x (6N + 6LCT) / the GPU's dense bf16 spec peak."""
    r = recipe(result, row["recipe"]) if row["recipe"] in result["recipes"].get("variants", {}) else recipe(result)
    flops = llmc_flops_per_token(result["parameters"], int(r["n_layer"]), int(r["n_embd"]), row["seq_len"])
    return row["useful_tokens_per_s"] * flops / spec_peak_of(result)


def throughput_numbers(result: dict, prefix: str = "") -> dict:
    """Baseline against ours in one throughput result, with the spread of the per-round ratio."""
    rows, roles = _rows(result), result.get("roles", {"baseline": "original", "ours": "ours"})
    base, ours = rows[roles["baseline"]], rows[roles["ours"]]
    by_round = ours["x_original_by_round"]
    out = {
        "machine": machine(result),
        "orig_useful": base["useful_tokens_per_s"],
        "ours_useful": ours["useful_tokens_per_s"],
        "orig_share": base["useful_share"],
        "ours_x": ours["x_original"],
        "min_x": min(by_round),
        "max_x": max(by_round),
        "rounds": len(by_round),
        "orig_mfu": base["mfu"],
        "ours_mfu": ours["mfu"],
        "ours_precision": ours["precision"],
        "orig_precision": base["precision"],
        "params_m": result.get("parameters", 0) / 1e6,
        "skipped": ", ".join(result.get("skipped", {})) or "none",
        **{f"peak_{k}": v / 1e9 for k, v in result.get("peak_flops", {}).items()},
    }
    if spec_peak_of(result):
        out |= {
            "ours_mfu_spec": spec_mfu(result, ours),
            "orig_mfu_spec": spec_mfu(result, base),
            "spec_peak_tflops": spec_peak_of(result) / 1e12,
            "ours_seq_len": ours["seq_len"],
        }
    if "ours_logits" in roles and roles["ours_logits"] in rows:
        out["loss_only_x"] = ours["useful_tokens_per_s"] / rows[roles["ours_logits"]]["useful_tokens_per_s"]
        out["loss_only_row"] = roles["ours_logits"]
    if ours.get("peak_memory_mb"):
        out["ours_memory_gb"] = ours["peak_memory_mb"] / 1024
        out["orig_memory_gb"] = base["peak_memory_mb"] / 1024
    return {f"{prefix}{k}": v for k, v in out.items()}


def ours_over(result: dict, recipe: str) -> float:
    """Ours' useful tokens/s over another recipe's in the same run: what undoing one change costs."""
    rows, roles = _rows(result), result.get("roles", {"ours": "ours"})
    return rows[roles["ours"]]["useful_tokens_per_s"] / rows[recipe]["useful_tokens_per_s"]


def undoing(result: dict, setting: str) -> float:
    """ours_over() for the one measured recipe whose settings differ from ours' in `setting` (a config key such
    as train.vocab_multiple): the row is found from the recipes the result records, not by its label."""
    variants, ours = result["recipes"]["variants"], result.get("roles", {"ours": "ours"})["ours"]
    rows, mine = _rows(result), set(variants[ours])
    found = [
        name
        for name, settings in variants.items()
        if name != ours and name in rows and setting in {s.split("=")[0] for s in set(settings) ^ mine}
    ]
    if len(found) != 1:
        raise KeyError(f"{len(found)} measured recipes undo {setting}: {found}")
    return ours_over(result, found[0])


def quality_numbers(result: dict, prefix: str = "") -> dict:
    """Time to the original's final held-out loss."""
    q = {r["recipe"]: r for r in result.get("time_to_quality", [])}
    if not q:
        return {}
    orig, ours = q["original"], q["ours"]
    hit = ours["seconds_to_target"]
    out = {
        "ttq_machine": machine(result),
        "ttq_target": orig["target_val_loss"],
        "ttq_orig_s": orig["train_seconds"],
        "ttq_ours_s": hit or float("nan"),
        "ttq_x": orig["train_seconds"] / hit if hit else float("nan"),
        "ttq_ours_final": ours["final_val_loss"],
        "ttq_reached": hit is not None,
    }
    return {f"{prefix}{k}": v for k, v in out.items()}


def data_prep_table(result: dict) -> pd.DataFrame:
    d, roles = result["recipes"], result["roles"]
    base = d[roles["baseline"]]["rows_per_s"]
    return pd.DataFrame(
        [
            {
                "recipe": k,
                "rows": r["rows"],
                "seconds": round(r["seconds"], 1),
                "rows/s": round(r["rows_per_s"]),
                "x original": round(r["rows_per_s"] / base, 1),
                "peak memory (MiB)": round(r["peak_rss_mb"]),
            }
            for k, r in d.items()
        ]
    ).set_index("recipe")


def data_prep_numbers(result: dict) -> dict:
    d, roles = result["recipes"], result["roles"]
    ours, orig = d[roles["ours"]], d[roles["baseline"]]
    return {
        "prep_machine": machine(result),
        "prep_rows": ours["rows"],
        "prep_s": ours["seconds"],
        "prep_mb": ours["peak_rss_mb"],
        "prep_orig_s": orig["seconds"],
        "prep_x": ours["rows_per_s"] / orig["rows_per_s"],
        "prep_again_s": d[roles["ours_again"]]["seconds"],
        "prep_again_reading": d[roles["ours_again"]]["stages"]["load, clean, split"]
        / d[roles["ours_again"]]["seconds"],
    }


def saves_over_full_data(r: dict) -> int:
    return int(r["full_data_steps"] * r["step_s"] // save_interval(r["step_s"], r["save_steps"], r["save_minutes"]))


def checkpoint_table(result: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": r["model"],
                "recipe": r["recipe"],
                "checkpoint (MB)": round(r["checkpoint_MB"]),
                "save (s)": round(r["save_s"], 2),
                "step (s)": round(r["step_s"], 2),
                "saves every": f"{r['save_steps']} steps"
                + (f" or {r['save_minutes']:g} min" if r["save_minutes"] else ""),
                "time saving": f"{r['saving_share']:.2%}",
                "saves, full data": saves_over_full_data(r),
            }
            for r in result["rows"]
        ]
    ).set_index(["model", "recipe"])


def checkpoint_numbers(result: dict, model: str = "gpt2-124m") -> dict:
    ck = {r["recipe"]: r for r in result["rows"] if r["model"] == model}
    return {
        "ckpt_machine": machine(result),
        "ckpt_orig_share": ck["original"]["saving_share"],
        "ckpt_orig_every": ck["original"]["save_steps"],
        "ckpt_ours_every": ck["ours"]["save_steps"],
        "ckpt_ours_minutes": ck["ours"]["save_minutes"] or 0,
        "ckpt_ours_share": ck["ours"]["saving_share"],
        "ckpt_mb": ck["original"]["checkpoint_MB"],
        "ckpt_orig_saves": saves_over_full_data(ck["original"]),
    }


def external_table(result: dict) -> pd.DataFrame:
    """Published figures of other projects (benchmarks/results/external_references.json): not measured here."""
    return pd.DataFrame(
        [
            {
                "project": r["project"],
                "GPU": r["gpu"],
                "useful tokens/s per GPU": r["tokens_per_s_per_gpu"],
                "MFU as reported": "" if r["mfu_reported"] is None else f"{r['mfu_reported']:.0%}",
                "source": r["source"],
            }
            for r in result["rows"]
        ]
    ).set_index("project")


def gpu_run_numbers(result: dict) -> dict:
    """The full profile's end-to-end run on a GPU (benchmarks/gpu.sh)."""
    s = result["summary"]
    return {
        "gpu_full_machine": machine(result),
        "gpu_full_steps": s["steps"],
        "gpu_full_tokens": s["tokens_seen"],
        "gpu_full_precision": result["precision"],
        "gpu_full_seconds": s["train_runtime_s"],
        "gpu_full_ppl_before": s["base"]["perplexity"],
        "gpu_full_ppl_after": s["final"]["perplexity"],
        "gpu_full_evals": sum(1 for m in result.get("metrics", []) if m.get("kind") == "eval"),
        "gpu_full_films": s["data"]["splits"]["train"]["used"],
    }


def plan_numbers(result: dict) -> dict:
    """benchmarks/plan.py: what the planner's estimate cost (its probe, in results made before runs measured
    themselves) and its planned against actual training time."""
    return {
        "plan_bench_machine": machine(result),
        "plan_estimate_s": result["estimate_seconds"],
        "plan_planned_s": result["planned_seconds"],
        "plan_actual_s": result["actual_seconds"],
        "plan_error": result["actual_seconds"] / result["planned_seconds"] - 1,
        "plan_budget_min": result["budget_minutes"],
    }


def warmup_numbers(result: dict) -> dict:
    """benchmarks/warmup_quality.py: a run against the same run with transformers' warm-up (step 1 at lr 0)."""
    from moviegpt.core.stats import Interval

    ours, theirs = result["runs"]
    ratio = Interval(**result["ratio"])
    return {
        "warmup_machine": machine(result),
        "warmup_steps": ours["steps"],
        "warmup_ppl_ours": ours["perplexity"],
        "warmup_ppl_theirs": theirs["perplexity"],
        "warmup_ratio": f"{ratio:.3f}",
        "warmup_films": ratio.n,
        "warmup_verdict": "does not measurably change"
        if not ratio.excludes(1.0)
        else ("improves" if ratio.value > 1 else "worsens"),
    }


def sampling_numbers(result: dict) -> dict:
    """benchmarks/sampling.py: per-token sampling time through Trainer's wrapper against the model's own forward."""
    return {"sampling_machine": machine(result), "sampling_x": result["rows"][-1]["x"]}
