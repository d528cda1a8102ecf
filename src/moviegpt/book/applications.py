"""The Applications chapter's texts made on the spot: a trained model writes overviews for invented titles,
invents films, and completes an overview. These load the run's model when called (once per model).
"""

from __future__ import annotations

import functools

import pandas as pd

from moviegpt.book.report import run_config, texts
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
        **{"draws": [r["draws"] for r in out], "title is a real film": [r["title_known"] for r in out]}
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
