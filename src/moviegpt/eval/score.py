"""The scoring stage of a comparison: every run the book compares, scored the same way (RUN/score.json).

Runs with different recipes are trained on different text: the report's recipe pads each film to 128 tokens
and never ends it with an end-of-text target (configs/seed.yaml, text.eos: false). So each run's own
held-out number (summary.json) is measured on its own recipe's films. Here every run's model reads the same
test films, built with the main run's template and per-film length and ended with their EOS, and samples
from the same first test titles with the same seed. The NLL of each film's EOS target is kept apart, so a
comparison can say how much of a gap is the model not knowing where an overview ends.
"""

from __future__ import annotations

import json

from moviegpt.core.artifacts import EVAL_BATCH, EVAL_TITLES, Score, eval_settings, from_dict
from moviegpt.core.config import Config
from moviegpt.core.rundir import RunDir


def settings(main: Config, n_titles: int = EVAL_TITLES, max_new_tokens: int = 80, seed: int = 0) -> dict:
    """What makes two scores comparable: the films, their text, the titles and the sampling."""
    return {
        "template": main.text.template,
        "max_length": main.scored_length,
        "version": 2,  # 2: validation films scored too, and the held-out films by token type
        "data": [main.data.source, list(main.data.splits), main.data.max_eval_rows, main.data.seed or main.seed],
        **eval_settings(n_titles, max_new_tokens, seed, 0),
    }


def scored(run: RunDir, main: Config) -> Score:
    """The run's score.json for these settings, read without a model library; computed only when missing."""
    found = read(run)
    return found if found is not None and found.settings == settings(main) else score(run, main, lambda m: None)


def read(run: RunDir) -> Score | None:
    try:
        return from_dict(Score, json.loads((run / "score.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def score(run: RunDir, main: Config, log=print, n_titles: int = EVAL_TITLES, seed: int = 0) -> Score:
    """RUN/score.json, computed once for these settings (a file with other settings is recomputed). Where the
    run's eval.json already sampled the same titles the same way, its fine-tuned texts are reused."""
    from moviegpt.data import movies, tokens
    from moviegpt.eval.evaluate import film_nll, held_out
    from moviegpt.eval.generate import Sampling, generate_overviews
    from moviegpt.model.causal_lm import load_trained

    want = settings(main, n_titles, seed=seed)
    if (found := read(run)) is not None and found.settings == want:
        return found
    log(f"Scoring {run.name} on the compared films and titles...")
    splits = movies.load_splits(main.data, main.seed)
    model, tok, _ = load_trained(str(run.model_dir))
    test_ds = tokens.scored(splits.test, tok, main.text.template, main.scored_length, desc="test films")
    nll, n, type_nll, type_n = film_nll(model, test_ds, main.train.eval_batch_size, "scoring")
    eos = tokens.TOKEN_TYPES.index("eos")
    validation = None
    if len(splits.validation):
        val_ds = tokens.scored(splits.validation, tok, main.text.template, main.scored_length, desc="validation films")
        validation = held_out(*film_nll(model, val_ds, main.train.eval_batch_size, "scoring validation films"))
    films = splits.test.head(n_titles).to_dict("records")
    gens = reused(run, want) or generate_overviews(
        model,
        tok,
        films,
        main.text.template,
        how=Sampling(max_new_tokens=want["max_new_tokens"], seed=seed),
        batch_size=EVAL_BATCH,
    )
    from moviegpt.core.settings import load_run_config

    own = run.summary().final  # the run's own held-out numbers, where it scored these films the same way
    same = settings(load_run_config(run.path), n_titles, seed=seed) == want and len(own.film_nll or []) == len(nll)
    same = same and own.films_hash == movies.content_hash(splits.test)  # the same films, not merely as many
    record = Score(
        run=run.name,
        settings=want,
        held_out=own if same else held_out(nll, n, type_nll, type_n),  # one number wherever they agree
        eos_nll=type_nll[:, eos].tolist(),
        eos_targets=type_n[:, eos].tolist(),
        stopped=[bool(g["ended_with_eos"]) for g in gens],
        words=[len(g["text"].split()) for g in gens],
        generated=[g["text"] for g in gens],
        validation=validation,
    )
    run.write_json(run / "score.json", record)
    return record


def reused(run: RunDir, want: dict) -> list[dict] | None:
    """The fine-tuned generations of the run's eval.json, when they sampled these titles this way."""
    ev = run.evaluation()
    if ev is None or eval_settings(want["n_titles"], want["max_new_tokens"], want["seed"], ev.k) != ev.settings:
        return None
    return [
        {"text": e.generated["fine-tuned"].text, "ended_with_eos": e.generated["fine-tuned"].ended_with_eos}
        for e in ev.examples
    ]
