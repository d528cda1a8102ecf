"""Reference runs on the book's pages: the runs under data/reference/ (moviegpt.core.reference, read and checked)
that were scored on this build's films and titles, set beside this build's main run with who made each, where and
with what recipe. A reference that cannot be read, or was scored another way, is left out with a sentence saying so.
Importing this module loads no model library."""

from __future__ import annotations

from moviegpt.book.results import columns_table, parts, recipe_column
from moviegpt.book.words import ci, verdict
from moviegpt.core import reference, stats
from moviegpt.core.config import Config
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import load_run_config


def shown(root, main_cfg: Config) -> tuple[dict, list[str]]:
    """The references scored as this build's runs are (the same settings and the same number of films), and one
    line for each left out."""
    from moviegpt.eval import score

    want = score.settings(main_cfg)
    found = reference.references(root)
    ok, left = {}, list(found.left_out)
    films = main_cfg.data.max_eval_rows
    for name, ref in found.ok.items():
        if ref.score is None or ref.score.settings != want:
            left.append(f"{name}: scored on other films or settings than this build's")
        elif films and len(ref.score.held_out.film_nll) != films:
            left.append(f"{name}: its score holds {len(ref.score.held_out.film_nll)} films, not this build's {films}")
        else:
            ok[name] = ref
    return ok, left


def described(ref: reference.Reference) -> str:
    """What a reference trained, from its own config: profile, budget or steps, films and passes."""
    cfg = load_run_config(ref.run.path)
    s = ref.summary
    how = f"a {cfg.train.budget_minutes:g}-minute budget" if cfg.train.budget_minutes else f"{s.steps} steps"
    return (
        f"the {cfg.profile} profile with {how}: {s.steps} steps, {s.tokens_seen:,} tokens, "
        f"{s.epochs:.2f} passes over {s.data.used('train') or 0:,} training films"
    )


def table(name: str, run: RunDir, sc, refs: dict, machine: str):
    """This build's run beside each reference run, on the same measures, with who made each and where."""
    cols = {f"{name} (this build)": {"made by": "this build", "machine": machine, **recipe_column(run, sc)}}
    for ref_name, ref in refs.items():
        code = ref.made.get("code") or {}
        cols[ref_name] = {
            "made by": f"moviegpt {code.get('version', '?')}, source {code.get('source', '?')}, not this build",
            "machine": ref.made["machine"],
            "finished": ref.made["finished"],
            **recipe_column(ref.run, ref.score),
        }
    return columns_table(cols)


def facts(run: RunDir, sc, refs: dict, left_out: list[str]) -> dict:
    """The first reference against this build's run, paired on the same films, in a sentence, and what was left out."""
    left = " Left out: " + "; ".join(left_out) + "." if left_out else ""
    if not refs:
        return {
            "ref_sentence": "No reference run that can be compared ships with this copy, so the figure shows only this "
            "build's runs." + left
        }
    name, ref = next(iter(refs.items()))
    nll, n, _, _ = parts(sc)
    rnll, rn, _, _ = parts(ref.score)
    ratio = stats.perplexity_ratio(nll, n, rnll, rn)  # the reference over this build's run
    rs, s = ref.summary, run.summary()
    code = ref.made.get("code") or {}
    return {
        "ref_sentence": (
            f"The reference run {name} trained {described(ref)}, {rs.tokens_seen / max(s.tokens_seen, 1):.1f} times "
            f"the tokens of this build's run. It was not made by this build: it was made on {ref.made['machine']}, "
            f"finished {ref.made['finished']}, by moviegpt {code.get('version', '?')} (source "
            f"{code.get('source', '?')}), and exported with moviegpt export into data/reference/{name}; its films and "
            "code differ from this build's as well as its length. Scored on the same test films, its held-out "
            f"perplexity is {ci(ratio)} times that of this build's run, so it is "
            f"{verdict(ratio, 1.0, 'higher (worse) than', 'lower (better) than', 'not measurably different from')} "
            "it." + left
        )
    }


def points(runs: dict[str, RunDir], scored: dict, refs: dict) -> list[dict]:
    """Held-out perplexity (on the compared films, with its interval) against tokens trained, for every run the
    book knows: this build's and the references."""
    pts = []
    for name, tokens, sc, here in [
        *((n, r.summary().tokens_seen, scored[n], True) for n, r in runs.items()),
        *((n, ref.summary.tokens_seen, ref.score, False) for n, ref in refs.items()),
    ]:
        nll, n, _, _ = parts(sc)
        iv = stats.perplexity(nll, n)
        pts.append({"run": name, "tokens": tokens, "ppl": iv.value, "lo": iv.lo, "hi": iv.hi, "this_build": here})
    return pts
