"""moviegpt.core.settings (with the fields of moviegpt.core.config it reads): profiles, overrides, YAML, every value."""

import json
import time
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, one_error, one_line, one_line_or_ok, run_argv, run_cli, snapshot
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from moviegpt import UserError, load_config
from moviegpt.cli import parser
from moviegpt.core.config import all_keys
from moviegpt.core.settings import load_run_config, profiles


def test_profiles_load_and_differ():
    assert {"smoke", "seed", "full"} <= set(profiles())
    seed, full = load_config("seed"), load_config("full")
    # seed is the report's recipe, setting for setting
    assert (seed.model.name, seed.data.source, seed.text.batching, seed.text.max_length) == (
        "gpt2",
        "wykonos/movies",
        "pad",
        128,
    )
    assert (
        seed.train.epochs,
        seed.train.batch_size,
        seed.train.save_steps,
        seed.train.save_total_limit,
        seed.train.logging_steps,
        seed.train.precision,
    ) == (2, 4, 200, 1, 50, "fp16")
    assert full.text.batching == "pack" and full.train.keep_best
    assert seed.run_name != full.run_name


def test_overrides_change_the_hash_and_are_typed():
    a = load_config("smoke")
    b = load_config("smoke", ["train.learning_rate=1e-4", "data.max_train_rows=10"])
    assert b.train.learning_rate == 1e-4 and b.data.max_train_rows == 10
    assert a.hash() != b.hash()
    assert load_config("smoke", ["runs_dir=/elsewhere"]).hash() == a.hash()  # where a run is written is not what it is


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.learnig_rate=1", "did you mean 'train.learning_rate'"),
        ("trian.epochs=1", "did you mean 'train.epochs'"),
        ("train.batch_size=0", "train.batch_size=0 must be at least 1"),
        ("train.learning_rate=-1", "must be positive"),
        ("train.batch_size=abc", "must be a number"),
        ("train.batch_size=2.5", "must be a whole number"),
        ("text.batching=zip", "is not one of pad, pack"),
        ("data.splits=[0.5,0.5]", "three non-negative fractions"),
        ("train.precision=fp8", "is not one of auto, fp32, bf16, fp16"),
        ("text.template=hello", "must contain {title} and {overview}"),
        ("train.keep_best=yes please", "must be true or false"),
        ("nonsense", "must look like section.key=value"),
    ],
)
def test_bad_values_name_the_problem(override, fragment):
    with pytest.raises(UserError) as e:
        load_config("smoke", [override])
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_unknown_profile_lists_the_real_ones():
    with pytest.raises(UserError, match="unknown profile 'smok'.*smoke"):
        load_config("smok")


def test_run_config_round_trips(smoke_run, smoke_cfg):
    assert load_run_config(smoke_run).hash() == smoke_cfg.hash()


# ------------------------------------------------------------------ config bombs and profile names


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
    from moviegpt.core.config import Config
    from moviegpt.train.trainer import check_args as check_trainer_args
    from moviegpt.train import trainer

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


# ------------------------------------------------------------------ hostile settings, generated


HOSTILE = [
    "nan",
    "inf",
    "-inf",
    ".nan",
    "1e309",
    "-1",
    "0",
    "[",
    "]",
    "{",
    "{a: 1}",
    "[1, 2, 3]",
    "null",
    "~",
    "*x",
    "&a x",
    "!!python/object/apply:os.system ['echo pwned']",
    "'",
    '"',
    "true",
    "2.5",
    "99999999999999999999",
    "../../x",
    "/etc/passwd",
    "{title",
    "{0}",
    "{title.__class__}",
    "{title!z}",
    "{title:d}",
    "\x1b[2J",
    "é\x00",
    "Movie: {title}\nOverview: {overview}",
    "a: b: c",
    "- x",
    "? x",
    "%",
    "@x",
    "`x`",
    "x" * 300,
]
KEYS = sorted(all_keys()) + [
    "train.trainer_args.gradient_checkpointing",
    "train.trainer_args.nonsense",
    "train.trainer_args.output_dir",
    "nosection.key",
    "train",
    "text.template.x",
]
fast = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fast
@given(
    key=st.sampled_from(KEYS),
    value=st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20)),
    command=st.sampled_from(["config", "config-yaml"]),
)
@example(key="data.source", value="[films.csv", command="config")
@example(key="text.template", value="Plot: {title}: {overview}", command="config")
@example(key="seed", value="-1", command="config")
@example(key="train.max_steps", value=".inf", command="config")
def test_hostile_overrides(key, value, command, tmp_path_factory, capfd):
    tmp = tmp_path_factory.mktemp("cfg")
    runs = tmp / "runs"
    if command == "config":
        argv = ["config", "--config", "smoke", "--set", f"{key}={value}", "--set", f"runs_dir={runs}"]
    else:  # the same value in a YAML file (quoted as a YAML string where it is one)
        path = tmp / "mine.yaml"
        section, _, name = key.partition(".")
        body = {section: {name: value}} if name else {section: value}
        path.write_text(json.dumps(body))  # JSON is YAML
        argv = ["config", "--config", str(path), "--set", f"runs_dir={runs}"]
    before = snapshot(tmp)
    capfd.readouterr()
    code = parser.main(argv)
    one_line_or_ok(code, capfd.readouterr().err)
    assert snapshot(tmp) == before  # `config` writes nothing


@settings(max_examples=200, deadline=None)
@given(
    name=st.one_of(
        st.sampled_from(["../../x", "..", ".", "a/b", "/abs", "~", "x\x00", "ok-name", "a..b", ""]),
        st.text(max_size=12),
    )
)
def test_no_profile_name_leaves_runs_dir(name, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    from moviegpt import UserError

    try:
        cfg = load_config("smoke", [f"profile={json.dumps(name)}", f"runs_dir={runs}"])
    except UserError:
        return
    assert (runs / cfg.run_name).resolve().parent == runs.resolve()


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
    code, err = run_argv(["config", "--config", "smoke", "--set", f"{key}={text}"], capfd)
    if code != 0:
        one_line(code, err)
    doc = {"train": value}
    for _ in range(depth):
        doc = {"a": doc}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    code, err = run_argv(["config", "--config", tmp_path / "c.yaml"], capfd)
    if code != 0:
        one_line(code, err)
