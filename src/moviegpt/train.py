"""The train stage: one call, `run(cfg)`, from config to a finished run directory.

runs/<profile>-<config hash>/
    config.yaml       the resolved config plus what actually ran (model, tokenizer, precision, hardware, versions)
    metrics.jsonl     every Trainer log: step, epoch, loss or eval_loss, learning rate, tokens seen, wall time
    base_eval.json    held-out (test) loss/perplexity of the model before training
    summary.json      written last: before/after held-out numbers, data counts, tokens/s, wall time
    model/            save_pretrained: safetensors, config, generation config, tokenizer, model card
    checkpoints/      Trainer checkpoints (resume_from_checkpoint picks up the last one); each is written
                      under tmp-checkpoint-N/ and renamed to checkpoint-N/ only when complete

A finished run (summary.json present) is reused as it is; an unfinished one is resumed.
A changed config hashes to a new directory, so no run ever overwrites another.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator
from transformers.modeling_outputs import CausalLMOutput
from transformers.trainer_utils import get_last_checkpoint, rotate_checkpoints

from moviegpt import data, evaluate, model as model_stage, tokens
from moviegpt.hardware import hardware, resolve_precision, versions
from moviegpt.config import GENERATION_DEFAULTS, Config, save_config
from moviegpt.errors import Interrupted, UserError, first_line



def run_dir_for(cfg: Config) -> Path:
    """Where the run of this config lives (after the model choice: a fallback run is a different run)."""
    return Path(cfg.runs_dir) / model_stage.choose(cfg).run_name


def run(cfg: Config, log=print) -> Path:
    """Train (or reuse, or resume) the run for this config; returns its directory."""
    cfg = model_stage.choose(cfg)
    run_dir = run_dir_for(cfg)
    if (run_dir / "summary.json").exists():
        log(f"Reusing finished run {run_dir} (same resolved config).")
        return run_dir
    if not is_main_process():  # torchrun / accelerate launch: rank 0 owns the run directory and its lock
        _train(cfg, run_dir, log=lambda m: None, main=False)
        return run_dir
    with _lock(run_dir):  # a second process with the same config stops here, touching nothing
        try:
            _train(cfg, run_dir, log)
        except UserError as e:
            if not isinstance(e, Interrupted) and {p.name for p in run_dir.iterdir()} <= {".lock", "train.log"}:
                shutil.rmtree(run_dir, ignore_errors=True)  # failed before writing anything: leave no trace
            raise
    return run_dir


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch, or a plain single process (RANK is set by both launchers)."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def _lock(run_dir: Path):
    """One process per run directory: a second start with the same config exits instead of corrupting it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"run {run_dir} is in progress in another process; wait for it or stop it") from None
        yield


class AtomicCheckpointTrainer(Trainer):
    """Trainer whose checkpoints appear whole or not at all.

    Trainer writes checkpoint-N/ in place, so a kill during a save leaves a half-written folder that
    get_last_checkpoint would pick up. Here every save goes to tmp-checkpoint-N/checkpoint-N/ and is
    renamed to checkpoint-N/ once complete (a rename is atomic on one filesystem); leftovers are
    removed before the next start (clear_staging)."""

    _staging: str | None = None

    def _get_output_dir(self, trial):
        return self._staging or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        out = Path(super()._get_output_dir(trial))
        name = f"checkpoint-{self.state.global_step}"
        staging = out / f"tmp-{name}"
        self._staging = str(staging)
        try:
            with saving(out / name, cleanup=staging):
                super()._save_checkpoint(model, trial)  # writes staging/checkpoint-N (every rank its RNG file)
        finally:
            self._staging = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            staged, final = staging / name, out / name
            if self.state.best_model_checkpoint == str(staged):
                self.state.best_model_checkpoint = str(final)
                self.state.save_to_json(str(staged / "trainer_state.json"))
            (staged / "training_args.bin").unlink(missing_ok=True)  # a pickle; config.yaml holds the settings
            if final.exists():
                shutil.rmtree(final)
            staged.rename(final)  # the checkpoint becomes visible here, complete
            staging.rmdir()
            rotate_checkpoints(output_dir=str(out), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=False)
        self.accelerator.wait_for_everyone()


@contextlib.contextmanager
def saving(what: Path, cleanup: Path | None = None):
    """A failed write (disk full, quota, read-only disk) becomes one line that says how to go on; the
    partial output is removed and nothing written before is touched."""
    try:
        yield
    except Exception as e:  # torch, safetensors and json raise different types for the same full disk
        free = shutil.disk_usage(next(p for p in [what, *what.parents] if p.exists())).free
        reason = f"no space left on the device ({free / 1e6:.1f} MB free)" if free < 32e6 else first_line(e)
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise UserError(f"could not write {what}: {reason}; free some space and rerun the same "
                        "command to resume from the last complete checkpoint") from None


def clear_staging(ckpt_dir: Path) -> None:
    """Remove checkpoints that a killed process left half-written."""
    for p in ckpt_dir.glob("tmp-checkpoint-*"):
        shutil.rmtree(p, ignore_errors=True)


class StopOnSignal(TrainerCallback):
    """SIGTERM / Ctrl-C: finish the current step, save a checkpoint, stop. A second signal stops at once."""

    def __init__(self):
        self.received: str | None = None
        self.previous = {}

    def install(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.received:  # second signal: give up on the clean stop
            self.restore()
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def on_step_end(self, args, state, control, **kw):
        if self.received:
            control.should_save = True  # Trainer saves (atomically, above) and then stops
            control.should_training_stop = True


class SaveEvery(TrainerCallback):
    """Time-driven checkpoints (train.save_minutes): a kill loses at most that much training on any hardware,
    while the share of time spent saving stays bounded by save time / interval (benchmarks/checkpoint_cost.py)."""

    def __init__(self, minutes: float):
        self.seconds, self.last = minutes * 60, time.time()

    def on_step_end(self, args, state, control, **kw):
        if time.time() - self.last >= self.seconds:
            control.should_save = True

    def on_save(self, args, state, control, **kw):
        self.last = time.time()


class MetricsLog(TrainerCallback):
    """Append every Trainer log to metrics.jsonl with step, epoch, tokens seen and wall time."""

    def __init__(self, path: Path, wall_offset: float = 0.0):
        self.path, self.offset, self.t0 = path, wall_offset, time.time()

    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs:
            return
        kind = "eval" if "eval_loss" in logs else ("summary" if "train_loss" in logs else "train")
        rec = {"kind": kind, "step": state.global_step, "epoch": state.epoch,
               "tokens_seen": int(state.num_input_tokens_seen), "wall_time": self.offset + time.time() - self.t0,
               **logs}
        if "eval_loss" in logs:
            rec["eval_perplexity"] = math.exp(logs["eval_loss"])
        with open(self.path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _rewind_metrics(run_dir: Path, step: int) -> float:
    """On resume, drop log lines written after the checkpoint (they will be logged again); return their wall time."""
    kept = [r for r in read_metrics(run_dir) if r["step"] <= step]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    return kept[-1]["wall_time"] if kept else 0.0


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)  # atomic: a reader sees the old file or the whole new one


def training_args(cfg: Config, out: Path, precision: str, has_eval: bool) -> TrainingArguments:
    t = cfg.train
    eval_strategy = "no" if not has_eval else ("steps" if t.eval_steps else "epoch")
    return TrainingArguments(
        output_dir=str(out),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,
        torch_compile=t.compile,  # Inductor fuses the elementwise work around the matmuls (benchmarks/results)
        ddp_find_unused_parameters=False,  # every parameter is used: skip DDP's extra graph traversal
        bf16=precision == "bf16",  # autocast; on a CPU only where bf16 is native (moviegpt.hardware)
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps,
        save_strategy="steps" if t.save_steps else "epoch",
        save_steps=t.save_steps or 500,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=t.keep_best,
        metric_for_best_model="eval_loss" if t.keep_best else None,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        include_num_input_tokens_seen="non_padding",  # tokens/s counts real tokens, not padding
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        disable_tqdm=not sys.stderr.isatty(),
    )


def loss_only(model, enabled: bool = True):
    """train.loss_only: while training, the model returns its loss and nothing else. Trainer uses only the
    loss, but under bf16 accelerate upcasts every bf16 tensor a model returns to fp32, and a causal LM returns
    its batch x length x vocabulary logits: 32 x 128 x 50,257 = 823 MB written (and freed) every step for
    nothing (the benchmark's "ours, logits returned" row measures it). In eval mode (validation, evaluation,
    generation) the model returns everything as before; the losses are the same either way."""
    if not enabled:
        return model
    forward = model.forward

    @functools.wraps(forward)  # keeps the signature Trainer inspects for its input columns
    def train_forward(*args, **kwargs):
        out = forward(*args, **kwargs)
        return CausalLMOutput(loss=out.loss) if model.training and out.loss is not None else out

    model.forward = train_forward
    return model


def streamed_splits(cfg: Config) -> data.Splits:
    """data.streaming: the training split stays a stream (shuffled through a buffer); validation and test
    are the first max_eval_rows (default 1,000) films of theirs, so held-out numbers use a fixed set."""
    n_eval = cfg.data.max_eval_rows or 1000
    held_out = {s: data.take_films(data.stream_films(cfg.data, s), n_eval) for s in ("validation", "test")}
    train = data.stream_films(cfg.data, "train").shuffle(seed=cfg.seed, buffer_size=10_000)
    if cfg.data.max_train_rows:
        train = train.take(cfg.data.max_train_rows)
    counts = {"streaming": True, "splits": {"train": {"used": "streamed"},
                                            **{s: {"used": len(df)} for s, df in held_out.items()}}}
    if held_out["test"].empty:
        raise UserError(f"the stream {cfg.data.source} gave no test films")
    return data.Splits(train=train, validation=held_out["validation"], test=held_out["test"], counts=counts)


def _train(cfg: Config, run_dir: Path, log, main: bool = True) -> None:
    """The run itself. With several processes (DDP) every rank trains; only the main one writes files,
    evaluates held-out perplexity and logs (Trainer itself saves checkpoints and the model from rank 0)."""
    t_start = time.time()
    tok, tok_source = tokens.load_tokenizer(cfg.model.tokenizer or cfg.model.name)
    splits = streamed_splits(cfg) if cfg.data.streaming else data.load_splits(cfg.data, cfg.seed)
    model, model_source = model_stage.load_model(cfg.model, tok, cfg.seed)
    ctx = model_stage.context_length(model)
    for key in ("max_length", "block_size"):  # max_length also bounds held-out evaluation in pack mode
        if getattr(cfg.text, key) > ctx:
            raise UserError(f"bad config value: text.{key}={getattr(cfg.text, key)} exceeds the model's context of {ctx}")
    precision, why = resolve_precision(cfg.train.precision)

    if cfg.data.streaming:  # packed blocks made as the Trainer reads them; nothing is loaded whole
        train_ds = tokens.tokenize_stream(splits.train, tok, cfg.text)
    else:
        train_ds = tokens.tokenize(splits.train, tok, cfg.text, desc="training films")
    val_ds = tokens.tokenize(splits.validation, tok, cfg.text, desc="validation films") if len(splits.validation) else None
    test_ds = tokens.tokenize(splits.test, tok, cfg.text, batching="pad", desc="test films")
    train_examples = "streamed" if cfg.data.streaming else len(train_ds)
    if train_examples == 0:
        raise UserError(f"the training split is too small to fill one block of {cfg.text.block_size} tokens")

    resolved = {"model": model_source, "model_choice": model_stage.choice_note(cfg.model), "parameters": model_stage.count_parameters(model), "tokenizer": tok_source,
                "vocab_size": len(tok), "context_length": ctx, "precision": precision, "precision_note": why,
                "data": splits.counts, "train_examples": train_examples, "hardware": hardware(), "versions": versions()}
    if main and not (run_dir / "config.yaml").exists():
        save_config(cfg, run_dir / "config.yaml", resolved)
    log(f"Run {run_dir}: {model_source}; {splits.counts['splits']['train']['used']} training films; {precision}")

    if (run_dir / "base_eval.json").exists():
        base = json.loads((run_dir / "base_eval.json").read_text())
    elif main:
        base = evaluate.perplexity(model, test_ds, cfg.train.eval_batch_size)
        _write_json(run_dir / "base_eval.json", base)
    if main:
        log(f"Held-out before training: loss {base['loss']:.4f}, perplexity {base['perplexity']:.2f}")

    ckpt_dir = run_dir / "checkpoints"
    if main:
        ckpt_dir.mkdir(exist_ok=True)
        clear_staging(ckpt_dir)
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.exists() else None
    offset = 0.0
    if main:  # drop log lines after the checkpoint (all of them when a kill came before the first one)
        step = json.loads((Path(last) / "trainer_state.json").read_text())["global_step"] if last else 0
        offset = _rewind_metrics(run_dir, step)
        if last:
            log(f"Resuming from {last} (step {step}).")
    model = loss_only(model, cfg.train.loss_only)
    stop = StopOnSignal().install()
    trainer = AtomicCheckpointTrainer(
        model=model, args=training_args(cfg, ckpt_dir, precision, val_ds is not None),
        train_dataset=train_ds, eval_dataset=val_ds, data_collator=default_data_collator,
        processing_class=tok, callbacks=[MetricsLog(run_dir / "metrics.jsonl", offset), stop]
        + ([SaveEvery(cfg.train.save_minutes)] if cfg.train.save_minutes else []))
    try:
        result = trainer.train(resume_from_checkpoint=last)
    finally:
        stop.restore()
    if stop.received and trainer.state.global_step < trainer.state.max_steps:
        raise Interrupted(f"{stop.received}: stopped at step {trainer.state.global_step} and saved "
                          f"{ckpt_dir / f'checkpoint-{trainer.state.global_step}'}; "
                          "rerun the same command to resume")

    trainer.model.generation_config.update(**GENERATION_DEFAULTS)
    with saving(run_dir / "model"):
        trainer.save_model(str(run_dir / "model"))  # safetensors weights, config, generation config, tokenizer
    if not main:
        return
    final = evaluate.perplexity(trainer.model, test_ds, cfg.train.eval_batch_size)
    log(f"Held-out after training: loss {final['loss']:.4f}, perplexity {final['perplexity']:.2f}")
    settings = {"template": cfg.text.template, "max_length": cfg.text.max_length, "splits": cfg.data.splits,
                "seed": cfg.seed, "data_source": cfg.data.source}
    (run_dir / "model" / "training_args.bin").unlink(missing_ok=True)  # a pickle; the run's config.yaml says it all
    (run_dir / "model" / model_stage.SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
    metrics = read_metrics(run_dir)
    tokens_seen = int(trainer.state.num_input_tokens_seen)
    summary = {
        "run": run_dir.name, "profile": cfg.profile, "model": model_source, "precision": precision,
        "base": base, "final": final,
        "perplexity_ratio": final["perplexity"] / base["perplexity"],
        "last_eval_loss": next((r["eval_loss"] for r in reversed(metrics) if r["kind"] == "eval"), None),
        "data": splits.counts, "train_examples": train_examples, "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch, "tokens_seen": tokens_seen,
        "train_runtime_s": result.metrics["train_runtime"],
        "tokens_per_second": tokens_seen / result.metrics["train_runtime"] if result.metrics["train_runtime"] else None,
        "wall_time_s": time.time() - t_start,
    }
    (run_dir / "model" / "README.md").write_text(model_card(cfg, summary))
    _write_json(run_dir / "summary.json", summary)  # last: its presence marks the run finished


def model_card(cfg: Config, s: dict) -> str:
    base_model = f"base_model: {cfg.model.name}\n" if cfg.model.name != "scratch" and not Path(cfg.model.name).exists() else ""
    dataset = cfg.data.source if cfg.data.source != "bundled" else "TMDB 5000 (bundled with moviegpt, wykonos/movies layout)"
    return f"""---
library_name: transformers
pipeline_tag: text-generation
{base_model}tags: [moviegpt, movies, causal-lm]
---
# {s['run']}

A causal language model fine-tuned by moviegpt to write film overviews.

- **Model**: {s['model']}
- **Data**: {dataset}; {s['data']['splits']['train']['used']} training films, {s['data']['splits']['test']['used']} held-out test films
- **Text**: `{cfg.text.template!r}` followed by the end-of-text token ({cfg.text.batching} batching)
- **Recipe**: {s['steps']} steps, batch {cfg.train.batch_size} x {cfg.train.grad_accum} accumulation, learning rate {cfg.train.learning_rate}, {s['precision']}
- **Held-out perplexity**: {s['base']['perplexity']:.2f} before, {s['final']['perplexity']:.2f} after fine-tuning (token-weighted, {s['final']['tokens']} tokens)

Prompt it with `Movie: <title>\\nOverview:`; it ends an overview with its end-of-text token.
TMDb data: this product uses the TMDb API but is not endorsed or certified by TMDb.
"""
