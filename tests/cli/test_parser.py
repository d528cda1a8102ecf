"""moviegpt.cli.parser (and the commands behind it): the command line, its numbers and texts, and its environment."""

import json
import os
import subprocess
import sys

import pytest
from conftest import run_cli, one_error, one_line, readme_rows, run_argv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def cli(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    return subprocess.run(
        [sys.executable, "-m", "moviegpt.cli", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--config", "nosuch"], "unknown profile 'nosuch'"),
        (["train", "--config", "/tmp/missing.yaml"], "config file not found"),
        (["train", "--set", "train.batch_size=0"], "train.batch_size=0 must be at least 1"),
        (["train", "--set", "train.lerning_rate=1"], "did you mean 'train.learning_rate'"),
        (["prepare", "--set", "data.source=/no/such/films.csv"], "data file not found: /no/such/films.csv"),
        (
            ["train", "--config", "seed", "--set", "model.name=gpt2", "--set", "data.source=bundled"],
            "cannot reach the Hugging Face hub to load model 'gpt2'",
        ),
        (["evaluate", "--model", "/tmp"], "is not a model directory"),
        (["generate", "--model", "/no/such/dir", "--title", "Heat"], "cannot reach the Hugging Face hub"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, fragment, tmp_path):
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("moviegpt: error: ") and fragment in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # a failed start leaves nothing


def test_help_for_every_command():
    for cmd in ["prepare", "train", "evaluate", "generate"]:
        r = cli(cmd, "--help")
        assert r.returncode == 0 and "usage: moviegpt " + cmd in r.stdout


def test_prepare_prints_counts_and_token_statistics():
    r = cli("prepare", "--config", "smoke")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rows_in"] == 4803 and out["dropped"]["missing_overview"] == 4
    assert out["splits"]["train"]["used"] == 256 and out["train_tokens"]["films"] == 256
    assert out["train_tokens"]["pad"]["padding_share"] > 0.3 and out["train_examples"] > 0


def test_evaluate_and_generate_a_trained_model(smoke_run):
    r = cli("evaluate", "--model", str(smoke_run / "model"), "--data", "bundled", "--max-rows", "16")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert ev["films"] == 16 and ev["tokens"] > 0 and abs(ev["loss"] - summary["final"]["loss"]) < 1.0
    r = cli("generate", "--model", str(smoke_run / "model"), "--title", "Heat", "--num", "2", "--max-new-tokens", "12")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Movie: Heat\nOverview:") == 2


def test_generate_rejects_a_prompt_longer_than_the_context(smoke_run):
    r = cli("generate", "--model", str(smoke_run / "model"), "--title", "word " * 300)
    assert r.returncode == 2 and "exceeds the model's context" in r.stderr


def test_generate_modes(smoke_run):
    model = str(smoke_run / "model")
    r = cli("generate", "--model", model, "--mode", "concept", "--num", "2", "--max-new-tokens", "12")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Movie: ") == 2 and r.stdout.count("Overview: ") == 2
    r = cli(
        "generate",
        "--model",
        model,
        "--mode",
        "completion",
        "--title",
        "Heat",
        "--text",
        "A retired safecracker",
        "--num",
        "1",
        "--max-new-tokens",
        "8",
    )
    assert r.returncode == 0 and r.stdout.startswith("Movie: Heat\nOverview: A retired safecracker")
    r = cli("generate", "--model", model, "--mode", "completion", "--title", "Heat")
    assert r.returncode == 2 and "needs the start of an overview" in r.stderr
    r = cli("generate", "--model", model, "--mode", "concept", "--genre", "Drama")
    assert r.returncode == 2 and "template has no {genres} field" in r.stderr


def test_recommend_by_title_and_by_free_text(smoke_run):
    from moviegpt.core.settings import load_run_config
    from moviegpt.eval.recommend import corpus

    title = corpus(load_run_config(smoke_run))["title"].iloc[3]
    r = cli("recommend", "--model", str(smoke_run / "model"), "--title", title, "-k", "4")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["title", "year"] and len(lines) == 5 and "not a title" not in r.stderr
    assert (smoke_run / "embeddings.npy").exists()  # computed once, cached in the run directory
    r = cli("recommend", "--model", str(smoke_run / "model"), "--title", "a lonely robot falls in love", "-k", "2")
    assert r.returncode == 0 and "is not a title in the corpus" in r.stderr and len(r.stdout.strip().splitlines()) == 3


def test_evaluate_run_prints_the_headline(smoke_run):
    r = cli("evaluate", "--run", str(smoke_run))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["perplexity"]) == {"base", "fine-tuned"} and "genre_overlap@5" in out
    assert (smoke_run / "eval.json").exists()


# ------------------------------------------------------------------ bad numbers on the command line


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--temperature", "0"], "temperature=0.0 must be at least 0.01"),
        (["--temperature", "-1"], "must be at least 0.01"),
        (["--top-p", "1.5"], "top_p=1.5 must be at most 1"),
        (["--num", "0"], "--num=0 must be at least 1"),
        (["--max-new-tokens", "inf"], "must be a finite number"),
        (["--repetition-penalty", "0.5"], "repetition_penalty=0.5 must be at least 1"),
    ],
)
def test_bad_command_line_numbers(argv, fragment, smoke_run, capfd):
    one_error(capfd, fragment, "generate", "--model", str(smoke_run / "model"), "--title", "Heat", *argv)


def test_bad_port_and_batch_size(smoke_run, capfd):
    one_error(
        capfd, "--port=70000 must be at most 65535", "demo", "--model", str(smoke_run / "model"), "--port", "70000"
    )
    one_error(
        capfd, "--batch-size=0 must be at least 1", "evaluate", "--model", str(smoke_run / "model"), "--batch-size", "0"
    )
    one_error(
        capfd, "moviegpt generate: argument --num/-n: invalid float value", "generate", "--model", "x", "--num", "two"
    )


# ------------------------------------------------------------------ titles


def test_empty_and_undecodable_titles(smoke_run, capfd):
    rows, model = readme_rows(), smoke_run / "model"
    for title in ("", "   "):
        assert rows["empty-title"] in one_line(*run_argv(["recommend", "-m", model, "--title", title], capfd))
    bad = os.fsdecode(b"\xff\xfe film")  # what Python makes of bytes on the command line that are not UTF-8
    for argv in (["generate", "-m", model, "--title", bad], ["recommend", "-m", model, "--title", bad]):
        assert rows["title-not-utf8"] in one_line(*run_argv(argv, capfd))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=0, max_size=64), command=st.sampled_from(["generate", "recommend"]))
def test_any_bytes_as_a_title_are_answered_or_refused_in_one_line(smoke_run, capfd, raw, command):
    argv = [command, "-m", smoke_run / "model", "--title", os.fsdecode(raw)]
    argv = [*argv, "--max-new-tokens", "4"] if command == "generate" else [*argv, "-k", "2"]
    code, out, err = run_cli(capfd, *map(str, argv))
    if code != 0:
        one_line(code, err)
    elif command == "generate":
        assert out.startswith("Movie: ") and "\nOverview: " in out, out  # an answer, in the model's template
    else:
        rows = [line for line in out.splitlines()[1:] if line.strip()]
        assert len(rows) == 2, out  # a header and the k films asked for


# ------------------------------------------------------------------ the environment


def cli_in_env(env: dict, *argv) -> tuple[int, str]:
    r = subprocess.run(
        [sys.executable, "-m", "moviegpt.cli", *map(str, argv)],
        env={k: v for k, v in os.environ.items() if k not in env} | env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return r.returncode, r.stderr


@settings(max_examples=6, deadline=None)
@given(kind=st.sampled_from(["file", "under-a-file", "fine"]), var=st.sampled_from(["MOVIEGPT_CACHE", "HOME"]))
def test_a_cache_or_home_that_is_not_a_folder_names_the_variable(tmp_path_factory, kind, var):
    tmp = tmp_path_factory.mktemp("env")
    (tmp / "f").write_text("a file")
    where = {"file": tmp / "f", "under-a-file": tmp / "f" / "cache", "fine": tmp / "ok"}[kind]
    if var == "HOME" and kind == "file":
        where = tmp / "f"  # HOME/.cache/moviegpt then sits under a file
    env = {var: str(where)} | ({} if var == "MOVIEGPT_CACHE" else {"MOVIEGPT_CACHE": ""})
    env = {k: v for k, v in env.items() if v}
    code, err = cli_in_env(env, "prepare", "--config", "smoke", "--set", f"runs_dir={tmp / 'runs'}")
    if kind == "fine":
        assert code == 0, err
    else:
        assert "set " in one_line(code, err) and var in err
    assert (tmp / "f").read_text() == "a file"
