"""moviegpt.train.callbacks: the run's own log (metrics.jsonl) with throughput in the loop, measured on a real tiny
model through the Trainer moviegpt trains with."""

import dataclasses
import json

import pytest

from moviegpt.core import hardware, mfu
from moviegpt.core.settings import load_config
from moviegpt.train import callbacks, finetune, trainer


def test_smoke_training_rows_carry_tokens_per_second_and_mfu(smoke_run):
    rows = [json.loads(line) for line in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert len(train_rows) >= 3
    for r in train_rows[1:]:  # the first has no interval before it
        assert r["tokens_per_second"] > 0 and 0 < r["mfu"] < 1


def test_the_loop_and_the_benchmarks_state_the_same_mfu_for_the_same_window(tmp_path):
    cfg = load_config("smoke", [f"runs_dir={tmp_path}", "train.max_steps=24", "train.logging_steps=8"])
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, eval_steps=None, save_steps=0))
    p = finetune.prepare(cfg, log=lambda m: None)
    precision, _ = hardware.resolve_precision(cfg.train.precision)
    peak, _ = mfu.peak(precision)
    flops = mfu.model_flops_per_token(p.model.config, sum(x.numel() for x in p.model.parameters()), 128)
    log, clock = callbacks.MetricsLog(tmp_path / "m.jsonl", 0.0, flops, peak), callbacks.StepClock()
    trainer.build(cfg, p.model, p.train_ds, tmp_path / "out", precision, saves=False, callbacks=[log, clock]).train()
    rows = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in rows] == [1, 8, 16, 24]  # logging_first_step: the first row has no interval
    for a, b in zip(rows, rows[1:]):  # the benchmark's way: StepClock's step ends over the same steps
        seconds = clock.ends[b["step"] - 1] - clock.ends[a["step"] - 1]
        _, bench = mfu.utilisation(b["tokens_seen"] - a["tokens_seen"], seconds, flops, peak)
        assert b["mfu"] == pytest.approx(bench, rel=0.05)


def test_samples_at_every_validation_pass_from_step_0_and_the_same_training_without_them(tmp_path):
    import torch

    from moviegpt.core.rundir import RunDir

    base = ["train.max_steps=8", "train.eval_steps=4", "train.logging_steps=4"]
    runs = {}
    for n in (0, 2):
        cfg = load_config("smoke", [f"runs_dir={tmp_path / str(n)}", *base, f"train.samples={n}"])
        runs[n] = RunDir(finetune.run(cfg, log=lambda m: None))
    rows = [r for r in runs[2].metrics() if r["kind"] == "samples"]
    evals = [r["step"] for r in runs[2].metrics() if r["kind"] == "eval"]
    assert [r["step"] for r in rows] == evals == [0, 4, 8]
    assert all(len(r["samples"]) == 2 and r["samples_seconds"] > 0 for r in rows)
    titles = [[s["title"] for s in r["samples"]] for r in rows]
    assert titles[0] == titles[-1]  # the same fixed titles at each pass
    assert runs[2].time_spent()["samples_s"] == pytest.approx(sum(r["samples_seconds"] for r in rows))
    from safetensors.torch import load_file

    a, b = (load_file(runs[n].model_dir / "model.safetensors") for n in (0, 2))
    assert all(torch.equal(a[k], b[k]) for k in a)  # sampling put the random state back
