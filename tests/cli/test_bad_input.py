"""Every row of the "Bad input" table (tests/bad_inputs.md), run through the real command line.

The table is the specification: this file reads it, and each row needs a set-up here that makes
the bad input. Each case must exit 2 with one line on stderr containing the row's text, print no
traceback, and leave every file that existed before it as it was.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    one_line,
    readme_rows,
    run_argv,
    snapshot,
)  # the table's reader (tests/bad_inputs.md), and what a case must not change

from moviegpt.cli import parser


def data_file(name: str, content: bytes):
    def make(tmp: Path) -> list[str]:
        (tmp / name).write_bytes(content)
        return ["prepare", "--set", f"data.source={tmp / name}"]

    return make


def films_csv(rows: list[tuple], header="id,title,overview") -> bytes:
    return (header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)).encode()


def run_with(*overrides: str, command="train"):
    return lambda tmp: [command, *[a for o in overrides for a in ("--set", o)]]


def not_a_model(tmp: Path) -> list[str]:
    (tmp / "notes").mkdir()
    (tmp / "notes" / "weights.txt").write_text("not a model")
    return ["evaluate", "--model", str(tmp / "notes")]


def directory(tmp: Path) -> list[str]:
    (tmp / "films.csv").mkdir()
    return ["prepare", "--set", f"data.source={tmp / 'films.csv'}"]


def bad_yaml(tmp: Path) -> list[str]:
    (tmp / "mine.yaml").write_text("train: {batch_size: 4\n")
    return ["train", "--config", str(tmp / "mine.yaml")]


def yaml_bomb(tmp: Path) -> list[str]:
    levels = "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (tmp / "bomb.yaml").write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + levels)
    return ["train", "--config", str(tmp / "bomb.yaml")]


def bad_bytes(tmp: Path) -> list[str]:
    import pandas as pd

    pd.DataFrame({"title": ["Heat", "Alien"], "overview": [b"\xff\xfe nope", b"\xff"]}).to_parquet(tmp / "b.parquet")
    return ["prepare", "--set", f"data.source={tmp / 'b.parquet'}"]


def config_fifo(tmp: Path) -> list[str]:
    import os

    os.mkfifo(tmp / "cfg.yaml")
    return ["train", "--config", str(tmp / "cfg.yaml")]


def deep_yaml(tmp: Path) -> list[str]:
    (tmp / "deep.yaml").write_text("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 400)))
    return ["train", "--config", str(tmp / "deep.yaml")]


def duplicate_key(tmp: Path) -> list[str]:
    (tmp / "twice.yaml").write_text("profile: twice\ntrain:\n  epochs: 1\ntrain:\n  batch_size: 2\n")
    return ["train", "--config", str(tmp / "twice.yaml")]


def many_rows(tmp: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 30_000_000
    pq.write_table(pa.table({"title": pa.array(["a"] * n), "overview": pa.array(["b"] * n)}), tmp / "many.parquet")
    return ["prepare", "--set", f"data.source={tmp / 'many.parquet'}"]


def bad_book_profile(tmp: Path) -> list[str]:
    import os

    os.environ["MOVIEGPT_PROFILE"] = "../../x"  # the test's monkeypatch puts it back
    return ["book"]


MB_OVERVIEW = "word " * 200_000
CASES = {
    "missing-file": lambda tmp: ["prepare", "--set", f"data.source={tmp / 'films.csv'}"],
    "directory": directory,
    "empty-file": data_file("films.csv", b""),
    "header-only": data_file("films.csv", b"title,overview\n"),
    "missing-columns": data_file("films.csv", b"name,plot\nHeat,A thief\n"),
    "wrong-delimiter": data_file("films.csv", b"title;overview\nHeat;A thief\n"),
    "not-utf8": data_file("films.csv", "title,overview\nAmélie,Une fille\n".encode("latin-1")),
    "unclosed-quote": data_file("films.csv", b'title,overview\nHeat,"A thief\nAlien,A crew\n'),
    "unknown-type": data_file("films.txt", b"title,overview\nHeat,A thief\n"),
    "huge-overview": data_file("films.csv", films_csv([(1, "Heat", MB_OVERVIEW), (2, "Alien", MB_OVERVIEW)])),
    "numbers-as-text": data_file("films.csv", films_csv([(1, "Heat", 12), (2, "Alien", 34)])),
    "lists-as-text": data_file("films.jsonl", b'{"title": "Heat", "overview": ["A", "thief"]}\n'),
    "all-rows-dropped": data_file("films.csv", films_csv([(1, "Heat", ""), (2, "Alien", "")])),
    "duplicate-ids": data_file("films.csv", films_csv([(7, "Heat", f"A thief, take {i}") for i in range(50)])),
    "hub-unreachable": run_with("data.source=nobody/no-such-films", command="prepare"),
    "hub-model-unreachable": run_with("model.name=nobody/no-such-model", "model.tokenizer=gpt2-bundled"),
    "unknown-profile": lambda tmp: ["train", "--config", "smok"],
    "missing-config": lambda tmp: ["train", "--config", str(tmp / "missing.yaml")],
    "bad-yaml": bad_yaml,
    "misspelled-key": run_with("train.lerning_rate=1e-4"),
    "misspelled-section": run_with("trian.epochs=1"),
    "batch-size-0": run_with("train.batch_size=0"),
    "negative-lr": run_with("train.learning_rate=-1"),
    "not-a-number": run_with("train.epochs=two"),
    "max-length-over-context": run_with("text.max_length=4096", "text.block_size=128"),
    "not-a-model": not_a_model,
    "prompt-too-long": None,  # needs a trained model: test_prompt_longer_than_context
    "disk-full": None,  # needs its own filesystem: test_disk_full_keeps_the_last_checkpoint
    "code-in-model-dir": None,  # needs a model directory: test_validate
    "yaml-aliases": yaml_bomb,
    "profile-escape": run_with("profile=../../x"),
    "unparsable-override": run_with("data.splits=[0.5, 0.5"),
    "infinite-count": run_with("train.max_steps=.inf"),
    "negative-seed": run_with("seed=-1"),
    "broken-template": run_with("text.template={title"),
    "unknown-scheduler": run_with("train.lr_scheduler=cosine_with_restart"),
    "unknown-trainer-arg": run_with("train.trainer_args.gradient_checkpointng=true"),
    "runs-dir-is-a-file": None,  # runs_dir must be a file: test_rundir.test_runs_dir_that_is_a_file
    "bad-sampling": None,  # needs a trained model: test_cli.test_bad_command_line_numbers
    "bad-port": None,  # needs a trained model: test_cli.test_bad_port_and_batch_size
    "bytes-not-utf8": bad_bytes,
    "stream-bad-line": None,  # test_stream.test_a_bad_line_in_a_streamed_jsonl_is_one_line
    "remote-no-answer": None,  # needs a silent server: test_data
    "damaged-summary": None,  # needs a finished run: test_rundir
    "template-needs-genre": None,  # needs a model trained with genres: test_generate
    "config-fifo": config_fifo,
    "deep-override": run_with("data.splits=" + "[" * 20_000 + "]" * 20_000),
    "deep-yaml": deep_yaml,
    "cache-not-a-folder": None,  # the cache is fixed at import: tests/test_cli.py, in a process of its own
    "empty-title": None,  # needs a trained model: tests/test_cli.py
    "title-not-utf8": None,  # likewise
    "model-settings-wrong-type": None,  # needs a model directory: tests/test_model.py
    "tokenizer-past-embeddings": None,  # likewise
    "run-path-wrong-kind": None,  # needs a run directory: tests/test_rundir.py
    "mismatched-checkpoint": None,  # likewise
    "disk-full-anywhere": None,  # needs a small filesystem: tests/test_errors.py
    "diverged": None,  # trains until the loss is NaN: test_train.test_a_diverged_run_is_never_finished
    "duplicate-key": duplicate_key,
    "field-not-in-template": None,  # needs a trained model: test_field_not_in_the_template_is_refused
    "parquet-too-many-rows": many_rows,
    "weights-short-of-config": None,  # needs a model directory: tests/model/test_causal_lm.py
    "empty-split": None,  # needs a model directory: test_an_empty_split_is_refused
    "bad-book-profile": bad_book_profile,
    "runs-dir-takes-no-files": None,  # test_runs_dir_that_takes_no_files (the table's runs_dir would be replaced)
}


def test_the_readme_table_and_the_cases_agree():
    rows = readme_rows()
    assert len(rows) >= 20 and rows.keys() == CASES.keys()


def earlier_work(tmp: Path) -> Path:
    """Something a user already has: an earlier run's files, which no failing command may touch."""
    runs = tmp / "runs"
    (runs / "smoke-earlier" / "model").mkdir(parents=True)
    (runs / "smoke-earlier" / "summary.json").write_text(json.dumps({"final": {"perplexity": 12.3}}))
    (runs / "smoke-earlier" / "model" / "model.safetensors").write_bytes(b"\x00" * 64)
    return runs


def check_one_line(code: int, err: str, fragment: str, progress_before: bool = False) -> None:
    """Exit 2, one error line with the fragment, no traceback; a command that got as far as training
    may have logged its progress before the error line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("moviegpt: error: "), err
    assert len(lines) == 1 or (progress_before and not any("error" in line.lower() for line in lines[:-1])), err
    assert fragment in lines[-1], lines[-1]


@pytest.mark.parametrize("case", [c for c, make in CASES.items() if make is not None])
def test_bad_input_gets_one_clear_line(case, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOVIEGPT_PROFILE", "smoke")  # a case may change it; it is put back after
    runs = earlier_work(tmp_path)
    argv = CASES[case](tmp_path)
    if argv[0] in ("train", "prepare") and "--config" not in argv:
        argv += ["--config", "smoke"]
    if argv[0] in ("train", "prepare"):
        argv += ["--set", f"runs_dir={runs}"]
    before = snapshot(tmp_path)
    capfd.readouterr()
    code = parser.main(argv)
    check_one_line(code, capfd.readouterr().err, readme_rows()[case])
    assert snapshot(tmp_path) == before  # nothing written before is lost, and a failed start leaves nothing


def test_field_not_in_the_template_is_refused(smoke_run, capfd):
    rows = readme_rows()
    for extra, name in ((["--genre", "Drama"], "genres"), (["--field", "year=1999"], "year")):
        argv = ["generate", "-m", smoke_run / "model", "--title", "Heat", *extra]
        line = one_line(*run_argv(argv, capfd))
        assert rows["field-not-in-template"].replace("genres", name) in line


def test_runs_dir_that_takes_no_files(tmp_path, capfd):
    line = one_line(*run_argv(["train", "--config", "smoke", "--set", "runs_dir=/proc"], capfd))
    assert readme_rows()["runs-dir-takes-no-files"] in line


def test_an_empty_split_is_refused(smoke_run, tmp_path, capfd):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(smoke_run / "model", model)
    settings = json.loads((model / "moviegpt.json").read_text())
    (model / "moviegpt.json").write_text(json.dumps(settings | {"splits": [0.95, 0.0, 0.05]}))
    line = one_line(*run_argv(["evaluate", "--model", model, "--split", "validation"], capfd))
    assert readme_rows()["empty-split"] in line


def test_prompt_longer_than_context(smoke_run, capfd):
    capfd.readouterr()
    code = parser.main(["generate", "--model", str(smoke_run / "model"), "--title", "word " * 300])
    check_one_line(code, capfd.readouterr().err, readme_rows()["prompt-too-long"])


def test_one_huge_overview_is_dropped_and_counted(tmp_path, capfd):
    rows = [(i, f"Film {i}", f"Story number {i} of a long night.") for i in range(60)] + [(99, "Broken", MB_OVERVIEW)]
    (tmp_path / "films.csv").write_bytes(films_csv(rows))
    assert parser.main(["prepare", "--config", "smoke", "--set", f"data.source={tmp_path / 'films.csv'}"]) == 0
    out = json.loads(capfd.readouterr().out)
    assert out["rows_in"] == 61 and out["rows_out"] == 60 and out["dropped"]["overview_too_long"] == 1


DISK_FULL = """
set -e
mount -t tmpfs -o size=120m tmpfs "$RUNS"
set +e
"$PY" -m moviegpt.cli train --config smoke --set runs_dir="$RUNS" --set data.max_train_rows=64 \
    --set data.max_eval_rows=16 --set train.max_steps=12 --set train.save_steps=4 --set train.eval_steps=4 \
    --set train.save_total_limit=2 2> "$OUT/stderr"
echo $? > "$OUT/rc"
cp -r "$RUNS"/. "$OUT/runs"
"""


def test_disk_full_keeps_the_last_checkpoint(tmp_path):
    """A real full disk: the run writes onto a 120 MB tmpfs in a private mount namespace. The first
    checkpoint (model 26 MB + optimizer 52 MB) fits, the second does not."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"]).returncode:
        pytest.skip("needs unshare (user and mount namespaces) to make a small filesystem")
    (tmp_path / "mnt").mkdir()
    env = {
        "RUNS": str(tmp_path / "mnt"),
        "OUT": str(tmp_path),
        "PY": sys.executable,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
    }
    subprocess.run(["unshare", "-rm", "sh", "-c", DISK_FULL], env=env, check=True, timeout=300)
    check_one_line(
        int((tmp_path / "rc").read_text()),
        (tmp_path / "stderr").read_text(),
        readme_rows()["disk-full"],
        progress_before=True,
    )
    assert "no space left on the device" in (tmp_path / "stderr").read_text()
    run_dir = next((tmp_path / "runs").iterdir())
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["checkpoint-4"]  # the complete one stays, the partial one was removed
    state = json.loads((run_dir / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    from safetensors.torch import load_file

    assert load_file(run_dir / "checkpoints" / "checkpoint-4" / "model.safetensors")  # complete and readable
    assert (run_dir / "config.yaml").exists() and not (run_dir / "summary.json").exists()
