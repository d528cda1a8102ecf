"""The Results and Applications chapters' numbers and tables: held-out perplexity measured two ways, what the
generated text shows, the comparison of the book's runs, and texts made on the spot by a trained model.

Every number a reader compares comes with its 95% interval (moviegpt.core.stats) from the per-film or per-title
values stored in the run's summary.json and eval.json. Importing this module loads no model library; the
functions that generate (marked) load the run's model when called.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from moviegpt.book.report import MODELS, held_out, numbers, run_config, texts
from moviegpt.core import stats
from moviegpt.core.artifacts import CUT, Evaluation, HeldOut, Sample
from moviegpt.core.rundir import RunDir
from moviegpt.eval.similarity import FLOOR  # importing it loads no model library


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
    train.eval_rows blocks of them (a planned run sizes its passes to its budget, moviegpt.train.plan)."""
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


def scale(run: RunDir) -> dict:
    """How much of the full recipe this run covered, from its own counts."""
    from moviegpt.book.report import GPT2_SIZES
    from moviegpt.data import movies

    s, info = run.summary(), run.info()
    films = s.data.used("train") or 1
    tokens_per_film = s.tokens_seen / max(s.epochs, 1e-9) / films
    full_tokens = movies.WYKONOS_ROWS * tokens_per_film
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


def throughput_facts(run: RunDir) -> dict:
    """The run's tokens/s and MFU in the loop (metrics.jsonl's training rows), and what its MFU is stated against."""
    rows = [r for r in run.metrics() if r["kind"] == "train" and r.get("tokens_per_second")]
    hw = run.info().hardware
    gpu = hw.get("gpu")
    peak = next((r["mfu_peak_flops"] for r in rows if r.get("mfu_peak_flops")), None)
    what = (
        f"the vendor's dense bf16 peak of the {gpu}"
        if gpu
        else "the matmul peak measured once on this CPU at the run's precision"
    )
    mfus = [r["mfu"] for r in rows if r.get("mfu") is not None]
    return {
        "loop_intervals": len(rows),
        "loop_tps_median": float(np.median([r["tokens_per_second"] for r in rows])) if rows else 0.0,
        "loop_mfu_median": f"{np.median(mfus):.1%}" if mfus else "not stated (no native peak for this precision)",
        "loop_peak": f"{what}, {peak / 1e9:,.0f} GFLOP/s" if peak else "none",
    }


def hub_perplexity(run: RunDir, ours: float) -> dict:
    """The hub's `perplexity` module beside ours for the fine-tuned model, on the same test films, where the hub
    can be reached; offline, a sentence saying the comparison needs it."""
    from moviegpt.core import hub

    why = (
        "averages the perplexity of each film, so a short overview counts as much as a long one, where ours divides "
        "the summed NLL of every token by the number of tokens"
    )
    if not hub.reachable():
        return {
            "hub_ppl_sentence": "The hub's perplexity module would give another number for the same model: it "
            f"{why}. Loading it needs the Hugging Face hub, which this build could not reach, so it is not shown."
        }
    try:
        from moviegpt.core.settings import load_run_config
        from moviegpt.data import movies, tokens
        from moviegpt.eval import measures

        cfg = load_run_config(run.path)
        texts = tokens.texts(movies.load_splits(cfg.data, cfg.seed).test, cfg.text.template, "")
        got = measures.hub_perplexity(str(run.model_dir), texts, cfg.text.max_length)
    except Exception as e:  # the hub answered but the module or its download failed: say so, do not fail the book
        return {"hub_ppl_sentence": f"The hub's perplexity module could not be run here ({type(e).__name__})."}
    return {
        "hub_ppl_sentence": f"The hub's perplexity module gives {got:,.2f} for the fine-tuned model on the same "
        f"{len(texts)} test films, against our {ours:,.2f}: it {why}."
    }


def samples_table(run: RunDir, title: int = 0):
    """One test title's sampled overview at every validation pass of the run (train.samples), step 0 first."""
    rows = [r for r in run.metrics() if r["kind"] == "samples" and len(r["samples"]) > title]
    return texts(
        pd.DataFrame(
            {
                "step": [r["step"] for r in rows],
                "tokens trained": [f"{r.get('tokens_seen', 0):,}" for r in rows],
                "overview": [
                    shown(Sample(r["samples"][title]["text"], r["samples"][title]["ended_with_eos"])) for r in rows
                ],
            }
        )
    )


def samples_facts(run: RunDir) -> dict:
    """A sentence introducing samples_table, true of the run (train.samples = 0: it sampled nothing)."""
    rows, plan = [r for r in run.metrics() if r["kind"] == "samples"], run.info().plan
    if not rows:
        return {"samples_sentence": "This run sampled no overviews during training (train.samples is 0)."}
    limit = (
        f" (each pass given at most {plan.sample_seconds:.1f} s of the budget)" if plan and plan.sample_seconds else ""
    )
    return {
        "samples_sentence": f"During training the run sampled an overview for the same {len(rows[0]['samples'])} "
        f"test titles at each of its {len(rows)} validation passes, with the same seed, in "
        f"{sum(r['samples_seconds'] for r in rows):.0f} s in all{limit}. The first title, "
        f"“{rows[0]['samples'][0]['title']}”, from the base model at step 0 to the end of training:"
    }
