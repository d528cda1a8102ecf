"""The Applications chapter's texts made on the spot: a trained model writes overviews for invented titles,
invents films, and completes an overview. These load the run's model when called (once per model).
"""

from __future__ import annotations

import functools

import pandas as pd

from moviegpt.book.records import run_config
from moviegpt.book.words import numbers, texts
from moviegpt.core import stats
from moviegpt.core.artifacts import Evaluation
from moviegpt.core.rundir import RunDir

INVENTED_TITLES = ["The Lighthouse Keeper's Daughter", "Midnight at the Robot Circus", "A Quiet Week in Nowhere"]


@functools.lru_cache(maxsize=2)
def _trained(model_dir: str):
    from moviegpt.model import causal_lm

    return causal_lm.load_trained(model_dir)


def _table(out: list[dict], key: str = "text") -> pd.DataFrame:
    from moviegpt.eval import generate

    return pd.DataFrame(
        {"title": [r["title"] for r in out], "generated overview": [generate.shown(r, key) for r in out]}
    )


def _first_fields(run: RunDir, template: str) -> dict:
    """Template fields other than title and overview (e.g. genres), from the run's first test film."""
    from moviegpt.core.validate import fields_of
    from moviegpt.data import movies

    extra = [f for f in fields_of(template) if f not in ("title", "overview")]
    if not extra:
        return {}
    cfg = run_config(run)
    film = movies.load_splits(cfg.data, cfg.seed).test.iloc[0]
    return {f: film[f] for f in extra if f in film}


def invented_titles(run: RunDir, titles: list[str] = INVENTED_TITLES, max_new_tokens: int = 80):
    from moviegpt.eval import generate

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


def source_name(cfg) -> str:
    """Where a title is looked up when the book says whether it is new (movies.known_titles)."""
    return "the bundled sample" if cfg.data.source == "bundled" else f"the data ({cfg.data.source})"


def concepts(run: RunDir, num: int = 3, max_new_tokens: int = 80):
    """Films invented whole; a title that exists in the data is drawn again (up to three draws)."""
    from moviegpt.data import movies
    from moviegpt.eval import generate

    model, tok, s = _trained(str(run.model_dir))
    out = generate.concepts(
        model,
        tok,
        s["template"],
        num,
        generate.Sampling(max_new_tokens=max_new_tokens, seed=1),
        movies.known_titles(run_config(run).data),
        fields=_first_fields(run, s["template"]),
    )
    table = _table(out, "overview").assign(
        **{
            "draws": [r["draws"] for r in out],
            "reads as a title": ["yes" if r["is_title"] else "no" for r in out],
            f"title in {source_name(run_config(run))}": ["yes" if r["title_known"] else "no" for r in out],
        }
    )
    return texts(table)


def completion(run: RunDir, title: str, start: str, num: int = 2, max_new_tokens: int = 80):
    from moviegpt.eval import generate

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


def facts(ev: Evaluation, run: RunDir) -> dict:
    cfg = run_config(run)
    c = ev.concepts["fine-tuned"]
    source = source_name(cfg)
    return {
        "test_films": ev.test_films,
        "k": ev.k,
        "n_concepts": c.n,
        "titles_first": c.titles_first,
        "titles_final": c.titles_final,
        "new_first": f"{c.new_first:.0%}",
        "new_final": f"{c.new_final:.0%}",
        "known_in": source,
        **{f"rec_{k.replace('-', '_')}": v for k, v in ev.recommendation.items()},
        "rec_change": ev.recommendation["fine-tuned"] - ev.recommendation["base"],
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
    """Invented films of each model: of the draws that read as titles, the share not in the data, with Wilson's
    interval over those draws."""
    share = lambda x, n: f"{stats.wilson(round(x * n), n):.0%}" if n else "none read as a title"
    rows = [
        {
            "model": m,
            "invented films": c.n,
            "read as titles, first draw": c.titles_first,
            "new (not in the data), first draw": share(c.new_first, c.titles_first),
            "new, after redrawing known ones": share(c.new_final, c.titles_final),
        }
        for m, c in ev.concepts.items()
    ]
    return texts(pd.DataFrame(rows))
