"""The book's runs side by side: full fine-tuning against LoRA on the same model, films and budget, with
intervals, and where each run's training time went. Importing it loads no model library.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from moviegpt.book.arms import MAIN, ORIGINAL
from moviegpt.book.report import numbers, run_config
from moviegpt.book.results import _ci, verdict
from moviegpt.core import stats
from moviegpt.core.rundir import RunDir


def comparison(runs: dict[str, RunDir]):
    """The book's runs side by side, measured from their artifacts (the same test films: paired intervals)."""
    rows = {}
    for name, run in runs.items():
        s, info, cfg = run.summary(), run.info(), run_config(run)
        after = _ci(s.final)
        rows[name] = {
            "trainable parameters": info.trainable_parameters or info.parameters,
            "passes over the films": f"{s.epochs:.2f}",
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
    if a.measured_step and b.measured_step:
        return (
            f"Each fixed its own step count from the time of its step {a.measured_step} on this machine, so each "
            "trained as many steps as its own steps' cost allowed."
        )
    if a.step_seconds == b.step_seconds:
        return (
            "Both were planned from one probe of full training on this machine, so both were given the same "
            "number of steps; a LoRA step costs less, so LoRA used less of its budget."
        )
    return "Each was planned for this machine by its own probe, so they trained different amounts."


def comparison_facts(runs: dict[str, RunDir], main: str = MAIN, other: str = "LoRA") -> dict:
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


OVERHEAD_TARGET = (
    0.15  # validation, samples, saves and the estimate: at most this share of train_runtime in a planned run
)


def time_rows(runs: dict[str, RunDir]) -> pd.DataFrame:
    """Each of the book's runs: what its plan predicted and where train_runtime went (RunDir.time_spent), in
    seconds unless named otherwise."""
    rows = []
    for name, run in runs.items():
        t, plan = run.time_spent(), run.info().plan
        rows.append(
            {
                "run": name,
                "planned": plan.planned_seconds - plan.probe_seconds if plan else None,
                "trained": t["train_runtime_s"],
                "validation": t["validation_s"],
                "samples": t["samples_s"],
                "saves": t["save_s"],
                "estimate": t["estimate_s"],
                "not steps": f"{t['overhead_share']:.1%}",
            }
        )
    return pd.DataFrame(rows)


def time_facts(runs: dict[str, RunDir]) -> dict:
    shares = {name: run.time_spent()["overhead_share"] for name, run in runs.items()}
    worst = max(shares.values())
    budgets = sorted({f"{p.budget_minutes:g}" for p in (run.info().plan for run in runs.values()) if p})
    return {
        "overhead_budgets": f"a budget of {' or '.join(budgets)} minutes" if budgets else "a step count, no budget",
        "overhead_worst": f"{worst:.1%}",
        "overhead_target": f"{OVERHEAD_TARGET:.0%}",
        "overhead_verdict": "within" if worst <= OVERHEAD_TARGET else "over",
        "schedule_note": schedule_note(runs[MAIN].info().plan),
    }


def schedule_note(plan) -> str:
    """How the main run's learning-rate schedule was fixed (moviegpt.train.plan), in a sentence."""
    if plan is None or not plan.measured_step:
        return "The main run's schedule was fixed before its first step."
    k, first, steps = plan.measured_step, plan.schedule_steps, plan.max_steps
    same = "the same schedule" if first == steps else f"the {first}-step schedule estimated before training"
    return (
        f"The main run's first {k} steps trained at the learning rates of {same}; it then fixed its length at "
        f"{steps} steps, and the later steps followed the schedule of {steps} steps, which reaches its end at "
        f"the last step. A rerun from the cached plan trains the same rates, and the same weights."
    )


# ---------------------------------------------------------------- the recipes, scored the same way (score.json)


BASE = "base model (no training)"


def scores(runs: dict[str, RunDir], main: str = MAIN) -> dict:
    """Each run's score.json, on the main run's films and titles (computed only where missing)."""
    from moviegpt.eval import score

    cfg = run_config(runs[main])
    return {name: score.scored(run, cfg) for name, run in runs.items()}


def _parts(sc) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per film: NLL and tokens of the whole film, and of the film without its end-of-text target."""
    nll, n = np.asarray(sc.held_out.film_nll, float), np.asarray(sc.held_out.film_tokens, float)
    return nll, n, nll - np.asarray(sc.eos_nll, float), n - np.asarray(sc.eos_targets, float)


def recipe_table(runs: dict[str, RunDir], scored: dict, base_stopped: list[bool]):
    """The recipes side by side: what each set, what it trained, and how its model scored on the same films
    (and, for reference, the base model before any training)."""
    base = runs[next(iter(runs))].base_eval()
    cols = {BASE: _base_col(base, base_stopped)}
    for name, run in sorted(runs.items(), key=lambda kv: kv[0] != ORIGINAL):
        cols[name] = column(run, scored[name])
    return _table(cols)


def column(run: RunDir, sc) -> dict:
    """One run's recipe, training and scores (on the compared films), as a table column."""
    s, cfg = run.summary(), run_config(run)
    nll, n, nll_w, n_w = _parts(sc)
    stop = stats.share(sc.stopped)
    return {
        "batching": f"pad to {cfg.text.max_length}" if cfg.text.batching == "pad" else f"pack {cfg.text.block_size}",
        "EOS a training target": "yes" if cfg.text.eos else "no",
        "learning rate, schedule": f"{cfg.train.learning_rate:g}, {cfg.train.lr_scheduler}",
        "precision (as run)": s.precision,
        "steps": s.steps,
        "tokens trained (no padding)": f"{s.tokens_seen:,}",
        "training minutes": f"{s.train_runtime_s / 60:.2f}",
        "held-out perplexity": _ci_text(stats.perplexity(nll, n)),
        "the same, without the EOS target": _ci_text(stats.perplexity(nll_w, n_w)),
        "generations that stop": f"{stop.value:.0%} ({stop.lo:.0%}–{stop.hi:.0%})",
    }


def _table(cols: dict):
    longest = max(cols.values(), key=len)
    order = [*longest, *(k for c in cols.values() for k in c if k not in longest)]
    return pd.DataFrame(cols, index=order).fillna("").rename_axis("").reset_index().style.hide(axis="index")


def base_stopped(ev) -> list[bool]:
    """Per title of a run's eval.json: whether the base model ended its overview (the base column of recipe_table)."""
    return [e.generated["base"].ended_with_eos for e in ev.examples]


def _ci_text(iv: stats.Interval) -> str:
    return f"{iv.value:.2f} ({iv.lo:.2f}–{iv.hi:.2f})"


def _base_col(base, stopped: list[bool]) -> dict:
    stop = stats.share(stopped)
    return {
        "held-out perplexity": _ci_text(stats.perplexity(base.film_nll, base.film_tokens)) if base else "",
        "generations that stop": f"{stop.value:.0%} ({stop.lo:.0%}–{stop.hi:.0%})",
    }


def recipe_facts(runs: dict[str, RunDir], scored: dict, main: str = MAIN, original: str = ORIGINAL) -> dict:
    """The original recipe against ours on the same films: the paired ratio of perplexities, and the exact
    split of the gap in mean NLL per token into the end-of-text targets and the rest (both models read the
    same tokens, so the two parts add up to the gap)."""
    o, u = scored[original], scored[main]
    (on, n, onw, nw), (un, _, unw, _) = _parts(o), _parts(u)
    gap = stats.perplexity_ratio(un, n, on, n)  # original over ours: above 1, ours is better
    gap_words = stats.perplexity_ratio(unw, nw, onw, nw)
    nats = (on.sum() - un.sum()) / n.sum()
    eos_nats = ((on - onw).sum() - (un - unw).sum()) / n.sum()
    so, su = runs[original].summary(), runs[main].summary()
    co, cu = run_config(runs[original]), run_config(runs[main])
    stop_o, stop_u = stats.share(o.stopped), stats.share(u.stopped)
    return {
        "orig_ppl_ci": f"{stats.perplexity(on, n):.2f}",
        "ours_ppl_ci": f"{stats.perplexity(un, n):.2f}",
        "orig_gap_ci": f"{gap:.2f}",
        "orig_gap_words_ci": f"{gap_words:.2f}",
        "orig_gap_verdict": verdict(gap, "worse than", "better than", "not measurably different from", none=1.0),
        "orig_gap_nats": f"{nats:+.3f}",
        "orig_eos_nats": f"{eos_nats:+.3f}",
        "orig_words_nats": f"{nats - eos_nats:+.3f}",
        "orig_words_verdict": verdict(gap_words, "worse than", "better than", "not measurably different from", 1.0),
        "orig_gap_cause": _cause(eos_nats, gap_words),
        "orig_stop": f"{stop_o.value:.0%}",
        "ours_stop": f"{stop_u.value:.0%}",
        "orig_tokens": f"{so.tokens_seen:,}",
        "ours_tokens": f"{su.tokens_seen:,}",
        "orig_lr": f"{co.train.learning_rate:g}",
        "ours_lr": f"{cu.train.learning_rate:g}",
        "orig_minutes": f"{so.train_runtime_s / 60:.2f}",
        "ours_minutes": f"{su.train_runtime_s / 60:.2f}",
        "orig_length": co.text.max_length,
        "orig_batch": co.train.batch_size,
        "orig_schedule": co.train.lr_scheduler,
        "ours_block": cu.text.block_size,
        "orig_eos": "an end-of-text target" if co.text.eos else "no end-of-text target",
    }


def _cause(eos_nats: float, words: stats.Interval) -> str:
    """Which part of the recipe the gap comes from, by the sign of the EOS part and the interval of the rest."""
    eos = "the end-of-text token, which the original recipe never trains as a target,"
    if words.hi < 1:
        return f"{eos} is where ours is ahead; on the films' own words the original recipe does better"
    if words.lo > 1:
        lead = f"{eos} and " if eos_nats > 0 else ""
        return (
            f"{lead}the films' own words both favour ours; the words come with the learning rate and the tokens "
            "trained, which these runs do not separate"
        )
    return f"{eos} accounts for the gap; on the films' own words the two recipes are not measurably different"


# ---------------------------------------------------------------- reference runs (moviegpt.core.reference)


def references(root, main_cfg) -> dict:
    """The shipped reference runs that were scored as this build's runs are (the same films and titles), each as
    (RunDir, Score, reference.json)."""
    from moviegpt.core import reference
    from moviegpt.eval import score

    want = score.settings(main_cfg)
    out = {}
    for name, run in reference.references(root).items():
        sc = score.read(run)
        if sc is not None and sc.settings == want:
            out[name] = (run, sc, reference.made(run))
    return out


def reference_table(name: str, run: RunDir, sc, refs: dict, machine: str):
    """This build's run beside each reference run, on the same measures, with who made each and where."""
    cols = {f"{name} (this build)": {"made by": "this build", "machine": machine, **column(run, sc)}}
    for ref, (r, rsc, made) in refs.items():
        code = made.get("code") or {}
        cols[ref] = {
            "made by": f"moviegpt {code.get('version', '?')}, source {code.get('source', '?')}, not this build",
            "machine": made["machine"],
            "finished": made["finished"],
            **column(r, rsc),
        }
    return _table(cols)


def reference_facts(run: RunDir, sc, refs: dict) -> dict:
    """The first reference against this build's run, paired on the same films, and a sentence on it."""
    if not refs:
        return {
            "ref_sentence": "No reference run ships with this copy (data/reference/ holds none scored on these "
            "films), so the figure shows only this build's runs."
        }
    name, (r, rsc, made) = next(iter(refs.items()))
    nll, n, _, _ = _parts(sc)
    rnll, rn, _, _ = _parts(rsc)
    ratio = stats.perplexity_ratio(nll, n, rnll, rn)  # the reference over this build's run
    rs, s = r.summary(), run.summary()
    code = made.get("code") or {}
    facts = {
        "ref_count": len(refs),
        "ref_name": name,
        "ref_machine": made["machine"],
        "ref_date": made["finished"],
        "ref_code": f"moviegpt {code.get('version', '?')}, source {code.get('source', '?')}",
        "ref_minutes": rs.train_runtime_s / 60,
        "ref_tokens": f"{rs.tokens_seen:,}",
        "ref_x_tokens": rs.tokens_seen / max(s.tokens_seen, 1),
        "ref_ratio_ci": f"{ratio:.2f}",
        "ref_verdict": verdict(ratio, "worse than", "better than", "not measurably different from", none=1.0),
    }
    sentence = (
        "The reference run {ref_name} trained the same recipe for {ref_minutes:.0f} minutes, {ref_x_tokens:.1f} times "
        "the tokens of this build's run ({ref_tokens}). It was not made by this build: it was made on {ref_machine}, "
        "finished {ref_date}, by {ref_code}, and exported with moviegpt export into data/reference/{ref_name}. "
        "Scored on the same films, its held-out perplexity is {ref_ratio_ci} times that of this build's run, so it "
        "is {ref_verdict} it."
    )
    return {**facts, "ref_sentence": sentence.format(**facts)}


def points(runs: dict[str, RunDir], scored: dict, refs: dict) -> list[dict]:
    """Held-out perplexity (on the compared films, with its interval) against tokens trained, for every run the
    book knows: this build's and the references."""
    pts = []
    for name, run, sc, here in [
        *((n, r, scored[n], True) for n, r in runs.items()),
        *((n, r, rsc, False) for n, (r, rsc, _) in refs.items()),
    ]:
        nll, n, _, _ = _parts(sc)
        iv = stats.perplexity(nll, n)
        pts.append(
            {
                "run": name,
                "tokens": run.summary().tokens_seen,
                "ppl": iv.value,
                "lo": iv.lo,
                "hi": iv.hi,
                "this_build": here,
            }
        )
    return pts
