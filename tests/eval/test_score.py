"""moviegpt.eval.score, the original-recipe arm (book.arms) and the recipe comparison (book.results):
real smoke runs, the real tokenizer, the real bundled films."""

import dataclasses
import math

import numpy as np
import pytest

from moviegpt.book import arms, results
from moviegpt.core.artifacts import EVAL_TITLES
from moviegpt.core.rundir import RunDir
from moviegpt.core.settings import flatten, load_config
from moviegpt.data import tokens
from moviegpt.eval import score
from moviegpt.train.finetune import run as train_run


def test_the_original_arm_differs_from_seed_yaml_only_in_model_data_and_budget(monkeypatch):
    for profile in ("demo", "smoke"):
        monkeypatch.setenv("MOVIEGPT_PROFILE", profile)
        arm, main = arms.requested()[arms.ORIGINAL], arms.requested()[arms.MAIN]
        flat = lambda c: flatten(dataclasses.asdict(c))
        seed = flat(load_config("seed", [f"runs_dir={arm.runs_dir}"]))
        differ = {k for k, v in flat(arm).items() if seed[k] != v}
        assert differ, "the arm must differ in something (the demo's model or films)"
        assert all(k.split(".")[0] in ("model", "data") or k == "train.budget_minutes" for k in differ), differ
        assert {k for k in differ if k.startswith(("model.", "data."))} == {
            k for k, v in flat(main).items() if k.startswith(("model.", "data.")) and seed[k] != v
        }
        assert arm.train.budget_minutes == main.train.budget_minutes
        assert arm.text.eos is False and arm.text.batching == "pad"  # the report's films, from seed.yaml


def test_without_eos_the_films_have_no_end_of_text_target(gpt2_tok):
    films = load_config("smoke").data
    from moviegpt.data import movies

    df = movies.load_splits(films, 0).test.head(4)
    text = load_config("seed").text
    ours = tokens.tokenize(df, gpt2_tok, dataclasses.replace(text, eos=True), desc="t")
    theirs = tokens.tokenize(df, gpt2_tok, text, desc="t")
    eos = gpt2_tok.eos_token_id
    targets = lambda ds: [t for row in ds["labels"] for t in row if t != -100]
    assert targets(ours).count(eos) == sum(min(len(r), 1) for r in df["overview"])  # each film ends with one
    assert eos not in targets(theirs)  # the report's collator masked every pad (= EOS) token


@pytest.fixture(scope="module")
def arm_runs(tmp_path_factory):
    """A smoke run of ours and of the original recipe (seed.yaml on the smoke model and films), short."""
    runs_dir = tmp_path_factory.mktemp("arms")
    ours = load_config("smoke", [f"runs_dir={runs_dir}", "train.max_steps=6"])
    seed = load_config("seed", [f"runs_dir={runs_dir}", "train.max_steps=6"])
    original = dataclasses.replace(seed, model=ours.model, data=ours.data)
    return ours, {arms.MAIN: RunDir(train_run(ours, log=print)), arms.ORIGINAL: RunDir(train_run(original, log=print))}


def test_every_run_is_scored_on_the_same_films_and_the_gap_splits_exactly(arm_runs):
    cfg, runs = arm_runs
    scored = {name: score.score(run, cfg, log=print) for name, run in runs.items()}
    a, b = scored[arms.MAIN], scored[arms.ORIGINAL]
    assert a.settings == b.settings == score.settings(cfg)
    assert a.held_out.film_tokens == b.held_out.film_tokens  # the same tokens, so the gap decomposes
    assert set(a.eos_targets) == {0, 1} and sum(a.eos_targets) > len(a.eos_targets) / 2  # 0: cut before its EOS
    assert all(0 <= e <= f for e, f in zip(a.eos_nll, a.held_out.film_nll))
    # the main run's own held-out evaluation scored the same films the same way
    assert np.allclose(a.held_out.film_nll, runs[arms.MAIN].summary().final.film_nll, rtol=1e-4)
    assert len(a.stopped) == len(a.words) == min(EVAL_TITLES, a.held_out.films)
    f = results.original_facts(runs, scored)
    n = np.asarray(a.held_out.film_tokens).sum()
    gap = (np.sum(b.held_out.film_nll) - np.sum(a.held_out.film_nll)) / n
    assert float(f["orig_gap_nats"]) == pytest.approx(gap, abs=1e-3)
    assert float(f["orig_eos_nats"]) + float(f["orig_words_nats"]) == pytest.approx(gap, abs=2e-3)
    assert f["orig_eos"] == "no end-of-text target"
    assert score.score(runs[arms.MAIN], cfg, log=lambda m: pytest.fail("recomputed")) == a  # read back, not redone
    table = results.recipe_table(runs, scored, [False] * len(a.stopped)).data
    assert list(table.columns)[1:] == [results.BASE, arms.ORIGINAL, arms.MAIN]
    ppl = table.set_index("").loc["held-out perplexity", arms.MAIN]
    assert ppl.startswith(f"{math.exp(a.held_out.loss):,.2f} (95% CI")
