"""Killed runs resume exactly; SIGTERM saves and says how to resume; training is deterministic.

Real training processes (the CLI, a tiny GPT-2 on bundled films) are killed with SIGKILL at a
random step: before the first checkpoint, between checkpoints, and in the middle of writing one.
Rerunning the same command must end with the same validation losses as a run never interrupted.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moviegpt import load_config
from moviegpt.core.rundir import RunDir
from moviegpt.train.finetune import run

# 12 steps over about 2.4 epochs of 64 films; checkpoints at steps 4, 8 and 12
RECIPE = [
    "data.max_train_rows=64",
    "data.max_eval_rows=16",
    "train.max_steps=12",
    "train.save_steps=4",
    "train.eval_steps=4",
    "train.logging_steps=1",
    "train.save_total_limit=2",
]
TIMING_KEYS = ("wall_time", "runtime", "per_second", "mfu", "seconds")  # tokens_per_second, mfu: the loop's throughput


def outcome(run_dir: Path) -> dict:
    """What a run learned, without its timings: every logged loss by step, and the held-out result."""
    logs = [
        {k: v for k, v in m.items() if not any(t in k for t in TIMING_KEYS)}
        for m in RunDir(run_dir).metrics()
        if m["kind"] != "save"  # what a checkpoint cost: a timing, and a killed save is redone on resume
    ]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "evals": [(m["step"], m["eval_loss"]) for m in logs if m["kind"] == "eval"],
        "final": summary["final"]["loss"],
        "logs": logs,
    }


def only_run(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir()] if runs.exists() else []
    if len(found) != 1:  # not created yet (runs/ appears a moment before the run's own folder)
        raise FileNotFoundError(runs)
    return found[0]


def start(runs: Path, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "moviegpt.cli", "train", "--config", "smoke", "--set", f"runs_dir={runs}"]
    args += [a for o in RECIPE for a in ("--set", o)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    return subprocess.Popen(args, stdout=open(log, "a"), stderr=subprocess.STDOUT, env=env)


def steps_logged(runs: Path) -> int:
    try:
        lines = (only_run(runs) / "metrics.jsonl").read_text().splitlines()
        return max((json.loads(line)["step"] for line in lines if line.endswith("}")), default=0)
    except (ValueError, FileNotFoundError):  # not there yet, or a line half-written
        return 0


def saving(runs: Path, step: int) -> bool:
    try:
        return (only_run(runs) / "checkpoints" / f"tmp-checkpoint-{step}").exists()
    except FileNotFoundError:  # not started yet
        return False


def wait_for(cond, proc: subprocess.Popen, timeout=180.0) -> None:
    end = time.time() + timeout
    while not cond():
        assert proc.poll() is None, "the run ended before the point where the test meant to stop it"
        assert time.time() < end, "timed out waiting for the training process"
        time.sleep(0.001)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return outcome(
        run(load_config("smoke", [f"runs_dir={tmp_path_factory.mktemp('ref')}", *RECIPE]), log=lambda m: None)
    )


def test_same_config_and_seed_give_the_same_metrics(uninterrupted, tmp_path):
    again = outcome(run(load_config("smoke", [f"runs_dir={tmp_path}", *RECIPE]), log=lambda m: None))
    assert again == uninterrupted  # every loss, grad norm, learning rate and token count, exactly


@pytest.mark.parametrize("when", ["before-first-checkpoint", "between-checkpoints", "mid-save"])
def test_sigkill_at_a_random_point_then_resume_matches(when, uninterrupted, tmp_path):
    runs, log = tmp_path / "runs", tmp_path / "train.log"
    rng = random.Random()  # a different point on every test run; the assertion messages name it
    proc = start(runs, log)
    if when == "before-first-checkpoint":
        step = rng.randint(1, 3)
        wait_for(lambda: steps_logged(runs) >= step, proc)
    elif when == "between-checkpoints":
        step = rng.randint(5, 7)
        wait_for(lambda: steps_logged(runs) >= step, proc)
    else:
        step = rng.choice([4, 8])
        wait_for(lambda: saving(runs, step), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    where = f"killed {when} at step {step}"
    run_dir = only_run(runs)
    kept = sorted(p.name for p in (run_dir / "checkpoints").iterdir()) if (run_dir / "checkpoints").exists() else []
    if when == "mid-save":
        assert f"tmp-checkpoint-{step}" in kept and f"checkpoint-{step}" not in kept, where  # died mid-write
    assert not (run_dir / "summary.json").exists(), where

    assert start(runs, log).wait(timeout=300) == 0, log.read_text()
    resumed = outcome(run_dir)
    assert resumed["evals"] == [(s, pytest.approx(v, abs=1e-6)) for s, v in uninterrupted["evals"]], where
    assert resumed["final"] == pytest.approx(uninterrupted["final"], abs=1e-6), where
    assert not list((run_dir / "checkpoints").glob("tmp-*")), where  # the half-written save was cleared
    if kept and kept != [f"tmp-checkpoint-{step}"]:
        assert "Resuming from" in log.read_text(), where


def test_sigterm_saves_and_says_how_to_resume_and_a_second_start_is_refused(uninterrupted, tmp_path):
    runs = tmp_path / "runs"
    both = [(start(runs, tmp_path / f"{i}.log"), tmp_path / f"{i}.log") for i in (1, 2)]  # started at once
    step = random.Random().randint(5, 7)
    end = time.time() + 120
    while all(p.poll() is None for p, _ in both) and time.time() < end:  # one of the two must give way
        time.sleep(0.01)
    [(loser, loser_log)] = [(p, f) for p, f in both if p.poll() is not None]
    [(proc, log)] = [(p, f) for p, f in both if p is not loser]
    assert loser.returncode == 2 and "is in progress in another process" in loser_log.read_text()
    wait_for(lambda: steps_logged(runs) >= step, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    last = [line for line in log.read_text().splitlines() if line.strip()][-1]
    assert last.startswith("moviegpt: SIGTERM: stopped at step") and "rerun the same command to resume" in last
    stopped = int(last.split("stopped at step ")[1].split()[0])
    assert (
        stopped >= step and (only_run(runs) / "checkpoints" / f"checkpoint-{stopped}" / "trainer_state.json").exists()
    )
    assert start(runs, log).wait(timeout=300) == 0, log.read_text()
    resumed = outcome(only_run(runs))
    assert resumed["final"] == pytest.approx(uninterrupted["final"], abs=1e-6)
    assert resumed["evals"] == [(s, pytest.approx(v, abs=1e-6)) for s, v in uninterrupted["evals"]]


PARENT = """
import sys
from moviegpt import load_config
from moviegpt.train import finetune
cfg = load_config("smoke", [f"runs_dir={sys.argv[1]}", *sys.argv[2:]])
finetune.run_apart(cfg)
"""


def test_a_training_child_stops_when_its_parent_is_killed_and_its_run_resumes(tmp_path):
    """What `moviegpt book` does for each run: a parent starts a child that trains. SIGKILL the parent mid-run: the
    child saves a checkpoint and ends (no orphan goes on training), and the same run then resumes from it."""
    runs = tmp_path / "runs"
    recipe = [o for o in RECIPE if not o.startswith(("train.max_steps", "train.save_steps"))]
    recipe += ["train.max_steps=400", "train.save_steps=1000"]  # long enough to be killed mid-run, no checkpoint
    log = open(tmp_path / "parent.log", "w")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(runs), *recipe], stdout=log, stderr=log)
    wait_for(lambda: steps_logged(runs) >= 3, parent)
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent.pid)], capture_output=True, text=True)
    pids = [int(p) for p in children.stdout.split()]
    trainer = [p for p in pids if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(trainer) == 1, pids
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 120
    while time.time() < deadline and Path(f"/proc/{trainer[0]}").exists():
        time.sleep(0.5)
    alive = Path(f"/proc/{trainer[0]}").exists() and "Z" not in Path(f"/proc/{trainer[0]}/stat").read_text().split()[2]
    assert not alive, "the training child outlived its parent"
    run_dir = only_run(runs)
    saved = [p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")]
    assert len(saved) == 1 and not RunDir(run_dir).finished  # it saved where it stopped, and is not marked done
    step = int(saved[0].split("-")[1])
    cfg = load_config("smoke", [f"runs_dir={runs}", *recipe, "train.max_steps=400"])
    lines = []
    run(cfg, log=lines.append)
    assert any(f"Resuming from {run_dir / 'checkpoints' / saved[0]} (step {step})" in m for m in lines), lines
    assert RunDir(run_dir).summary().steps == 400
