"""The Results and Applications chapters' numbers and tables: held-out perplexity measured two ways, what the
generated text shows, the comparison of the book's runs, and texts made on the spot by a trained model.

Every number a reader compares comes with its 95% interval (moviegpt.stats) from the per-film or per-title
values stored in the run's summary.json and eval.json. Importing this module loads no model library; the
functions that generate (marked) load the run's model when called.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from moviegpt import stats
from moviegpt.artifacts import CUT, Evaluation, HeldOut
from moviegpt.report import MODELS, held_out, numbers, run_config, texts
from moviegpt.rundir import RunDir
from moviegpt.similarity import FLOOR  # importing it loads no model library


def _ci(h: HeldOut) -> stats.Interval:
    return stats.perplexity(h.film_nll, h.film_tokens)


# ---------------------------------------------------------------- held-out perplexity


def perplexity_table(run: RunDir):
    s, iv = run.summary(), held_out(run)
    rows = [
        {
            "model": name,
            "perplexity": f"{iv[key].value:,.2f}",
            "95% CI": f"{iv[key].lo:,.2f}–{iv[key].hi:,.2f}",
            "loss (nats/token)": f"{h.loss:.3f}",
            "tokens": f"{h.tokens:,}",
            "films": f"{h.films:,}",
        }
        for name, key, h in (("before fine-tuning", "before", s.base), ("after fine-tuning", "after", s.final))
    ]
    return texts(pd.DataFrame(rows))


def curve(run: RunDir) -> pd.DataFrame:
    """The validation evaluations Trainer logged (step 0 is the base model), in the order they ran."""
    m = pd.DataFrame(run.metrics())
    return m[m["kind"] == "eval"][["step", "tokens_seen", "eval_loss", "eval_perplexity"]].reset_index(drop=True)


def perplexity_views(run: RunDir, ev: Evaluation) -> dict:
    """The run's perplexities side by side: the validation curve (packed blocks, as Trainer evaluates), the
    same validation films scored one film at a time, and the test films one at a time (the headline)."""
    c, s = curve(run), run.summary()
    val = {m: _ci(h) for m, h in ev.validation.items()}
    test = held_out(run)
    out = {
        "curve_first": float(c["eval_perplexity"].iloc[0]),
        "curve_last": float(c["eval_perplexity"].iloc[-1]),
        "curve_points": len(c),
        "curve_first_step": int(c["step"].iloc[0]),
        "val_films": s.data.used("validation") or 0,
        "test_before": test["before"].value,
        "test_after": test["after"].value,
        "curve_scope": curve_scope(run),
    }
    if "fine-tuned" in val:
        a, t = val["fine-tuned"], test["after"]
        out.update(
            val_after=a.value,
            val_after_ci=f"{a:,.2f}",
            test_after_ci=f"{t:,.2f}",
            splits_agree="overlap" if a.lo <= t.hi and t.lo <= a.hi else "do not overlap",
        )
    return out


def curve_scope(run: RunDir) -> str:
    """What each validation pass scored: all the validation films packed into blocks, or the first
    train.eval_rows blocks of them (a planned run sizes its passes to its budget, moviegpt.plan)."""
    cfg, films = run_config(run), run.summary().data.used("validation") or 0
    size = f"{cfg.text.block_size}-token" if cfg.text.batching == "pack" else f"{cfg.text.max_length}-token padded"
    whole = f"the {films:,} validation films joined and cut into {size} blocks"
    if not cfg.train.eval_rows:
        return whole
    return (
        f"the first {cfg.train.eval_rows:,} of {whole}, the same blocks at every pass (the plan's size for its budget)"
    )


def perplexity_views_table(run: RunDir, ev: Evaluation):
    c, test = curve(run), held_out(run)
    rows = [
        {
            "films": "validation",
            "scored as": "packed blocks (the curve)",
            "before": c["eval_perplexity"].iloc[0],
            "after": c["eval_perplexity"].iloc[-1],
            "after, 95% CI": "",
        }
    ]
    if "fine-tuned" in ev.validation:
        a = _ci(ev.validation["fine-tuned"])
        rows.append(
            {
                "films": "validation",
                "scored as": "each film on its own",
                "before": None,
                "after": a.value,
                "after, 95% CI": f"{a.lo:,.2f}–{a.hi:,.2f}",
            }
        )
    rows.append(
        {
            "films": "test",
            "scored as": "each film on its own (the headline)",
            "before": test["before"].value,
            "after": test["after"].value,
            "after, 95% CI": f"{test['after'].lo:,.2f}–{test['after'].hi:,.2f}",
        }
    )
    return numbers(pd.DataFrame(rows), 2).hide(axis="index")


# ---------------------------------------------------------------- generated text


def shown(sample) -> str:
    return sample.text + ("" if sample.ended_with_eos else CUT)


def generation_examples(ev: Evaluation, n: int = 4):
    """Whole texts: the real overview and each model's, for the first unseen test titles."""
    rows = [
        {"title": e.title, "real overview": e.real, **{m: shown(e.generated[m]) for m in MODELS}}
        for e in ev.examples[:n]
    ]
    return texts(pd.DataFrame(rows))


def generation_intervals(ev: Evaluation) -> dict[str, dict[str, stats.Interval]]:
    """Per text group (real, base, fine-tuned): each per-title measure with its interval."""
    out = {}
    for name, q in ev.generation.items():
        eos = [True] * q.n if name == "real" else [e.generated[name].ended_with_eos for e in ev.examples]
        out[name] = {
            "ends with EOS": stats.share(eos),
            "words": stats.mean(q.words),
            "repeated 3-grams": stats.mean(q.repeated_3grams),
            "longest copy (words)": stats.mean(q.copy_words),
        }
        if name in ev.faithfulness:
            out[name]["similarity to the real overview"] = stats.mean(ev.faithfulness[name])
    if FLOOR in ev.faithfulness:
        out[FLOOR] = {"similarity to the real overview": stats.mean(ev.faithfulness[FLOOR])}
    return out


def generation_table(ev: Evaluation):
    """Each measure with its 95% interval; distinct-n is one number over all texts (no per-title value)."""
    iv = generation_intervals(ev)
    rows = {}
    for name in ("real", *MODELS, FLOOR):
        if name not in iv:
            continue
        label = "real overviews" if name == "real" else name
        rows[label] = {k: f"{v.value:.2f} ({v.lo:.2f}–{v.hi:.2f})" for k, v in iv[name].items()}
        if name in ev.generation:
            rows[label] |= {f"distinct-{n}": f"{getattr(ev.generation[name], f'distinct_{n}'):.2f}" for n in (1, 2)}
    return texts(pd.DataFrame(rows).rename_axis("measure (95% CI)").reset_index().fillna(""))


def learned(ev: Evaluation) -> dict:
    """The numbers behind "what the fine-tune learned": stopping, length, copying, faithfulness; each with its
    interval, and the paired change from the base model where the same titles were written by both."""
    iv, f = generation_intervals(ev), ev.faithfulness
    real_words = np.array(ev.generation["real"].words, dtype=float)
    ratio = lambda m: stats.mean(np.array(ev.generation[m].words) / np.maximum(real_words, 1))
    out = {"n_titles": ev.generation["base"].n, "similarity_model": ev.similarity_model}
    for m, key in (("base", "base"), ("fine-tuned", "tuned")):
        out |= {
            f"eos_{key}": f"{iv[m]['ends with EOS']:.0%}",
            f"cut_{key}": 1 - iv[m]["ends with EOS"].value,
            f"copy_max_{key}": max(ev.generation[m].copy_words, default=0),
            f"words_{key}": f"{iv[m]['words']:.0f}",
            f"length_ratio_{key}": f"{ratio(m):.2f}",
            f"copy_{key}": f"{iv[m]['longest copy (words)']:.1f}",
        }
        if m in f:
            out[f"faith_{key}"] = f"{iv[m]['similarity to the real overview']:.2f}"
    out |= {"words_real": f"{iv['real']['words']:.0f}", "copy_real": f"{iv['real']['longest copy (words)']:.1f}"}
    if FLOOR in f and "fine-tuned" in f:
        gain = stats.mean_difference(f["base"], f["fine-tuned"])
        above = stats.mean_difference(f[FLOOR], f["fine-tuned"])
        out |= {
            "faith_floor": f"{iv[FLOOR]['similarity to the real overview']:.2f}",
            "faith_gain": f"{gain:+.3f}",
            "faith_above_floor": f"{above:+.3f}",
            "faith_gain_excludes_0": gain.excludes(0),
            "faith_verdict": verdict(gain, "closer to", "further from", "no closer to"),
            "floor_verdict": verdict(above, "above", "below", "not distinguishable from"),
        }
    return out


def verdict(change: stats.Interval, up: str, down: str, neither: str, none: float = 0.0) -> str:
    """Words for a paired change: which way it went, when its interval excludes `none` (0 for a difference,
    1 for a ratio)."""
    return up if change.lo > none else down if change.hi < none else neither


def recommendation_facts(ev: Evaluation) -> dict:
    r = ev.recommendation
    change = r["fine-tuned"] - r["base"]
    return {
        "rec_change": change,
        "rec_verdict": "rose" if change > 0 else "did not rise",
        **{f"rec_{k.replace('-', '_')}": v for k, v in r.items()},
    }


def recommendation_table(ev: Evaluation):
    names = {
        "random": "random films (chance)",
        "tf-idf": "TF-IDF of overview words",
        "base": "base model embeddings",
        "fine-tuned": "fine-tuned model embeddings",
    }
    return numbers(pd.DataFrame({f"genre overlap@{ev.k}": {names[k]: ev.recommendation[k] for k in names}}), 3)


def neighbour_table(ev: Evaluation):
    rows = pd.DataFrame([n.__dict__ for n in ev.neighbours])
    return texts(rows.assign(similarity=rows["similarity"].map("{:.3f}".format)))


def concept_table(ev: Evaluation):
    share = lambda x, n: f"{stats.wilson(round(x * n), n):.0%}"
    rows = [
        {
            "model": m,
            "concepts": c.n,
            "new titles, first draw": share(c.new_first, c.n),
            "new titles, after redrawing known ones": share(c.new_final, c.n),
        }
        for m, c in ev.concepts.items()
    ]
    return texts(pd.DataFrame(rows))


# ---------------------------------------------------------------- the book's runs compared


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


def scale(run: RunDir) -> dict:
    """How much of the full recipe this run covered, from its own counts."""
    from moviegpt import data
    from moviegpt.report import GPT2_SIZES

    s, info = run.summary(), run.info()
    films = s.data.used("train") or 1
    tokens_per_film = s.tokens_seen / max(s.epochs, 1e-9) / films
    full_tokens = data.WYKONOS_ROWS * tokens_per_film
    return {
        "tokens_seen": s.tokens_seen,
        "films_trained": films,
        "tokens_per_film": tokens_per_film,
        "full_dataset_tokens": full_tokens,
        "share_of_one_full_epoch": s.tokens_seen / full_tokens,
        "parameters": info.parameters,
        **GPT2_SIZES,
        "hours_for_one_full_epoch": full_tokens / (s.tokens_per_second or 1) / 3600,
    }


# ---------------------------------------------------------------- texts made on the spot (these load the model)

INVENTED_TITLES = ["The Lighthouse Keeper's Daughter", "Midnight at the Robot Circus", "A Quiet Week in Nowhere"]


@functools.lru_cache(maxsize=2)
def _trained(model_dir: str):
    from moviegpt import model as model_stage

    return model_stage.load_trained(model_dir)


def _table(out: list[dict], key: str = "text") -> pd.DataFrame:
    from moviegpt import generate

    return pd.DataFrame(
        {"title": [r["title"] for r in out], "generated overview": [generate.shown(r, key) for r in out]}
    )


def _first_fields(run: RunDir, template: str) -> dict:
    """Template fields other than title and overview (e.g. genres), from the run's first test film."""
    from moviegpt import data
    from moviegpt.validate import fields_of

    extra = [f for f in fields_of(template) if f not in ("title", "overview")]
    if not extra:
        return {}
    cfg = run_config(run)
    film = data.load_splits(cfg.data, cfg.seed).test.iloc[0]
    return {f: film[f] for f in extra if f in film}


def invented_titles(run: RunDir, titles: list[str] = INVENTED_TITLES, max_new_tokens: int = 80):
    from moviegpt import generate

    model, tok, s = _trained(str(run.model_dir))
    fields = _first_fields(run, s["template"])
    out = generate.generate_overviews(
        model,
        tok,
        [{**fields, "title": t} for t in titles],
        s["template"],
        how=generate.Sampling(max_new_tokens=max_new_tokens, seed=0),
    )
    return texts(_table(out))


def concepts(run: RunDir, num: int = 3, max_new_tokens: int = 80):
    """Films invented whole; a title that exists in the data is drawn again (up to three draws)."""
    from moviegpt import data, generate

    model, tok, s = _trained(str(run.model_dir))
    out = generate.concepts(
        model,
        tok,
        s["template"],
        num,
        generate.Sampling(max_new_tokens=max_new_tokens, seed=1),
        data.known_titles(run_config(run).data),
        fields=_first_fields(run, s["template"]),
    )
    table = _table(out, "overview").assign(
        **{"draws": [r["draws"] for r in out], "title is a real film": [r["title_known"] for r in out]}
    )
    return texts(table)


def completion(run: RunDir, title: str, start: str, num: int = 2, max_new_tokens: int = 80):
    from moviegpt import generate

    model, tok, s = _trained(str(run.model_dir))
    prompt = generate.build_prompt(
        "completion", s["template"], title=title, text=start, fields=_first_fields(run, s["template"])
    )
    out = generate.attach(
        generate.sample(model, tok, [prompt], num=num, how=generate.Sampling(max_new_tokens=max_new_tokens, seed=2)),
        "completion",
        title,
        start,
    )
    return texts(_table(out, "overview"))
