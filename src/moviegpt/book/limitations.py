"""The Limitations chapter's facts: how much of the full recipe this build's run covered, from its own counts, and
the model sizes the original report wanted to try. Importing it loads no model library."""

from __future__ import annotations

from moviegpt.core.rundir import RunDir
from moviegpt.data.movies import WYKONOS_ROWS

GPT2_SIZES = {  # parameters of GPT2LMHeadModel at each size
    "gpt2_parameters": 124_439_808,
    "gpt2_medium_parameters": 354_823_168,
    "gpt2_large_parameters": 774_030_080,
}


def study_reach(study) -> dict:
    """How small a change the reference study can tell from its seeds' spread: the half-widths of its steps'
    intervals for the mean over seeds (as a share of the ratio), smallest and largest."""
    from moviegpt.book import study as S

    t = S.steps_table(study) if study is not None and study.runs else None
    if t is None or t.empty or (t["n_seeds"] < 2).all():
        return {
            "reach_sentence": "The reference study in this copy has too few seeds yet to say how small a change "
            "its seeds can measure."
        }
    t = t[t["n_seeds"] >= 2]
    half = [(iv.hi / iv.lo) ** 0.5 - 1 for iv in t["seeds"]]  # the interval is symmetric in log: exp(half-width) - 1
    return {
        "reach_sentence": f"Its intervals for the mean over {int(t['n_seeds'].max())} seeds reach "
        f"{min(half):.1%} to {max(half):.1%} either side of the ratio, depending on the change: a change smaller "
        "than that cannot be told from the seeds' spread."
    }


def scale(run: RunDir) -> dict:
    s, info = run.summary(), run.info()
    films = s.data.used("train") or 1
    tokens_per_film = s.tokens_seen / max(s.epochs, 1e-9) / films
    full_tokens = WYKONOS_ROWS * tokens_per_film
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
