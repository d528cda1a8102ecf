"""moviegpt.eval.generate: a template with more fields than the title is filled from the command line or asked for."""

import pytest
from conftest import one_error, run_cli

from moviegpt import load_config


@pytest.fixture(scope="module")
def genres_run(tmp_path_factory):
    from moviegpt.train.finetune import run

    cfg = load_config(
        "smoke",
        [
            f"runs_dir={tmp_path_factory.mktemp('g')}",
            "data.max_train_rows=64",
            "train.max_steps=4",
            "text.template=Genres: {genres}\nMovie: {title}\nOverview: {overview}",
        ],
    )
    return run(cfg, log=lambda m: None)


def test_a_genres_template_is_filled_or_asked_for(genres_run, capfd):
    model = str(genres_run / "model")
    one_error(capfd, "{genres} (--genre)", "generate", "--model", model, "--title", "Heat")
    code, out, err = run_cli(
        capfd,
        "generate",
        "--model",
        model,
        "--title",
        "Heat",
        "--genre",
        "Crime",
        "--num",
        "1",
        "--max-new-tokens",
        "4",
    )
    assert code == 0 and out.startswith("Genres: Crime\nMovie: Heat\nOverview:"), err
    one_error(capfd, "{genres} (--genre)", "generate", "--model", model, "--mode", "concept")
    code, out, err = run_cli(
        capfd,
        "generate",
        "--model",
        model,
        "--mode",
        "concept",
        "--genre",
        "Drama",
        "--num",
        "1",
        "--max-new-tokens",
        "6",
    )
    assert code == 0, err
    code, out, err = run_cli(capfd, "evaluate", "--run", str(genres_run))
    assert code == 0, err


def test_a_time_limit_stops_sampling_before_its_token_limit(genres_run):
    """train.samples in a planned run: each pass's samples stop at their part of the budget (generate's max_time)."""
    from moviegpt.eval.generate import Sampling, sample
    from moviegpt.model.causal_lm import load_trained

    model, tok, _ = load_trained(str(genres_run / "model"))
    prompts = ["Genres: Drama\nMovie: Heat\nOverview:"] * 2
    free = sample(model, tok, prompts, how=Sampling(max_new_tokens=64, seed=1), batch_size=2)
    cut = sample(model, tok, prompts, how=Sampling(max_new_tokens=64, seed=1, max_time=1e-4), batch_size=2)
    assert max(g["new_tokens"] for g in cut) < max(g["new_tokens"] for g in free)
    assert not any(g["ended_with_eos"] for g in cut)  # stopped by the clock, not by the model
