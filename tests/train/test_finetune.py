"""moviegpt.train.finetune: a smoke run learns, records what ran, is reused, locked, never finished when it diverges."""

import fcntl
import json

import pytest
import yaml
from conftest import one_error
from transformers import pipeline

from safetensors.torch import load_file

from moviegpt import UserError, load_config
from moviegpt.core import hardware, validate
from moviegpt.train import plan as planner
from moviegpt.train.finetune import run


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

    from moviegpt.core.hardware import resolve_precision
    from moviegpt.data import movies, tokens
    from moviegpt.model import causal_lm
    from moviegpt.train.trainer import loss_only, training_args

    cfg = load_config(
        "smoke", ["model.n_layer=1", "data.max_train_rows=64", "train.max_steps=3", "train.logging_steps=1"]
    )
    ds = tokens.tokenize(movies.load_splits(cfg.data, cfg.seed).train, gpt2_tok, cfg.text)
    precision, _ = resolve_precision("auto")  # bf16 where the CPU has it: the case loss_only is for
    runs = {}
    for flag in (False, True):
        model, _ = causal_lm.load_model(cfg.model, gpt2_tok, cfg.seed)
        if flag:
            model = loss_only(model)
        args = training_args(cfg, tmp_path / str(flag), precision, has_eval=False, saves=False)
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


def test_a_terminal_bar_shows_the_latest_numbers_and_prints_no_log_dict(tmp_path, monkeypatch, capfd):
    """With a progress bar (a terminal), Trainer printed every log dict as a line under it; trainer.BarProgress
    shows the last loss and tokens/s on the bar instead (metrics.jsonl keeps every log)."""
    import dataclasses

    from moviegpt.core import hardware
    from moviegpt.train import finetune, trainer

    monkeypatch.setenv("MOVIEGPT_PROGRESS", "1")
    steps = ["train.max_steps=4", "train.logging_steps=1"]
    cfg = load_config("smoke", [f"runs_dir={tmp_path}", "model.n_layer=1", *steps])
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, eval_steps=None, save_steps=0))
    p = finetune.prepare(cfg, log=lambda m: None)
    precision, _ = hardware.resolve_precision(cfg.train.precision)
    t = trainer.build(cfg, p.model, p.train_ds, tmp_path / "out", precision, saves=False)
    assert [type(c) for c in t.callback_handler.callbacks].count(trainer.BarProgress) == 1
    t.train()
    out, err = capfd.readouterr()
    assert "{'loss'" not in out + err and "loss=" in err, err[-500:]


def test_token_count_stays_on_the_device_until_a_log(tmp_path, gpt2_tok):
    """CountOnDevice counts non-padding tokens without a host read per micro-batch (a GPU sync); what it logs and
    ends with equals Trainer's own count of the same seeded run, on padded films where the two could differ."""
    from transformers import Trainer, default_data_collator

    from moviegpt.data import movies, tokens
    from moviegpt.model import causal_lm
    from moviegpt.train.trainer import CountOnDevice, training_args

    cfg = load_config(
        "smoke",
        [
            "model.n_layer=1",
            "data.max_train_rows=40",
            "train.max_steps=5",
            "train.logging_steps=2",
            "text.batching=pad",
            "train.batch_size=4",
            "train.grad_accum=2",
        ],
    )
    ds = tokens.tokenize(movies.load_splits(cfg.data, cfg.seed).train, gpt2_tok, cfg.text)
    seen = {}
    for cls in (Trainer, CountOnDevice):
        model, _ = causal_lm.load_model(cfg.model, gpt2_tok, cfg.seed)
        args = training_args(cfg, tmp_path / cls.__name__, "fp32", has_eval=False, saves=False)
        assert not args.logging_nan_inf_filter  # Trainer's NaN filter reads every step's loss on the host
        trainer = cls(model=model, args=args, train_dataset=ds, data_collator=default_data_collator)
        trainer.train()
        seen[cls] = trainer.state.num_input_tokens_seen, [h["num_input_tokens_seen"] for h in trainer.state.log_history]
    assert seen[CountOnDevice] == seen[Trainer]
    total, logged = seen[CountOnDevice]
    assert len(logged) >= 3 and 0 < logged[0] < total < 5 * 8 * 128  # five steps of 8 padded films, padding excluded


def test_aligned_output_layer_gives_the_same_logits_and_gradients(tmp_path, gpt2_tok):
    """train.vocab_multiple: the output layer multiplies by its weight padded to 50,304 rows and drops the extra
    logits; the model computes the same numbers, keeps its tied weight and saves the same file."""
    import torch
    from transformers import GPT2LMHeadModel

    from moviegpt.model import causal_lm

    cfg = load_config("smoke", ["model.n_layer=1"])
    plain, _ = causal_lm.load_model(cfg.model, gpt2_tok, cfg.seed)
    aligned, _ = causal_lm.load_model(cfg.model, gpt2_tok, cfg.seed)
    assert type(causal_lm.align_output(aligned, 64, gpu=False).lm_head) is torch.nn.Linear  # a CPU gains nothing
    causal_lm.align_output(aligned, 64, gpu=True)
    assert type(aligned.lm_head).__name__ == "AlignedHead" and aligned.lm_head.weight is aligned.transformer.wte.weight
    ids = torch.randint(0, len(gpt2_tok), (2, 24))
    outs = []
    for m in (plain.eval(), aligned.eval()):
        out = m(input_ids=ids, labels=ids)
        out.loss.backward()
        outs.append((out.logits, out.loss, m.transformer.wte.weight.grad))
    assert outs[1][0].shape == (2, 24, 50257)
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)
    aligned.save_pretrained(tmp_path)
    assert set(aligned.state_dict()) == set(plain.state_dict())
    reloaded = GPT2LMHeadModel.from_pretrained(tmp_path).eval()  # a plain GPT-2 again
    torch.testing.assert_close(reloaded(input_ids=ids).logits, outs[0][0].detach())


def test_a_smoke_run_raises_no_warning_from_moviegpts_own_calls(tmp_path):
    """Every warning attributed to moviegpt's code (a deprecated API it calls, a library warning about how it
    calls it) becomes an error: the run must still finish."""
    import subprocess
    import sys

    code = (
        "import warnings\n"
        "warnings.filterwarnings('error', module=r'moviegpt(\\..*)?$')\n"
        "from moviegpt import load_config\nfrom moviegpt.train import finetune\n"
        f"sets = ['runs_dir={tmp_path}', 'train.max_steps=4', 'train.eval_steps=2', 'train.samples=1']\n"
        "for extra in ([], ['train.lora=true']):\n"
        "    finetune.run(load_config('smoke', sets + extra), log=lambda m: None)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]


def test_a_diverged_run_is_never_finished(tmp_path, capfd):
    from transformers import TrainerControl, TrainerState

    from moviegpt.train.callbacks import MetricsLog

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


# ------------------------------------------------------------------ runs sized by a budget (moviegpt.train.plan)


def test_the_estimate_runs_the_runs_own_model_and_changes_nothing(budget, tmp_path):
    import torch

    from moviegpt.train import finetune

    cfg = budget(tmp_path, 0.1)
    prepared = finetune.prepare(cfg, log=lambda m: None)
    before, mode = {k: v.clone() for k, v in prepared.model.state_dict().items()}, prepared.model.training
    assert planner.estimate(prepared.model, prepared.train_ds, cfg.train.batch_size, "fp32") > 0
    after = prepared.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in prepared.model.parameters()) and prepared.model.training == mode
    lora = planner.trained_as(budget(tmp_path, 0.1, "train.lora=true"), prepared.model)
    assert lora is not prepared.model and not hasattr(prepared.model, "peft_config")  # adapters on a copy


def test_a_planned_run_trains_its_plan_and_a_rerun_trains_the_same_weights(budget, plans, tmp_path):
    from moviegpt.train.schedule import first_step_warmup

    extra = ["data.max_train_rows=4000", "train.epochs=50"]  # the budget binds, not the films
    cfg = budget(tmp_path, 0.15, *extra)
    first = run(cfg, log=lambda m: None)
    plan = first.info().plan
    assert plan is not None and first.summary().steps == plan.max_steps  # none cut off, none extended
    assert first.path.name.endswith(hardware.machine_tag())
    recorded = yaml.safe_load((first.path / "config.yaml").read_text())
    assert recorded["train"]["max_steps"] == plan.max_steps and recorded["resolved"]["plan"]["reason"] == plan.reason
    logged = {m["step"]: m["learning_rate"] for m in first.metrics() if m["kind"] == "train" and "learning_rate" in m}
    import torch
    from transformers import get_scheduler

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.train.learning_rate)
    cosine = get_scheduler("cosine", opt, plan.warmup_steps, plan.max_steps).lr_lambdas[0]
    rate = first_step_warmup(cosine, plan.warmup_steps)
    assert logged[1] > 0 and len(logged) == plan.max_steps  # the warm-up trains from the first step
    for step, lr in logged.items():  # Trainer's cosine for the plan's steps: decided once, before step 1
        assert lr == pytest.approx(cfg.train.learning_rate * rate(step - 1), abs=1e-9), step
    spent = first.time_spent()
    assert spent["passes"] <= planner.EVALS + 1 and spent["saves"] == 0

    again = run(budget(tmp_path / "again", 0.15, *extra), log=lambda m: None)  # from the cached plan
    assert again.path.name == first.path.name and again.info().plan == plan
    a, b = load_file(first.model_dir / "model.safetensors"), load_file(again.model_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)  # the same plan trains the same weights


def test_what_the_plan_cuts_changes_the_time_not_the_weights(tmp_path):
    """Fewer validation passes and no mid-run checkpoint (the plan's cuts) leave the trained weights bit for bit
    as they were: at the same steps they cost no held-out quality, and the time they free buys more steps."""
    import torch

    from moviegpt.core.rundir import RunDir

    often = ["train.eval_steps=2", "train.save_steps=2", "train.samples=2"]  # the old way: every 2 of 8 steps
    rare = ["train.eval_steps=8", "train.save_steps=0"]  # the plan's way: few passes, no checkpoint
    runs = {}
    for name, extra in (("often", often), ("rare", rare)):
        cfg = load_config("smoke", [f"runs_dir={tmp_path / name}", "train.max_steps=8", "train.epochs=1", *extra])
        runs[name] = RunDir(run(cfg, log=lambda m: None))
    spent = {name: r.time_spent() for name, r in runs.items()}
    assert spent["often"]["saves"] == 4 and spent["rare"]["saves"] == 0
    assert spent["often"]["passes"] > spent["rare"]["passes"]
    a, b = (load_file(runs[n].model_dir / "model.safetensors") for n in ("often", "rare"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert runs["often"].summary().final.perplexity == runs["rare"].summary().final.perplexity
