"""moviegpt.generate: a template with more fields than the title is filled from the command line or asked for."""

import pytest

from moviegpt import load_config

from conftest import one_error, run_cli


@pytest.fixture(scope="module")
def genres_run(tmp_path_factory):
    from moviegpt.train import run

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
