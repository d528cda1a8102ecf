"""moviegpt.core.rundir: runs_dir and run directories of the wrong kind, and damaged run artifacts."""

import shutil

import pytest
from pathlib import Path

from conftest import one_error, one_line, readme_rows, run_argv, snapshot


def test_runs_dir_that_is_a_file(tmp_path, capfd):
    (tmp_path / "afile").write_text("x")
    one_error(capfd, "is a file", "train", "--config", "smoke", "--set", f"runs_dir={tmp_path / 'afile'}")
    one_error(capfd, "lies under one", "train", "--config", "smoke", "--set", f"runs_dir={tmp_path / 'afile' / 'x'}")


# ------------------------------------------------------------------ damaged run artifacts


def test_a_truncated_summary_is_named_with_what_to_do(run_copy, capfd):
    run_copy.summary_json.write_text(run_copy.summary_json.read_text()[:40])
    one_error(capfd, f"run summary {run_copy.summary_json} is damaged", "evaluate", "--run", str(run_copy))


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


def test_a_checkpoint_of_another_model_is_set_aside_and_wrong_kinds_are_named(smoke_cfg, tmp_path, capfd):
    import dataclasses

    from moviegpt import load_config
    from moviegpt.train import finetune

    small = load_config("smoke", [f"runs_dir={tmp_path / 'a'}", "train.max_steps=4", "train.save_steps=2"])
    other = dataclasses.replace(small, model=dataclasses.replace(small.model, n_embd=64))
    donor, target = finetune.run(small, log=lambda m: None), None
    target = Path(other.runs_dir) / other.run_name
    (target / "checkpoints").mkdir(parents=True)
    shutil.copytree(donor / "checkpoints" / "checkpoint-4", target / "checkpoints" / "checkpoint-4")
    capfd.readouterr()
    finetune.run(other, log=lambda m: None)
    err = capfd.readouterr().err
    assert readme_rows()["mismatched-checkpoint"] in err
    assert (target / "checkpoints" / "mismatched-checkpoint-4" / "model.safetensors").exists()  # kept, not deleted
    assert (target / "summary.json").exists()
    # a file where the checkpoints folder belongs
    third = load_config("smoke", [f"runs_dir={tmp_path / 'b'}", "train.max_steps=4"])
    (Path(third.runs_dir) / third.run_name).mkdir(parents=True)
    (Path(third.runs_dir) / third.run_name / "checkpoints").write_text("mine")
    before = snapshot(tmp_path / "b")
    code, err = run_argv(
        ["train", "--config", "smoke", "--set", f"runs_dir={third.runs_dir}", "--set", "train.max_steps=4"], capfd
    )
    assert readme_rows()["run-path-wrong-kind"] in one_line(code, err)
    assert snapshot(tmp_path / "b") == before


@pytest.mark.parametrize(
    "name",
    [
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "base_eval.json",
        "eval.json",
        "score.json",
        ".lock",
        "model",
        "checkpoints",
    ],
)
def test_a_link_planted_at_any_path_a_run_writes_is_refused_and_its_target_untouched(tmp_path, capfd, name):
    """Every path moviegpt writes in a run's folder: a link there (to a file or folder outside the run) stops the run
    with one line before anything is written, and what the link points at is left exactly as it was."""
    from moviegpt import load_config

    runs = tmp_path / "runs"
    cfg = load_config("smoke", [f"runs_dir={runs}", "train.max_steps=2"])
    run = runs / cfg.run_name
    run.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / ("folder" if name in ("model", "checkpoints") else "file.txt")
    if target.suffix:
        target.write_text("not the run's")
    else:
        target.mkdir()
    (run / name).symlink_to(target)
    line = one_line(
        *run_argv(["train", "--config", "smoke", "--set", f"runs_dir={runs}", "--set", "train.max_steps=2"], capfd)
    )
    assert "is a link" in line
    assert target.read_text() == "not the run's" if target.suffix else list(target.iterdir()) == []
