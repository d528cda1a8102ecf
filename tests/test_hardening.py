"""Each class of outside input that used to fail, with a real case: code from data, the demo server, terminal
injection, config bombs, paths that escape, values that crashed, hostile data, damaged run artifacts, templates
with more fields, and a run that diverges. (The property-based tests in test_hostile.py generate many more.)"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moviegpt import UserError, cli, demo, load_config, validate
from moviegpt.rundir import RunDir

from conftest import PROJECT_ROOT as ROOT


def run_cli(capfd, *argv) -> tuple[int, str, str]:
    capfd.readouterr()
    code = cli.main(list(argv))
    out = capfd.readouterr()
    return code, out.out, out.err


def one_error(capfd, fragment, *argv, after_progress=False) -> None:
    """Exit 2 and one error line; a command that got as far as training may have logged its progress first."""
    code, _, err = run_cli(capfd, *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and lines and lines[-1].startswith("moviegpt: error:") and fragment in lines[-1], err
    assert len(lines) == 1 or (after_progress and not any("error" in line.lower() for line in lines[:-1])), err


# ------------------------------------------------------------------ code from data


def model_dir_with_code(tmp: Path, smoke_run) -> Path:
    """A copy of a real model directory whose config names its own module, which would leave a marker if run."""
    d = tmp / "sneaky"
    d.mkdir()
    for f in (smoke_run / "model").iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    (d / "evil.py").write_text(
        f"open({str(tmp / 'RAN')!r}, 'w').write('yes')\nfrom transformers import GPT2Config as Evil\n"
    )
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "evil.Evil", "AutoModelForCausalLM": "evil.Evil"}
    (d / "config.json").write_text(json.dumps(cfg))
    tok = json.loads((d / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["evil.Evil", None]}
    (d / "tokenizer_config.json").write_text(json.dumps(tok))
    return d


def test_a_model_directory_that_names_code_is_refused_without_a_prompt(smoke_run, tmp_path):
    d = model_dir_with_code(tmp_path, smoke_run)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    for argv in (
        ["train", "--config", "smoke", "--set", f"model.name={d}", "--set", f"runs_dir={tmp_path / 'r'}"],
        ["train", "--config", "smoke", "--set", f"model.tokenizer={d}", "--set", f"runs_dir={tmp_path / 'r'}"],
        ["generate", "--model", str(d), "--title", "Heat"],
        ["evaluate", "--model", str(d)],
    ):
        r = subprocess.run(
            [sys.executable, "-m", "moviegpt.cli", *argv],
            input="y\ny\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert r.returncode == 2 and "never runs code from a model directory" in r.stderr, r.stderr
        assert "[y/N]" not in r.stdout + r.stderr and not (tmp_path / "RAN").exists()


def test_every_from_pretrained_says_trust_remote_code_false():
    for f in (ROOT / "src" / "moviegpt").glob("*.py"):
        for line_no, line in enumerate(f.read_text().splitlines(), 1):
            if ".from_pretrained(" in line and "def " not in line and "GPT2Tokenizer" not in line:
                assert "trust_remote_code=False" in line or "**kw" in line, f"{f.name}:{line_no}: {line.strip()}"


# ------------------------------------------------------------------ the demo server


def request(port, method, path, body=b"", headers=None) -> tuple[int, dict]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items():
        if v is not None:
            c.putheader(k, v)
    c.endheaders(body)
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"{}")


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "headers, body, status, fragment",
    [
        ({**JSON, "Content-Length": "-1"}, b"{}", 411, "Content-Length"),
        ({**JSON, "Content-Length": "abc"}, b"{}", 411, "Content-Length"),
        (JSON, b"", 411, "Content-Length"),  # no Content-Length header at all
        ({**JSON, "Content-Length": str(400 * 2**20)}, b"{}", 413, "too large"),  # never read whatever it claims
        ({**JSON, "Host": "evil.example"}, b"{}", 421, "loopback"),  # DNS rebinding
        ({**JSON, "Origin": "http://evil.example"}, b"{}", 403, "cross-origin"),  # CSRF from another page
        ({"Content-Type": "text/plain"}, b"{}", 415, "JSON"),  # a form post from any page
        (JSON, b'{"mode": "title", "title": "Heat", "max_new_tokens": 1e309}', 400, "finite"),
        (JSON, b'{"mode": "title", "title": "Heat", "num": Infinity}', 400, "not JSON"),
        (JSON, b'{"mode": "title", "title": "Heat", "temperature": -1}', 400, "temperature"),
    ],
)
def test_demo_answers_bad_requests_with_a_4xx(server, headers, body, status, fragment):
    length = headers.get("Content-Length", str(len(body)) if body else None)
    got, out = request(server, "POST", "/api/generate", body, {**headers, "Content-Length": length})
    assert got == status and fragment in out["error"], out
    assert request(server, "GET", "/api/info")[0] == 200  # and keeps serving


def test_demo_cuts_off_a_silent_client(server, monkeypatch):
    s = socket.create_connection(("127.0.0.1", server))
    s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
    s.settimeout(demo.LIMITS["timeout_s"] + 20)
    t = time.time()
    assert s.recv(100) == b"" and time.time() - t < demo.LIMITS["timeout_s"] + 15  # closed by the server
    assert request(server, "GET", "/api/info")[0] == 200


def test_demo_binds_beyond_loopback_only_when_asked(smoke_run, capfd):
    with pytest.raises(UserError, match="not a loopback address"):
        demo.make_server(str(smoke_run / "model"), "0.0.0.0", 0)
    srv = demo.make_server(str(smoke_run / "model"), "0.0.0.0", 0, allow_remote=True)
    srv.server_close()
    assert "warning: the demo is served on 0.0.0.0" in capfd.readouterr().err


# ------------------------------------------------------------------ terminal injection


def test_control_characters_never_reach_the_terminal(smoke_run, capfd):
    evil = "\x1b[2J\x1b]0;pwned\x07Heat\x9b31m"
    code, out, err = run_cli(
        capfd,
        "generate",
        "--model",
        str(smoke_run / "model"),
        "--mode",
        "completion",
        "--title",
        evil,
        "--text",
        "A thief",
        "--num",
        "1",
        "--max-new-tokens",
        "4",
    )
    assert code == 0 and "Heat" in out and not any(c in out + err for c in "\x1b\x07\x9b")
    code, out, err = run_cli(capfd, "recommend", "--model", str(smoke_run / "model"), "--title", evil, "-k", "2")
    assert code == 0 and not any(c in out + err for c in "\x1b\x07\x9b")
    assert validate.terminal("a\x1b]0;title\x07b\x1b[31mc\nd") == "abc\nd"


# ------------------------------------------------------------------ config bombs and paths


def test_yaml_aliases_are_refused_before_they_expand(tmp_path, capfd):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
    )
    (tmp_path / "bomb.yaml").write_text(bomb)
    assert len(bomb) < 600
    t = time.time()
    one_error(capfd, "aliases", "config", "--config", str(tmp_path / "bomb.yaml"))
    assert time.time() - t < 5


@pytest.mark.parametrize("override", ["profile=../../x", "profile=a/b", "profile=..", "profile=''", "profile=/abs"])
def test_profile_names_cannot_leave_runs_dir(override, capfd):
    one_error(capfd, "profile name", "config", "--config", "smoke", "--set", override)


def test_a_profile_key_in_yaml_is_checked_too(tmp_path, capfd):
    (tmp_path / "mine.yaml").write_text("profile: ../escape\n")
    one_error(capfd, "profile name", "config", "--config", str(tmp_path / "mine.yaml"))


# ------------------------------------------------------------------ values that used to crash


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.max_steps=.inf", "must be a finite number"),
        ("train.epochs=.nan", "must be a finite number"),
        ("seed=-1", "seed=-1 must be at least 0"),
        ("train.learning_rate=1e309", "must be a finite number"),
        ("text.template={title", "not a valid template"),
        ("text.template={title.__class__}{overview}", "must be a column name"),
        ("text.template={title:d} {overview}", "format that text does not take"),
        ("train.lr_scheduler=cosine_with_restart", "did you mean 'cosine_with_restarts'"),
        ("train.optim=adamw_fused", "is not one of"),
        ("train.trainer_args.gradient_checkpointng=true", "did you mean 'gradient_checkpointing'"),
        ("train.trainer_args.learning_rate=1", "set by moviegpt itself"),
        ("data.splits=[0.5, 0.5", "not a valid value"),
    ],
)
def test_bad_values_are_one_line_before_anything_loads(override, fragment, capfd):
    one_error(capfd, fragment, "config", "--config", "smoke", "--set", override)


def test_trainer_args_refuses_every_field_moviegpt_sets():
    """A TrainingArguments field that training_args passes itself cannot also come from train.trainer_args (it
    would end in "got multiple values for keyword argument"); the list is read from the call, and a real
    TrainingArguments is built from it."""
    from moviegpt import trainer
    from moviegpt.config import Config
    from moviegpt.settings import check_trainer_args

    passed = set(trainer.arguments(Config(), Path("."), "fp32", has_eval=True)) - set(trainer.NO_STEP_SYNC)
    assert len(passed) > 25 and passed == trainer.own_args()
    assert trainer.training_args(Config(), Path("."), "fp32", has_eval=True).eval_on_start
    for name in passed:
        with pytest.raises(UserError, match="set by moviegpt itself"):
            check_trainer_args({name: None})
    check_trainer_args({name: False for name in trainer.NO_STEP_SYNC if name == "logging_nan_inf_filter"})


def test_text_values_keep_their_text(capfd):
    code, out, _ = run_cli(
        capfd,
        "config",
        "--config",
        "smoke",
        "--set",
        "text.template=Plot: {title}: {overview}",
        "--set",
        "data.source=[films.csv",
    )
    assert code == 0 and "Plot: {title}: {overview}" in out and "'[films.csv'" in out


def test_runs_dir_that_is_a_file(tmp_path, capfd):
    (tmp_path / "afile").write_text("x")
    one_error(capfd, "is a file", "train", "--config", "smoke", "--set", f"runs_dir={tmp_path / 'afile'}")
    one_error(capfd, "lies under one", "train", "--config", "smoke", "--set", f"runs_dir={tmp_path / 'afile' / 'x'}")


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


# ------------------------------------------------------------------ hostile data


def films(n=40, **cols) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title": [f"Film {i}" for i in range(n)],
            "overview": [f"A story number {i} about a town at night." for i in range(n)],
            **cols,
        }
    )


def test_a_film_list_without_ids_splits_by_its_content(tmp_path, capfd):
    films().to_csv(tmp_path / "mine.csv", index=False)
    code, out, err = run_cli(capfd, "prepare", "--config", "smoke", "--set", f"data.source={tmp_path / 'mine.csv'}")
    assert code == 0, err
    first = json.loads(out)["splits"]
    films().sample(frac=1, random_state=3).to_csv(tmp_path / "shuffled.csv", index=False)
    code, out, _ = run_cli(capfd, "prepare", "--config", "smoke", "--set", f"data.source={tmp_path / 'shuffled.csv'}")
    assert json.loads(out)["splits"] == first  # the same films land in the same splits


def test_numbers_as_genres_fill_a_genres_template(tmp_path, capfd):
    films(genres=list(range(40))).to_csv(tmp_path / "g.csv", index=False)
    code, _, err = run_cli(
        capfd,
        "prepare",
        "--config",
        "smoke",
        "--set",
        f"data.source={tmp_path / 'g.csv'}",
        "--set",
        "text.template=Genres: {genres}\nMovie: {title}\nOverview: {overview}",
    )
    assert code == 0, err


def test_bytes_in_parquet_are_decoded_or_refused(tmp_path, capfd):
    df = films()
    df["overview"] = [o.encode() for o in df["overview"]]
    df.to_parquet(tmp_path / "b.parquet")
    from moviegpt import data

    got = data.normalise(data.read_table(str(tmp_path / "b.parquet")))
    assert got["overview"].iloc[0] == "A story number 0 about a town at night."  # decoded, not "b'...'"
    df["overview"] = [b"\xff\xfe not utf-8"] * len(df)
    df.to_parquet(tmp_path / "bad.parquet")
    one_error(
        capfd,
        "holds bytes that are not UTF-8",
        "prepare",
        "--config",
        "smoke",
        "--set",
        f"data.source={tmp_path / 'bad.parquet'}",
    )


def test_a_bad_line_in_a_streamed_jsonl_is_one_line(tmp_path, capfd):
    lines = [json.dumps({"id": i, "title": f"Film {i}", "overview": f"Story {i} of a long night."}) for i in range(300)]
    lines.insert(150, '{"id": 9999, "title": "Broken", "overview": ')
    (tmp_path / "s.jsonl").write_text("\n".join(lines) + "\n")
    one_error(
        capfd,
        "while streaming",
        "train",
        "--config",
        "smoke",
        "--set",
        f"data.source={tmp_path / 's.jsonl'}",
        "--set",
        "data.streaming=true",
        "--set",
        "train.max_steps=2",
        "--set",
        f"runs_dir={tmp_path / 'runs'}",
    )


def test_a_remote_source_that_never_answers_times_out(tmp_path, capfd):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections and never answers
    port = listener.getsockname()[1]
    t = time.time()
    one_error(
        capfd,
        "cannot read data file",
        "prepare",
        "--config",
        "smoke",
        "--set",
        f"data.source=http://127.0.0.1:{port}/films.csv",
        "--set",
        "data.timeout_s=2",
    )
    assert time.time() - t < 30
    listener.close()


# ------------------------------------------------------------------ damaged run artifacts


@pytest.fixture
def run_copy(smoke_run, tmp_path):
    import shutil

    d = tmp_path / "runs" / smoke_run.name
    shutil.copytree(smoke_run.path, d)
    return RunDir(d)


def test_a_truncated_summary_is_named_with_what_to_do(run_copy, capfd):
    run_copy.summary_json.write_text(run_copy.summary_json.read_text()[:40])
    one_error(capfd, f"run summary {run_copy.summary_json} is damaged", "evaluate", "--run", str(run_copy))


def test_a_damaged_eval_json_is_recomputed(run_copy):
    from moviegpt import evaluate

    first = evaluate.evaluate_run(run_copy.path, n_titles=2, max_new_tokens=6, log=lambda m: None)
    run_copy.eval_json.write_text(run_copy.eval_json.read_text()[:100])
    assert evaluate.evaluate_run(run_copy.path, n_titles=2, max_new_tokens=6, log=lambda m: None) == first


def test_a_partial_metrics_line_is_dropped(run_copy):
    n = len(run_copy.metrics())
    with open(run_copy.metrics_jsonl, "a") as fh:
        fh.write('{"kind": "train", "step": 99, "lo')
    assert len(run_copy.metrics()) == n
    run_copy.rewind_metrics(10**6)
    assert run_copy.metrics_jsonl.read_text().endswith("}\n") and len(run_copy.metrics()) == n


def test_an_incomplete_checkpoint_falls_back_to_the_one_before(run_copy):
    import shutil

    ckpts = run_copy.checkpoints
    last = sorted(ckpts.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    newer = ckpts / f"checkpoint-{int(last.name.split('-')[1]) + 5}"
    shutil.copytree(last, newer)
    (newer / "model.safetensors").unlink()
    assert run_copy.last_checkpoint() == last and (ckpts / f"damaged-{newer.name}").exists()
    newer2 = ckpts / f"checkpoint-{int(last.name.split('-')[1]) + 7}"
    shutil.copytree(last, newer2)
    (newer2 / "trainer_state.json").write_text("{")
    assert run_copy.last_checkpoint() == last


def test_the_embedding_cache_is_rebuilt_when_it_does_not_match(run_copy):
    from moviegpt import recommend

    rec = recommend.for_model(str(run_copy.model_dir))
    good = rec.vecs.copy()
    cache = run_copy.embeddings
    for damage in (
        lambda: cache.write_bytes(cache.read_bytes()[:200]),  # truncated
        lambda: np.save(cache, np.zeros((len(good), 3), np.float32)),  # wrong width
        lambda: cache.with_suffix(".json").write_text('{"key": "stale"}'),
    ):  # the data changed
        damage()
        assert np.allclose(recommend.for_model(str(run_copy.model_dir)).vecs, good, atol=1e-5)


# ------------------------------------------------------------------ templates with more fields, divergence


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


def test_a_diverged_run_is_never_finished(tmp_path, capfd):
    from moviegpt.callbacks import MetricsLog
    from transformers import TrainerControl, TrainerState

    log, control = MetricsLog(tmp_path / "m.jsonl"), TrainerControl()
    log.on_log(None, TrainerState(), control, logs={"loss": float("nan")})
    assert control.should_training_stop and "loss became nan" in log.diverged
    with pytest.raises(UserError, match="NaN or infinity"):
        validate.dumps({"loss": float("nan")})
    one_error(
        capfd,
        "training diverged",
        "train",
        "--config",
        "smoke",
        "--set",
        f"runs_dir={tmp_path / 'runs'}",
        "--set",
        "data.max_train_rows=32",
        "--set",
        "train.max_steps=30",
        "--set",
        "train.learning_rate=10",
        "--set",
        "train.max_grad_norm=0",
        "--set",
        "train.logging_steps=1",
        "--set",
        "train.warmup_steps=0",
        "--set",
        "train.precision=fp32",
        after_progress=True,
    )
    assert not list((tmp_path / "runs").glob("*/summary.json"))
