import fcntl
import json

import pytest
import yaml
from transformers import pipeline

from moviegpt import UserError, load_config
from moviegpt.train import run


def test_smoke_run_learns(smoke_run):
    s = json.loads((smoke_run / "summary.json").read_text())
    metrics = smoke_run.metrics()
    evals = [m for m in metrics if m["kind"] == "eval"]
    assert len(evals) >= 3 and evals[-1]["eval_loss"] < evals[0]["eval_loss"] - 1.0
    assert s["final"]["perplexity"] < s["base"]["perplexity"] / 5
    assert s["final"]["tokens"] == s["base"]["tokens"] > 0  # both measured on the same held-out tokens
    seen = [m["tokens_seen"] for m in metrics if m["kind"] == "train"]
    assert seen == sorted(seen) and 0 < seen[-1] <= s["tokens_seen"]
    assert [m["tokens_seen"] for m in metrics if m["kind"] == "summary"] == [s["tokens_seen"]]
    assert all({"step", "epoch", "wall_time", "tokens_seen"} <= m.keys() for m in metrics)
    assert any("learning_rate" in m for m in metrics)


def test_run_directory_records_what_ran(smoke_run):
    cfg = yaml.safe_load((smoke_run / "config.yaml").read_text())
    r = cfg["resolved"]
    assert cfg["run_name"] == smoke_run.name and smoke_run.name.startswith("smoke-")
    assert r["model"].startswith("GPT-2 from config") and r["tokenizer"].startswith("GPT-2 BPE shipped")
    assert r["versions"]["torch"].startswith("2.13.0") and r["hardware"]["cpu_cores"] >= 1
    assert r["data"]["rows_in"] == 4803 and r["data"]["splits"]["train"]["used"] == 256
    model = smoke_run / "model"
    names = {p.name for p in model.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "README.md", "moviegpt.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)  # no pickles
    card = (model / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: transformers" in card and "Held-out perplexity" in card


def test_saved_model_loads_in_a_pipeline(smoke_run):
    pipe = pipeline("text-generation", model=str(smoke_run / "model"))
    out = pipe("Movie: Heat\nOverview:", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    assert out.startswith("Movie: Heat\nOverview:") and len(out) > len("Movie: Heat\nOverview:")


def test_finished_run_is_reused_not_retrained(smoke_run, smoke_cfg):
    before = {p: p.stat().st_mtime_ns for p in smoke_run.path.rglob("*") if p.is_file()}
    messages = []
    assert run(smoke_cfg, log=messages.append) == smoke_run
    assert messages and messages[0].startswith("Reusing finished run")
    assert before == {p: p.stat().st_mtime_ns for p in smoke_run.path.rglob("*") if p.is_file()}


def test_changed_config_gets_a_new_directory(smoke_cfg):
    other = load_config("smoke", [f"runs_dir={smoke_cfg.runs_dir}", "train.learning_rate=1e-3"])
    assert other.run_name != smoke_cfg.run_name


def test_a_run_in_progress_is_locked(tmp_path):
    cfg = load_config("smoke", [f"runs_dir={tmp_path}"])
    d = tmp_path / cfg.run_name
    d.mkdir(parents=True)
    with open(d / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="in progress in another process"):
            run(cfg)


def test_loss_only_changes_speed_not_numbers(tmp_path, gpt2_tok):
    """train.loss_only drops the logits from training-mode outputs (accelerate would upcast them under bf16);
    the same seeded Trainer run with and without it logs the same losses and ends with the same weights."""
    import torch
    from transformers import Trainer, default_data_collator

    from moviegpt import data, model as model_stage, tokens
    from moviegpt.hardware import resolve_precision
    from moviegpt.trainer import loss_only, training_args

    cfg = load_config("smoke", ["model.n_layer=1", "data.max_train_rows=64", "train.max_steps=3", "train.logging_steps=1"])
    ds = tokens.tokenize(data.load_splits(cfg.data, cfg.seed).train, gpt2_tok, cfg.text)
    precision, _ = resolve_precision("auto")  # bf16 where the CPU has it: the case loss_only is for
    runs = {}
    for flag in (False, True):
        model, _ = model_stage.load_model(cfg.model, gpt2_tok, cfg.seed)
        if flag:
            model = loss_only(model)
        args = training_args(cfg, tmp_path / str(flag), precision, has_eval=False)
        args.save_strategy = "no"
        trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=default_data_collator)
        trainer.train()
        runs[flag] = ([h["loss"] for h in trainer.state.log_history if "loss" in h], model)
    assert len(runs[True][0]) == 3 and runs[True][0] == runs[False][0]
    for a, b in zip(runs[True][1].parameters(), runs[False][1].parameters()):
        assert torch.equal(a, b)
    model = runs[True][1]
    ids = torch.tensor(ds[:2]["input_ids"])
    model.train()
    out = model(input_ids=ids, labels=ids)
    assert out.logits is None and out.loss.requires_grad
    model.eval()
    assert model(input_ids=ids, labels=ids).logits.shape == (*ids.shape, len(gpt2_tok))
