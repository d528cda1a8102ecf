"""Outside input that is not a data file or a setting: model directories, titles and prompts, config shapes, run
directories and the environment. Each class: the cases of tests/bad_inputs.md, then a bounded hypothesis test of
the invariant: exit 2 (1 for a failing environment), one `moviegpt: error:` line, never "internal error", and
nothing already written changed."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moviegpt import cli

from test_bad_input import readme_rows, snapshot

EXAMPLES = settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def one_line(code: int, err: str, codes=(2,)) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code in codes, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("moviegpt: error: "), err
    return lines[0]


def run_cli(argv, capfd) -> tuple[int, str]:
    capfd.readouterr()
    code = cli.main([str(a) for a in argv])
    return code, capfd.readouterr().err


@pytest.fixture
def model_copy(smoke_run, tmp_path):
    dest = tmp_path / "model"  # a copy of the run around it: recommend reads the run's films
    shutil.copytree(smoke_run / "model", dest)
    shutil.copy(smoke_run / "config.yaml", tmp_path / "config.yaml")
    return dest


# ------------------------------------------------------------------ model directories


def test_model_settings_of_the_wrong_type_and_a_tokenizer_past_the_embeddings(model_copy, capfd):
    rows = readme_rows()
    s = json.loads((model_copy / "moviegpt.json").read_text())
    (model_copy / "moviegpt.json").write_text(json.dumps({**s, "max_length": "long"}))
    line = one_line(*run_cli(["generate", "-m", model_copy, "--title", "Up"], capfd))
    assert rows["model-settings-wrong-type"] in line and "moviegpt.json" in line
    (model_copy / "moviegpt.json").write_text(json.dumps(s))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_copy)
    tok.add_tokens([f"<extra{i}>" for i in range(400)])
    tok.save_pretrained(model_copy)
    for argv in (["generate", "-m", model_copy, "--title", "Up"], ["recommend", "-m", model_copy, "--title", "Up"]):
        assert rows["tokenizer-past-embeddings"] in one_line(*run_cli(argv, capfd))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@EXAMPLES
@given(
    name=st.sampled_from(["moviegpt.json", "config.json", "generation_config.json", "tokenizer_config.json"]),
    key=st.sampled_from(["max_length", "template", "splits", "seed", "n_embd", "vocab_size", "eos_token_id", "x"]),
    value=JSON,
)
def test_a_mutated_model_directory_is_refused_in_one_line(model_copy, capfd, name, key, value):
    path = model_copy / name
    original = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(original), key: value}))
        code, err = run_cli(["generate", "-m", model_copy, "--title", "Up", "--max-new-tokens", "4"], capfd)
        if code != 0:
            one_line(code, err)
    finally:
        path.write_text(original)


# ------------------------------------------------------------------ titles and prompts


def test_empty_and_undecodable_titles(smoke_run, capfd):
    rows, model = readme_rows(), smoke_run / "model"
    for title in ("", "   "):
        assert rows["empty-title"] in one_line(*run_cli(["recommend", "-m", model, "--title", title], capfd))
    bad = os.fsdecode(b"\xff\xfe film")  # what Python makes of bytes on the command line that are not UTF-8
    for argv in (["generate", "-m", model, "--title", bad], ["recommend", "-m", model, "--title", bad]):
        assert rows["title-not-utf8"] in one_line(*run_cli(argv, capfd))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=0, max_size=64), command=st.sampled_from(["generate", "recommend"]))
def test_any_bytes_as_a_title_are_answered_or_refused_in_one_line(smoke_run, capfd, raw, command):
    argv = [command, "-m", smoke_run / "model", "--title", os.fsdecode(raw)]
    code, err = run_cli([*argv, "--max-new-tokens", "4"] if command == "generate" else [*argv, "-k", "2"], capfd)
    if code != 0:
        one_line(code, err)


# ------------------------------------------------------------------ config shapes


NESTED = st.recursive(
    st.integers(0, 9) | st.text("ab: {}[]-,'\"", max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text("abc", min_size=1, max_size=3), inner, max_size=3)
    ),
    max_leaves=30,
)


@EXAMPLES
@given(value=NESTED, depth=st.integers(0, 40), key=st.sampled_from(["data.splits", "text.template", "train.epochs"]))
def test_generated_nested_config_values_and_files(tmp_path, capfd, value, depth, key):
    text = "[" * depth + yaml.safe_dump(value, default_flow_style=True).strip() + "]" * depth
    code, err = run_cli(["config", "--config", "smoke", "--set", f"{key}={text}"], capfd)
    if code != 0:
        one_line(code, err)
    doc = {"train": value}
    for _ in range(depth):
        doc = {"a": doc}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    code, err = run_cli(["config", "--config", tmp_path / "c.yaml"], capfd)
    if code != 0:
        one_line(code, err)


# ------------------------------------------------------------------ run directories


def test_a_checkpoint_of_another_model_is_set_aside_and_wrong_kinds_are_named(smoke_cfg, tmp_path, capfd):
    import dataclasses

    from moviegpt import load_config, train

    small = load_config("smoke", [f"runs_dir={tmp_path / 'a'}", "train.max_steps=4", "train.save_steps=2"])
    other = dataclasses.replace(small, model=dataclasses.replace(small.model, n_embd=64))
    donor, target = train.run(small, log=lambda m: None), None
    target = Path(other.runs_dir) / other.run_name
    (target / "checkpoints").mkdir(parents=True)
    shutil.copytree(donor / "checkpoints" / "checkpoint-4", target / "checkpoints" / "checkpoint-4")
    capfd.readouterr()
    train.run(other, log=lambda m: None)
    err = capfd.readouterr().err
    assert readme_rows()["mismatched-checkpoint"] in err
    assert (target / "checkpoints" / "mismatched-checkpoint-4" / "model.safetensors").exists()  # kept, not deleted
    assert (target / "summary.json").exists()
    # a file where the checkpoints folder belongs
    third = load_config("smoke", [f"runs_dir={tmp_path / 'b'}", "train.max_steps=4"])
    (Path(third.runs_dir) / third.run_name).mkdir(parents=True)
    (Path(third.runs_dir) / third.run_name / "checkpoints").write_text("mine")
    before = snapshot(tmp_path / "b")
    code, err = run_cli(
        ["train", "--config", "smoke", "--set", f"runs_dir={third.runs_dir}", "--set", "train.max_steps=4"], capfd
    )
    assert readme_rows()["run-path-wrong-kind"] in one_line(code, err)
    assert snapshot(tmp_path / "b") == before


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


FULL = """
set -e
mount -t tmpfs -o size=$SIZE tmpfs "$MNT"
set +e
"$PY" -m moviegpt.cli $ARGS 2> "$OUT/stderr"
echo $? > "$OUT/rc"
"""


@settings(max_examples=3, deadline=None)
@given(size=st.sampled_from(["64k", "1m", "3m"]))
def test_a_full_or_small_filesystem_is_one_line_exit_1(tmp_path_factory, size):
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"]).returncode:
        pytest.skip("needs unshare (user and mount namespaces) to make a small filesystem")
    tmp = tmp_path_factory.mktemp("full")
    (tmp / "mnt").mkdir()
    env = {
        "MNT": str(tmp / "mnt"),
        "OUT": str(tmp),
        "SIZE": size,
        "PY": sys.executable,
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "HF_HUB_OFFLINE": "1",
        "MOVIEGPT_CACHE": str(tmp / "mnt" / "cache"),  # tokenised films and plans go onto the small filesystem
        "ARGS": f"prepare --config smoke --set runs_dir={tmp / 'mnt' / 'runs'}",
    }
    subprocess.run(["unshare", "-rm", "sh", "-c", FULL], env=env, check=True, timeout=300)
    code, err = int((tmp / "rc").read_text()), (tmp / "stderr").read_text()
    if code != 0:
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == 1 and "internal error" not in err and lines[-1].startswith("moviegpt: error: "), err
        assert readme_rows()["disk-full-anywhere"] in lines[-1]
