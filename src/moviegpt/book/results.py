"""The Results chapter's facts and tables (and the introduction's, which states the same results first).

In the order the chapter reads: the reference study's answer (moviegpt.book.study: what the fine-tune gains, which
change from the original recipe to ours matters, when the gain arrives), this build's runs placed on the study's
curves, this build's main run on its test films (by token type, and the base model in its own chat format), what
its generations show, and this build's three runs at equal time. Every compared number carries its interval
(moviegpt.core.stats); the words for intervals and verdicts come from moviegpt.book.words. Importing this module
loads no model library.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from moviegpt.book import study as S
from moviegpt.book.arms import LORA, MAIN, ORIGINAL
from moviegpt.book.records import held_out, loop_rate, perplexity, run_config
from moviegpt.book.words import ci, numbers, seeds_ci, span, texts, verdict
from moviegpt.core import stats
from moviegpt.core.artifacts import CUT, Evaluation, Sample
from moviegpt.core.rundir import RunDir
from moviegpt.eval.similarity import FLOOR  # importing it loads no model library

MODELS = ("base", "fine-tuned")
ARM_OF = {MAIN: "ours", LORA: "lora", ORIGINAL: "original"}  # which study arm each of this build's runs repeats
CHAT = "base, chat format"  # eval.json's key for the base model prompted in its own chat format (eval.evaluate)
BETTER, WORSE, SAME = "lower (better) than", "higher (worse) than", "not measurably different from"


# ------------------------------------------------------------------ the reference study


def study_facts(study: S.Study | None) -> dict:
    """What the study shows, in numbers and in the sentences built from them: each sentence is composed for what the
    study holds (an arm not yet trained, one seed, a change inside its interval), so none reads "not available"
    mid-sentence."""
    out = dict.fromkeys(STUDY_KEYS, "not available") | {
        f"tokens_{k.replace(' ', '_').replace('-', '_')}": "not available" for k in S.GROUPS
    }
    if study is None or not study.runs:
        why = (
            "none that can be read" if study is None else "one whose runs cannot be read: " + "; ".join(study.left_out)
        )
        return out | {
            "study_sentence": f"No reference study can be shown: data/study/ holds {why}.",
            "found_sentence": f"No reference study can be read in this copy (data/study/ holds {why}), so this book "
            "cannot say what fine-tuning does at equal tokens across seeds.",
            "curve_sentence": "",
            "main_sentence": "No reference study can be read in this copy, so this chapter shows this build's runs "
            "only.",
            "changes_sentence": "No change can be compared.",
            "bundle_sentence": "",
            "tokens_sentence": "",
            "type_sentence": "",
        }
    first = next(iter(study.runs.values()))
    machines = sorted({r.machine for r in study.runs.values()})
    budget = study.record["budget"]
    out |= {
        "study_name": study.name,
        "study_runs": str(len(study.runs)),
        "study_expected": str(len(study.arms) * len(study.seeds)),
        "study_seeds": str(len(study.seeds)),
        "study_arms": str(len(study.arms)),
        "study_films": f"{budget.get('films', 0):,}",
        "study_tokens": f"{budget.get('tokens', 0):,}",
        "study_passes": f"{study.record['passes']:g}",
        "study_machine": " and ".join(machines),
        "study_precision": first.precision,
        "study_model": first.model.split(" (")[0],
        "study_date": max((r["finished"] for r in study.record["runs"]), default=""),
        "study_command": study.record["made_with"],
        "study_test_films": str(len(first.final.film_nll)),
        "study_val_films": str(len(first.curve[0]["film_nll"])),
        "study_points": str(len(first.curve)),
        "study_left_out": "; ".join(study.left_out) or "none",
        "study_complete": "all" if study.complete else "not all",
    }
    counts = S.token_counts(study)
    out |= {f"tokens_{k.replace(' ', '_').replace('-', '_')}": f"{v:,}" for k, v in counts.items()}
    base = S.base(study)
    out["base_overview"] = ci(base)
    out |= ours_facts(study, out)
    out["changes_sentence"] = changes_sentence(study)
    out["type_sentence"] = type_sentence(study)
    out["bundle_sentence"] = bundle_sentence(study)
    out["tokens_sentence"] = tokens_sentence(study)
    codes = sorted(  # moviegpt.core.artifacts.code_version: the hash is over the package's source files
        {
            f"{c.get('version', '?')}, source hash {c.get('source', '?')}"
            for c in (r["code"] for r in study.record["runs"])
        }
    )
    out["study_sentence"] = (
        f"The study was not made by this build: moviegpt study {study.name} made it on {out['study_machine']}, in "
        f"{out['study_precision']}, finishing {out['study_date']}, with moviegpt {'; '.join(codes)}, and it "
        f"ships in data/study/{study.name}. It holds {out['study_runs']} of its {out['study_expected']} runs"
        + (f"; left out: {out['study_left_out']}." if study.left_out else ".")
    )
    return out


STUDY_KEYS = (
    "study_name study_runs study_expected study_seeds study_arms study_films study_tokens study_passes study_machine "
    "study_model study_precision study_date study_command study_test_films study_val_films study_points study_left_out "
    "study_complete base_overview ours_seeds ours_films gain_seeds gain_films plateau_tokens plateau_share "
    "plateau_start plateau_best plateau_half_tokens plateau_half_share second_pass"
).split()


def ours_facts(study: S.Study, out: dict) -> dict:
    """Our recipe in the study: its perplexity and gain over the pretrained model, when its gain arrives and what
    the second pass did, with the sentences that say so (their words follow how many seeds have run)."""
    runs = study.arm_runs("ours")
    if not runs:
        return {
            "found_sentence": f"The reference study has not trained our recipe yet ({out['study_runs']} of its "
            f"{out['study_expected']} runs are in data/study/). The pretrained {out['study_model']}'s perplexity on "
            f"the overviews of {out['study_test_films']} films it never saw is {out['base_overview']}.",
            "curve_sentence": "",
            "main_sentence": "The reference study has not trained our recipe yet, so its main result cannot be stated.",
        }
    ours, gain, p = S.final(study, "ours"), _gain(study, "ours"), S.plateau(study, "ours")
    n = len(runs)
    seeds_words = f"the mean over {n} training seeds" if n > 1 else "one training seed"
    facts = {
        "ours_seeds": seeds_ci(ours["seeds"]),
        "ours_films": ci(ours["films"]),
        "gain_seeds": seeds_ci(gain["seeds"]),
        "gain_films": ci(gain["films"]),
        "plateau_tokens": f"{p['reached_tokens']:,.0f}",
        "plateau_share": f"{p['reached_share']:.0%}",
        "plateau_start": f"{p['start']:.2f}",
        "plateau_best": f"{p['best']:.2f}",
        "plateau_half_tokens": f"{p['half_fall_tokens']:,.0f}",
        "plateau_half_share": f"{p['half_fall_share']:.0%}",
        "second_pass": seeds_ci(p["second_pass"], ".3f"),
    }
    facts["found_sentence"] = (
        f"In the reference study, {out['study_model']} read the overviews of {out['study_films']} films "
        f"{out['study_passes']} times ({out['study_tokens']} tokens) with our recipe. Its perplexity on the overviews "
        f"of {out['study_test_films']} films it never saw went from {out['base_overview']} to {facts['ours_seeds']} "
        f"({seeds_words}; {facts['ours_films']} across the films), {facts['gain_seeds']} times the pretrained "
        "model's (below 1: better)."
    )
    if p["second_pass"].n < 2:
        second = (
            f"From the end of the first pass to the end of the second it went from {p['half_ppl']:.2f} to "
            f"{p['end_ppl']:.2f}, on one seed, so whether the second pass helps cannot be judged yet."
        )
    else:
        second = {
            BETTER: "The second pass lowered it further",
            WORSE: "Over the second pass it rose again",
            SAME: "The second pass did not measurably change it",
        }[verdict(p["second_pass"], 1.0, WORSE, BETTER, SAME)] + (
            f", from {p['half_ppl']:.2f} at the end of the first pass to {p['end_ppl']:.2f} (ratio "
            f"{facts['second_pass']}). The learning rate was still falling during that pass, so this study does not "
            "separate a second reading of the same films from the end of the schedule."
        )
    facts["curve_sentence"] = (
        f"With our recipe, half of the fall in validation perplexity from {p['start']:.2f} to the lowest point, "
        f"{p['best']:.2f}, came within the first {facts['plateau_half_tokens']} tokens "
        f"({facts['plateau_half_share']} of the run) and 90% of it by {facts['plateau_tokens']} "
        f"({facts['plateau_share']}). {second}"
    )
    facts["main_sentence"] = (
        f"The main result first: with our recipe, fine-tuning multiplies the model's perplexity on unseen films' "
        f"overviews by {facts['gain_seeds']}, and 90% of the fall in validation perplexity comes within the first "
        f"{facts['plateau_tokens']} tokens ({facts['plateau_share']} of the run)."
    )
    first = study.arms[0]["name"]  # the report's own recipe, where the study's walk starts
    if first != "ours" and study.arm_runs(first):
        facts["versus_sentence"] = (
            f"Against the {first} arm ({_says(study, first)}), trained on the same tokens, ours ends at "
            + _against(study, first, "ours")
            + "."
        )
        facts["found_sentence"] += " " + facts["versus_sentence"]
        facts["main_sentence"] += " " + facts["versus_sentence"]
    best, *rest = ranked(study)
    if best != "ours":
        facts["best_sentence"] = (
            f"Our recipe is not the arm that ends lowest at these tokens: the {best} arm, {_says(study, best)}, ends "
            f"at {seeds_ci(_gain(study, best)['seeds'])} times the pretrained model's"
        )
        if rest and rest[0] != "ours":  # ours was compared with the original above; the runner-up, if another
            facts["best_sentence"] += (
                f"; against the next lowest, {rest[0]}, it ends at {_against(study, rest[0], best)}"
            )
        facts["best_sentence"] += "."
        facts["found_sentence"] += " " + facts["best_sentence"]
        facts["main_sentence"] += " " + facts["best_sentence"]
    return facts


def _says(study: S.Study, arm: str) -> str:
    """An arm's change in a few words (study.json's `says`, up to its dash)."""
    return next(a["says"] for a in study.arms if a["name"] == arm).split(" - ")[0] or arm


def _against(study: S.Study, a: str, b: str) -> str:
    """'1.208 (95% CI for the mean over 3 seeds 1.171–1.247) times its perplexity: worse': arm b
    over arm a on the test films' overviews, paired seed by seed, with the verdict the seeds' interval allows."""
    c = S.compare(study, a, b)["seeds"]
    said = f"{seeds_ci(c, '.3f')} times its perplexity"
    if c.n < 2:
        return said + ", on one seed, so no difference can be claimed"
    return said + ": " + verdict(c, 1.0, "worse", "better", "not measurably different")


def ranked(study: S.Study) -> list[str]:
    """The trained arms, lowest held-out overview perplexity first (the geometric mean over each arm's seeds): a
    ranking only, whether one differs from the next is what an interval says."""
    trained = [a["name"] for a in study.arms if study.arm_runs(a["name"])]
    return sorted(trained, key=lambda a: S.final(study, a)["seeds"].value)


def lowest_arm(study: S.Study) -> str:
    """The arm that ends lowest (ranked's first)."""
    return ranked(study)[0]


def _gain(study: S.Study, arm: str) -> dict:
    """An arm's held-out overview perplexity over the pretrained model's, across seeds and across films."""
    runs = study.arm_runs(arm)
    logs = [
        math.log(S.ppl(*S.held_out_group(r.final, S.OVERVIEW)) / S.ppl(*S.held_out_group(r.base, S.OVERVIEW)))
        for r in runs
    ]
    nb, tb = S.held_out_group(runs[0].base, S.OVERVIEW)
    pooled = [S.held_out_group(r.final, S.OVERVIEW) for r in runs]
    nf, tf = sum(p[0] for p in pooled), sum(p[1] for p in pooled)
    return {"seeds": stats.across_seeds(logs), "films": stats.perplexity_ratio(nb * len(runs), tb * len(runs), nf, tf)}


def arms_table(study: S.Study | None):
    """The study's arms as run: the change each makes, the settings it changes, its optimizer steps and tokens
    (mean over its seeds) and its seeds."""
    if study is None or not study.runs:
        return texts(pd.DataFrame([{"note": "no reference study could be read"}]))
    rows = []
    for a in study.arms:
        runs = study.arm_runs(a["name"])
        if not runs:
            continue
        rows.append(
            {
                "arm": a["name"],
                "what it changes": a["says"],
                "settings changed": ", ".join(S.changed(study, a["name"])) or "(the start)",
                "seeds": ", ".join(str(r.seed) for r in runs),
                "optimizer steps": runs[0].steps,
                "tokens trained": f"{np.mean([r.tokens for r in runs]):,.0f}",
            }
        )
    return texts(pd.DataFrame(rows))


def tokens_sentence(study: S.Study) -> str:
    """How equal "equal tokens" is: each arm trains the whole number of optimizer steps whose average tokens come
    nearest the budget (moviegpt.train.study.budget), so a run's count is the budget give or take part of one step,
    and a padded arm's also moves with the films a seed puts in its batches."""
    budget = study.record["budget"].get("tokens", 0)
    tokens = [r.tokens for r in study.runs.values()]
    if not budget or not tokens:
        return ""
    lo, hi = min(tokens), max(tokens)
    off = max(abs(lo - budget), abs(hi - budget)) / budget
    return (
        f"Equal holds to within an optimizer step: each arm trains the whole number of steps whose average tokens "
        f"come nearest the budget, so the runs trained {lo:,} to {hi:,} tokens, within {off:.1%} of it (the table "
        "gives each arm's mean)."
    )


def bundle_sentence(study: S.Study) -> str:
    """Which steps change more than one setting, and which change the number of optimizer steps at equal tokens:
    what a reader must know before reading a step as the effect of one setting."""
    t = S.steps_table(study)
    if t.empty:
        return ""
    bundles = [
        f"{r['to']} changes {len(r['settings'])} ({', '.join(r['settings'])})"
        for _, r in t.iterrows()
        if len(r["settings"]) > 1
    ]
    steps = {a: study.arm_runs(a)[0].steps for a in {*t["from"], *t["to"]}}
    moved = [  # a tenth more or fewer updates at the same learning rate: a confound worth naming
        f"{r['to']} trains in {steps[r['to']]} optimizer steps where {r['from']} took {steps[r['from']]}"
        for _, r in t.iterrows()
        if abs(steps[r["to"]] / steps[r["from"]] - 1) > 0.1
    ]
    parts = []
    if bundles:
        parts.append("Not every step is one setting: " + "; ".join(bundles) + ", so each is the effect of the bundle")
    if moved:
        parts.append(
            "at equal tokens, " + "; ".join(moved) + ", so that step also changes how many updates the model gets at "
            "its learning rate"
        )
    return (". ".join(p[0].upper() + p[1:] for p in parts) + ".") if parts else ""


def curves(study: S.Study | None, group: str = S.OVERVIEW) -> dict[str, pd.DataFrame]:
    if study is None:
        return {}
    return {a["name"]: S.curve(study, a["name"], group) for a in study.arms if study.arm_runs(a["name"])}


def marks(table: pd.DataFrame) -> list[dict]:
    """This build's runs as points for the study's figure (placement's rows)."""
    return [
        {
            "run": r["run (this build)"],
            "arm": r["study arm"],
            "tokens": r["tokens trained"],
            "ppl": r["its validation perplexity"],
        }
        for _, r in table.iterrows()
    ]


def steps(study: S.Study | None, group: str = S.OVERVIEW) -> pd.DataFrame:
    """Each change, one at a time, as the chapter's table: the ratio of held-out perplexities after and before it,
    each seed's, the mean over seeds with its interval, the films' interval (for these trained models), and what
    it means."""
    if study is None or not study.runs:
        return pd.DataFrame()
    rows = []
    for _, r in S.steps_table(study, group).iterrows():
        measured = r["n_seeds"] >= 2  # one seed has no spread to compare a change with
        rows.append(
            {
                "change": r["change"],
                "arms": f"{r['from']} → {r['to']}",
                "ratio, each seed": " ".join(f"{x:.3f}" for x in r["per_seed"]),
                "ratio, mean over seeds": f"{r['seeds'].value:.3f}",
                "95% CI for the mean over seeds": span(r["seeds"], ".3f") if measured else "one seed, no interval",
                "95% CI over test films": span(r["films"], ".3f"),
                "across seeds, the change makes it": verdict(r["seeds"], 1.0, "worse", "better", "no different")
                if measured
                else "not yet measured",
            }
        )
    return pd.DataFrame(rows)


def changes_sentence(study: S.Study, group: str = S.OVERVIEW) -> str:
    """Which changes mattered, in words: those whose interval for the mean over seeds excludes 1, with their
    ratios (a ratio is the perplexity after the change over the perplexity before it: below 1, the change helped)."""
    t = S.steps_table(study, group)
    if t.empty:
        return "The study has too few runs yet to compare its arms."
    one = t[t["n_seeds"] < 2]["to"].tolist()
    t = t[t["n_seeds"] >= 2]  # a change trained at one seed so far has no spread to be compared with
    said = []
    for _, r in t.iterrows():
        v = verdict(r["seeds"], 1.0, "worse", "better", "")
        if v:
            said.append(
                f"{r['to']} ({r['change'].split(' - ')[0]}) multiplied it by {seeds_ci(r['seeds'], '.3f')}: {v}"
            )
    quiet = [r["to"] for _, r in t.iterrows() if not verdict(r["seeds"], 1.0, "x", "x", "")]
    if t.empty:
        text = "No change has been trained at two seeds yet, so none can be compared across seeds."
    elif said:
        text = "On the overviews of the test films, " + "; ".join(said) + " (a ratio below 1 is better)."
    else:
        text = f"For {_join(quiet)}, the interval for the mean over the seeds includes 1: no change was measurable."
    if quiet and said:
        text += f" For {_join(quiet)}, the interval for the mean over the seeds includes 1: no measurable difference."
    if one:
        text += f" {_join(one)} {'has' if len(one) == 1 else 'have'} one seed so far, with no interval."
    return text


def type_sentence(study: S.Study) -> str:
    """Where the end-of-text target shows: the end-of-text perplexity of the arm without it and the arm with it
    (geometric means over their seeds), and the paired change on the overview's own tokens."""
    if not (study.arm_runs("original") and study.arm_runs("eos")):
        return ""
    eos = {a: float(np.exp(np.mean(np.log(S.final(study, a, "end-of-text")["per_seed"])))) for a in ("original", "eos")}
    c = S.compare(study, "original", "eos")
    return (
        f"The original arm, which never trains the end-of-text token, gives it a perplexity of {eos['original']:,.0f} "
        f"on the test films; with the target (the eos arm) it is {eos['eos']:,.2f}. On the overview's own tokens the "
        f"same step multiplies the perplexity by {seeds_ci(c['seeds'], '.3f')}."
    )


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def type_table(study: S.Study | None, runs: dict[str, RunDir], scored: dict):
    """Held-out perplexity by token group: the pretrained model, each study arm (geometric mean over its seeds, with
    their range), and this build's three runs (on the same test films)."""
    rows = [] if study is None or not study.runs else S.type_table(study).to_dict("records")
    for name in runs:
        h = scored[name].held_out
        if h.type_nll is not None:
            rows.append(
                {"model": f"{name} (this build)", **{g: f"{S.ppl(*S.held_out_group(h, g)):,.2f}" for g in S.GROUPS}}
            )
    return texts(pd.DataFrame(rows))


def placement(study: S.Study | None, runs: dict[str, RunDir], scored: dict) -> pd.DataFrame:
    """This build's runs on the study's curves: each run's validation films scored one at a time, against the seed
    range of the study arm it repeats at the same number of tokens. Only a run of the study's model, scored on the
    study's validation films, is placed (a smoke build's tiny model is not)."""
    rows = []
    for name, run in runs.items():
        arm, sc = ARM_OF.get(name), scored[name]
        if study is None or sc.validation is None or not study.arm_runs(arm or "") or not comparable(study, run, sc):
            continue
        s = run.summary()
        own = S.ppl(*S.held_out_group(sc.validation, S.OVERVIEW))
        at = S.at_tokens(study, arm, s.tokens_seen)
        rows.append(
            {
                "run (this build)": name,
                "study arm": arm,
                "tokens trained": s.tokens_seen,
                "training films": s.data.used("train") or 0,
                "precision": s.precision,
                "its validation perplexity": own,
                "study's seeds at these tokens": f"{at['low']:,.2f}–{at['high']:,.2f}" if at else "beyond the curve",
                "inside the seeds' range": ("yes" if at["low"] <= own <= at["high"] else "no") if at else NOT_PLACED,
            }
        )
    return pd.DataFrame(rows)


NOT_PLACED = "not comparable"  # a run whose token count lies before the study's first point or past its last


def comparable(study: S.Study, run: RunDir, sc) -> bool:
    """A run of this build can be set on the study's curves: the same model, and the study's validation films."""
    first = next(iter(study.runs.values()))
    return run.info().model == first.model and len(sc.validation.film_nll) == len(first.curve[0]["film_nll"])


def placement_facts(table: pd.DataFrame, study: S.Study | None = None) -> dict:
    """Which of this build's runs fall inside the study's seed range, and what differs between them and the study's
    runs besides their length (the training films drawn from, the precision), with how often a seed range of this
    size holds a new run of the same recipe: (n - 1) / (n + 1) for n seeds, for exchangeable runs."""
    if table.empty or study is None:
        return {
            "placement_sentence": "none of them can be placed on the study's curves, because they trained another "
            "model or were scored on other films than the study's.",
            "placement_caveat": "",
        }
    said = {k: table[table["inside the seeds' range"] == k]["run (this build)"].tolist() for k in ("yes", "no")}
    beyond = table[table["inside the seeds' range"] == NOT_PLACED]["run (this build)"].tolist()
    parts = []
    for key, words_ in (("yes", "inside the study's seed range"), ("no", "outside it")):
        if said[key]:
            parts.append(f"{_join(said[key])} {'falls' if len(said[key]) == 1 else 'fall'} {words_}")
    if beyond:
        parts.append(f"{_join(beyond)} trained a token count the study's curve does not reach, so it is not placed")
    n = len(study.seeds)
    films = study.record["budget"].get("films", 0)
    precision = next(iter(study.runs.values())).precision
    differ = [
        f"{r['run (this build)']} drew on {r['training films']:,} films"
        for _, r in table.iterrows()
        if r["training films"] != films
    ]
    other = [r["run (this build)"] for _, r in table.iterrows() if r["precision"] != precision]
    caveat = []
    if differ:
        caveat.append(f"The study's runs drew on {films:,} training films; {_join(differ)}.")
    if other:
        caveat.append(f"{_join(other)} trained in another precision than the study's {precision}.")
    if n >= 2:
        caveat.append(
            f"The range of {n} seeds holds a further run of the same recipe only {(n - 1) / (n + 1):.0%} of the time, "
            "so a run outside it is weak evidence of a difference."
        )
    return {"placement_sentence": "; ".join(parts) + ".", "placement_caveat": " ".join(caveat)}


# ------------------------------------------------------------------ this build's main run


def perplexity_table(run: RunDir):
    s, iv = run.summary(), held_out(run)
    rows = [
        {
            "model": name,
            "perplexity": f"{iv[key].value:,.2f}",
            "95% CI": span(iv[key]),
            "loss (nats/token)": f"{h.loss:.3f}",
            "tokens": f"{h.tokens:,}",
            "films": f"{h.films:,}",
        }
        for name, key, h in (("before fine-tuning", "before", s.base), ("after fine-tuning", "after", s.final))
    ]
    return texts(pd.DataFrame(rows))


def headline_facts(run: RunDir) -> dict:
    s, iv = run.summary(), held_out(run)
    out = {
        "test_films": s.final.films,
        "ppl_before_ci": ci(iv["before"]),
        "ppl_after_ci": ci(iv["after"]),
        "ratio_ci": ci(iv["ratio"]),
        "improved_films": round(iv["improved"].value * iv["improved"].n),
        "ov_before": "not measured (no per-token-type record)",
        "ov_after": "not measured",
    }
    if s.final.type_nll is not None and s.base.type_nll is not None:
        for key, h in (("before", s.base), ("after", s.final)):
            out[f"ov_{key}"] = ci(stats.perplexity(*S.held_out_group(h, S.OVERVIEW)))
            out[f"eos_{key}_nats"] = float(np.sum(S.held_out_group(h, "end-of-text")[0]) / max(h.films, 1))
    return out


def chat_facts(ev: Evaluation, run: RunDir) -> dict:
    """The base model in its own chat format against the training template (eval.json's chat), on the overview's
    tokens, in a sentence that is true of this build: a tokenizer without a chat template has nothing to compare."""
    if ev.chat is None:
        return {
            "chat_sentence": "The base model's tokenizer has no chat template, so the training template is the only "
            "format it can be prompted in."
        }
    s = run.summary()
    base_plain, base_chat = S.held_out_group(s.base, S.OVERVIEW), S.held_out_group(ev.chat.held_out, S.OVERVIEW)
    tuned_plain = S.held_out_group(s.final, S.OVERVIEW)
    chat, plain = stats.perplexity(*base_chat), stats.perplexity(*base_plain)
    chat_vs_plain = stats.perplexity_ratio(*base_plain, *base_chat)  # the same films, paired: below 1, chat is better
    tuned_vs_chat = stats.perplexity_ratio(*base_chat, *tuned_plain)
    stop = stats.share([g.ended_with_eos for g in ev.chat.generated])
    faith = f"{stats.mean(ev.faithfulness[CHAT]):.2f}" if CHAT in ev.faithfulness else "not measured"
    return {
        "chat_sentence": (
            "The pretrained stand-in is an Instruct model, tuned to answer in a chat format, and the training template "
            f"is not that format. Asked in its chat format (“{ev.chat.prompt}”), the base model's perplexity on the "
            f"same overviews is {ci(chat)}, against {ci(plain)} in the template: a ratio of "
            f"{ci(chat_vs_plain, '.3f')}, paired over the films, so {verdict(chat_vs_plain, 1.0, WORSE, BETTER, SAME)} "
            f"it. The fine-tuned model, in the template, is at {ci(stats.perplexity(*tuned_plain))}, "
            f"{ci(tuned_vs_chat, '.3f')} times the base model in its own format, "
            f"{verdict(tuned_vs_chat, 1.0, WORSE, BETTER, SAME)} it. In its chat format the base model ended "
            f"{stop:.0%} of its overviews itself, at {np.mean(ev.chat.quality.words):.0f} words on average "
            f"(similarity to the real overview: {faith})."
        )
    }


def chat_table(ev: Evaluation, run: RunDir):
    """The overview's held-out perplexity by prompt format, and the chat-format generations' stopping and length."""
    if ev.chat is None:
        return texts(
            pd.DataFrame([{"note": "no chat template: the base model was scored in the training template only"}])
        )
    s = run.summary()
    rows = []
    for model, fmt, h in (
        ("base", "training template", s.base),
        ("base", "its chat format", ev.chat.held_out),
        ("fine-tuned", "training template", s.final),
    ):
        iv = stats.perplexity(*S.held_out_group(h, S.OVERVIEW))
        rows.append({"model": model, "prompted in": fmt, "overview perplexity": f"{iv.value:,.2f}", "95% CI": span(iv)})
    return texts(pd.DataFrame(rows))


def hub_perplexity(run: RunDir, ours: float) -> dict:
    """The hub's `perplexity` module beside ours for the fine-tuned model, on the same test films, where the hub
    can be reached; offline, a sentence saying the comparison needs it."""
    from moviegpt.core import hub

    why = (
        "averages the perplexity of each film, so a short overview counts as much as a long one, where ours divides "
        "the summed loss of every token by the number of tokens"
    )
    if not hub.reachable():
        return {
            "hub_ppl_sentence": "The hub's perplexity module would give another number for the same model: it "
            f"{why}. Loading it needs the Hugging Face hub, which this build could not reach, so it is not shown."
        }
    try:
        from moviegpt.data import movies, tokens
        from moviegpt.eval import measures

        cfg = run_config(run)
        texts_ = tokens.texts(movies.load_splits(cfg.data, cfg.seed).test, cfg.text.template, "")
        got = measures.hub_perplexity(str(run.model_dir), texts_, cfg.scored_length)
    except Exception as e:  # the hub answered but the module or its download failed: say so, do not fail the book
        return {"hub_ppl_sentence": f"The hub's perplexity module could not be run here ({type(e).__name__})."}
    return {
        "hub_ppl_sentence": f"The hub's perplexity module gives {got:,.2f} for the fine-tuned model on the same "
        f"{len(texts_)} test films, against our {ours:,.2f}: it {why}."
    }


# ------------------------------------------------------------------ the validation curve of the main run


def curve(run: RunDir) -> pd.DataFrame:
    """The validation passes Trainer logged (step 0 is the base model), in the order they ran."""
    m = pd.DataFrame(run.metrics())
    if m.empty or "kind" not in m or not (m["kind"] == "eval").any():
        return pd.DataFrame(columns=["step", "tokens_seen", "eval_loss", "eval_perplexity"])
    return m[m["kind"] == "eval"][["step", "tokens_seen", "eval_loss", "eval_perplexity"]].reset_index(drop=True)


def curve_scope(run: RunDir) -> str:
    """What each validation pass scored: the validation films joined into blocks, or the first train.eval_rows of
    those blocks (a planned run sizes its passes to its budget, moviegpt.train.plan)."""
    cfg, films = run_config(run), run.summary().data.used("validation") or 0
    size = f"{cfg.text.block_size}-token blocks" if cfg.text.batching == "pack" else f"{cfg.text.max_length}-token rows"
    whole = f"the {films:,} validation films joined end to end and cut into {size}"
    if not cfg.train.eval_rows:
        return whole
    joined = whole.replace(f" and cut into {size}", "")
    return f"the first {cfg.train.eval_rows:,} {size} of {joined}, the same at every pass"


def views(run: RunDir, ev: Evaluation) -> dict:
    """The main run's perplexities side by side: the validation curve (as Trainer evaluates), the same validation
    films one film at a time, and the test films one at a time (the headline)."""
    c, s, test = curve(run), run.summary(), held_out(run)
    out = {
        "curve_points": len(c),
        "val_films": s.data.used("validation") or 0,
        "test_before": test["before"].value,
        "test_after": test["after"].value,
        "curve_scope": curve_scope(run),
    }
    if len(c):
        out |= {"curve_first": float(c["eval_perplexity"].iloc[0]), "curve_last": float(c["eval_perplexity"].iloc[-1])}
    if "fine-tuned" in ev.validation:
        a, t = perplexity(ev.validation["fine-tuned"]), test["after"]
        out |= {
            "val_after": a.value,
            "val_after_ci": ci(a),
            "test_after_ci": ci(t),
            "splits_sentence": "Those two intervals overlap, as they should: the two sets of films are drawn the "
            "same way and differ only in which films were drawn."
            if a.lo <= t.hi and t.lo <= a.hi
            else "Those two intervals do not overlap, though both sets of films are drawn the same way: with this "
            "few films, one set can happen to be easier than the other.",
        }
    else:
        out |= {"val_after_ci": "not measured", "test_after_ci": ci(test["after"]), "splits_sentence": ""}
    return out


def views_table(run: RunDir, ev: Evaluation):
    c, test = curve(run), held_out(run)
    rows = []
    if len(c):
        rows.append(
            {
                "films": "validation",
                "scored as": "blocks, as in training (the curve)",
                "before": c["eval_perplexity"].iloc[0],
                "after": c["eval_perplexity"].iloc[-1],
                "after, 95% CI": "",
            }
        )
    if "fine-tuned" in ev.validation:
        a = perplexity(ev.validation["fine-tuned"])
        rows.append(
            {
                "films": "validation",
                "scored as": "each film on its own",
                "before": None,
                "after": a.value,
                "after, 95% CI": span(a),
            }
        )
    rows.append(
        {
            "films": "test",
            "scored as": "each film on its own (the headline)",
            "before": test["before"].value,
            "after": test["after"].value,
            "after, 95% CI": span(test["after"]),
        }
    )
    return numbers(pd.DataFrame(rows), 2).hide(axis="index")


# ------------------------------------------------------------------ generated text


def shown(sample) -> str:
    return sample.text + ("" if sample.ended_with_eos else CUT)


def generation_examples(ev: Evaluation, n: int = 4):
    """Whole texts: the real overview and each model's, for the first unseen test titles."""
    rows = [
        {"title": e.title, "real overview": e.real, **{m: shown(e.generated[m]) for m in MODELS}}
        for e in ev.examples[:n]
    ]
    if ev.chat is not None:
        for row, g in zip(rows, ev.chat.generated):
            row["base, its chat format"] = shown(g)
    return texts(pd.DataFrame(rows))


def generation_intervals(ev: Evaluation) -> dict[str, dict[str, stats.Interval]]:
    """Per text group (real, base, fine-tuned, and the base model in its chat format): each per-title measure with
    its interval."""
    groups = dict(ev.generation)
    if ev.chat is not None:
        groups[CHAT] = ev.chat.quality
    out = {}
    for name, q in groups.items():
        if name == "real":
            eos = [True] * q.n
        elif name == CHAT:
            eos = [g.ended_with_eos for g in ev.chat.generated]
        else:
            eos = [e.generated[name].ended_with_eos for e in ev.examples]
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
    """Each measure with its 95% interval, one column per group of texts (measures as rows, so the table stays
    narrow); distinct-n is one number over all texts (no per-title value)."""
    iv = generation_intervals(ev)
    cols = {}
    for name in ("real", *MODELS, CHAT, FLOOR):
        if name not in iv:
            continue
        label = "real overviews" if name == "real" else name
        cols[label] = {k: f"{v.value:.2f} ({span(v, '.2f')})" for k, v in iv[name].items()}
        q = ev.generation.get(name) or (ev.chat.quality if name == CHAT and ev.chat else None)
        if q is not None:
            cols[label] |= {f"distinct-{n}": f"{getattr(q, f'distinct_{n}'):.2f}" for n in (1, 2)}
    return texts(pd.DataFrame(cols).rename_axis("measure (95% CI)").reset_index().fillna(""))


def learned(ev: Evaluation) -> dict:
    """The numbers behind "what the fine-tune learned": stopping, length, copying, faithfulness; each with its
    interval, and the paired change from the base model where the same titles were written by both."""
    iv, f = generation_intervals(ev), ev.faithfulness
    real_words = np.array(ev.generation["real"].words, dtype=float)
    from moviegpt.core.config import GENERATION_DEFAULTS as G

    out = {
        "n_titles": ev.generation["base"].n,
        "similarity_model": ev.similarity_model,
        "sampling": f"temperature {G['temperature']:g}, top-p {G['top_p']:g}, top-k {G['top_k']}, at most "
        f"{ev.settings.get('max_new_tokens', G['max_new_tokens'])} new tokens, seed {ev.settings.get('seed', 0)}",
    }
    out |= dict.fromkeys(
        (
            "faith_tuned",
            "faith_base",
            "faith_floor",
            "faith_gain",
            "faith_above_floor",
            "faith_verdict",
            "floor_verdict",
        ),
        "not measured",
    )
    out["faith_sentence"] = "No sentence-embedding model was available, so faithfulness was not measured."
    for m, key in (("base", "base"), ("fine-tuned", "tuned")):
        words = np.array(ev.generation[m].words, dtype=float)
        out |= {
            f"eos_{key}": f"{iv[m]['ends with EOS']:.0%}",
            f"cut_{key}": 1 - iv[m]["ends with EOS"].value,
            f"copy_max_{key}": max(ev.generation[m].copy_words, default=0),
            f"words_{key}": f"{iv[m]['words']:.0f}",
            f"length_of_means_{key}": f"{words.mean() / max(real_words.mean(), 1):.2f}",
            f"length_median_{key}": f"{np.median(words / np.maximum(real_words, 1)):.2f}",
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
            "faith_verdict": verdict(gain, 0.0, "closer to", "further from", "no closer to"),
            "floor_verdict": verdict(above, 0.0, "above", "below", "not distinguishable from"),
            "faith_sentence": "From a title alone, then, the fine-tuned model's overviews carry something of the "
            "film's own story, more than another film's overview does."
            if above.lo > 0
            else "From a title alone, then, the fine-tuned model does not, measurably, write this film's story: its "
            "overviews are no closer to it than another film's overview is.",
        }
    return out


def recommendation_facts(ev: Evaluation) -> dict:
    r = ev.recommendation
    change = r["fine-tuned"] - r["base"]
    return {
        "rec_change": change,
        "rec_verdict": "rose" if change > 0 else "did not rise",
        **{f"rec_{k.replace('-', '_')}": v for k, v in r.items()},
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
    cfg = run_config(run)
    if not rows:
        return {"samples_sentence": "This run sampled no overviews during training (train.samples is 0)."}
    limit = f" and at most {plan.sample_seconds:.1f} s a pass" if plan and plan.sample_seconds else ""
    return {
        "samples_sentence": f"During training the run sampled an overview for the same {len(rows[0]['samples'])} "
        f"test titles at each of its {len(rows)} validation passes, with the same seed and at most "
        f"{cfg.train.sample_tokens} new tokens{limit}, in {sum(r['samples_seconds'] for r in rows):.0f} s in all. "
        f"The first title, “{rows[0]['samples'][0]['title']}”, from the base model at step 0 to the end of training:"
    }


# ------------------------------------------------------------------ this build's three runs, at equal time


BASE = "base model (no training)"


def scores(runs: dict[str, RunDir], main: str = MAIN) -> dict:
    """Each run's score.json, on the main run's films and titles (computed only where missing)."""
    from moviegpt.eval import score

    cfg = run_config(runs[main])
    return {name: score.scored(run, cfg) for name, run in runs.items()}


def parts(sc) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per film: NLL and tokens of the whole film, and of the film without its end-of-text target."""
    nll, n = np.asarray(sc.held_out.film_nll, float), np.asarray(sc.held_out.film_tokens, float)
    return nll, n, nll - np.asarray(sc.eos_nll, float), n - np.asarray(sc.eos_targets, float)


def recipe_column(run: RunDir, sc) -> dict:
    """One run's recipe, training and scores (on the compared films), as a table column."""
    s, cfg = run.summary(), run_config(run)
    nll, n, nll_w, n_w = parts(sc)
    stop = stats.share(sc.stopped)
    if cfg.text.batching == "pad":
        batching = f"pad to {cfg.text.max_length}"
    else:
        batching = f"pack {cfg.text.block_size}" + (", films apart" if cfg.text.keep_apart else "")
    return {
        "batching": batching,
        "EOS a training target": "yes" if cfg.text.eos else "no",
        "learning rate, schedule": f"{cfg.train.learning_rate:g}, {cfg.train.lr_scheduler}",
        "precision (as run)": s.precision,
        "steps": s.steps,
        "tokens trained (no padding)": f"{s.tokens_seen:,}",
        "training minutes": f"{s.train_runtime_s / 60:.2f}",
        "held-out perplexity": ci(stats.perplexity(nll, n)),
        "the same, without the EOS target": ci(stats.perplexity(nll_w, n_w)),
        "generations that stop": f"{stop:.0%}",
    }


def columns_table(cols: dict):
    longest = max(cols.values(), key=len)
    order = [*longest, *(k for c in cols.values() for k in c if k not in longest)]
    return texts(pd.DataFrame(cols, index=order).fillna("").rename_axis("").reset_index())


def recipe_table(runs: dict[str, RunDir], scored: dict, base_stopped: list[bool]):
    """This build's runs side by side: what each set, what it trained, and how its model scored on the same films
    (and the base model before any training)."""
    base = runs[MAIN].base_eval()
    stop = stats.share(base_stopped)
    cols = {BASE: {"held-out perplexity": ci(perplexity(base)) if base else "", "generations that stop": f"{stop:.0%}"}}
    for name, run in sorted(runs.items(), key=lambda kv: kv[0] != ORIGINAL):
        cols[name] = recipe_column(run, scored[name])
    return columns_table(cols)


def base_stopped(ev: Evaluation) -> list[bool]:
    return [e.generated["base"].ended_with_eos for e in ev.examples]


def equal_time_facts(runs: dict[str, RunDir], scored: dict) -> dict:
    """This build's original recipe and LoRA against its main run, on the same films, trained for the same time."""
    return original_facts(runs, scored) | lora_facts(runs, scored)


def original_facts(runs: dict[str, RunDir], scored: dict) -> dict:
    """The original recipe against ours on the same films: the paired ratio of perplexities, and the exact split of
    the gap in mean loss per token into the end-of-text targets and the rest (both read the same tokens)."""
    o, u = scored[ORIGINAL], scored[MAIN]
    (on, n, onw, nw), (un, _, unw, _) = parts(o), parts(u)
    gap = stats.perplexity_ratio(un, n, on, n)  # original over ours: above 1, ours is better
    gap_words = stats.perplexity_ratio(unw, nw, onw, nw)
    nats = (on.sum() - un.sum()) / n.sum()
    eos_nats = ((on - onw).sum() - (un - unw).sum()) / n.sum()
    so, su = runs[ORIGINAL].summary(), runs[MAIN].summary()
    plan = runs[MAIN].info().plan
    return {
        "budget_minutes": plan.budget_minutes if plan else su.train_runtime_s / 60,
        "orig_tokens": so.tokens_seen,
        "ours_tokens": su.tokens_seen,
        "orig_minutes": so.train_runtime_s / 60,
        "ours_minutes": su.train_runtime_s / 60,
        "orig_gap_ci": ci(gap),
        "orig_gap_verdict": verdict(gap, 1.0, WORSE, BETTER, SAME),
        "orig_gap_words_ci": ci(gap_words),
        "orig_words_verdict": verdict(gap_words, 1.0, WORSE, BETTER, SAME),
        "orig_gap_nats": f"{nats:+.3f}",
        "orig_eos_nats": f"{eos_nats:+.3f}",
        "orig_words_nats": f"{nats - eos_nats:+.3f}",
        "orig_stop": f"{stats.share(o.stopped):.0%}",
        "ours_stop": f"{stats.share(u.stopped):.0%}",
        "orig_eos": "an end-of-text target" if run_config(runs[ORIGINAL]).text.eos else "no end-of-text target",
    }


def lora_facts(runs: dict[str, RunDir], scored: dict) -> dict:
    """LoRA against full fine-tuning on the same films and budget: quality, speed and memory."""
    (un, n, _, _), (ln, _, _, _) = parts(scored[MAIN]), parts(scored[LORA])
    lora = stats.perplexity_ratio(un, n, ln, n)
    su, sl = runs[MAIN].summary(), runs[LORA].summary()
    fi, li = runs[MAIN].info(), runs[LORA].info()
    fc, lc = run_config(runs[MAIN]), run_config(runs[LORA])
    return {
        "lora_gap_ci": ci(lora),
        "lora_gap_verdict": verdict(lora, 1.0, WORSE, BETTER, SAME),
        "lora_trainable": li.trainable_parameters or 0,
        "lora_share": (li.trainable_parameters or 0) / max(fi.parameters, 1),
        "lora_speed_x": loop_rate(runs[LORA]) / max(loop_rate(runs[MAIN]), 1e-9),  # the loops' median rates
        "full_steps": su.steps,
        "lora_steps": sl.steps,
        "full_tokens": su.tokens_seen,
        "lora_tokens": sl.tokens_seen,
        "full_lr": fc.train.learning_rate,
        "lora_lr": lc.train.learning_rate,
        "full_memory_mib": su.peak_memory_mb or 0,
        "lora_memory_mib": sl.peak_memory_mb or 0,
        "adam_state_mib": (fi.trainable_parameters or fi.parameters) * 8 / 2**20,
        "grad_mib": (fi.trainable_parameters or fi.parameters) * 4 / 2**20,
        "weights_mib": fi.parameters * 4 / 2**20,
        "memory_verdict": "shows" if (sl.peak_memory_mb or 0) < (su.peak_memory_mb or 0) else "does not show",
        "batch_rows": fc.train.batch_size,
        "row_tokens": fc.text.seq_len(),
    }
