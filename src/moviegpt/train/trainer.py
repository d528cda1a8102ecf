"""The Trainer moviegpt trains with: its arguments, the one place it is built, and the atomic-checkpoint subclass
(its callbacks: moviegpt.train.callbacks).

Every performance choice is a visible line in `training_args`; everything else here is about not losing
work (atomic checkpoints, saves on a signal or a timer) and not trusting a diverged run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
import functools
import shutil
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments, default_data_collator
from transformers.modeling_outputs import CausalLMOutput
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_utils import rotate_checkpoints

from moviegpt.core import progress
from moviegpt.core.config import Config
from moviegpt.core.errors import UserError, first_line
from moviegpt.model.causal_lm import align_output
from moviegpt.train import schedule

# A GPU runs a step while the CPU queues the next one, unless something waits for the step to finish. Trainer
# waits three times per micro-batch by default: the two settings below, and its token count (CountOnDevice);
# none is needed (what undoing the two settings measured: benchmarks/README.md, "A GPU"). On a CPU nothing changes.
# train.trainer_args can set either setting back.
NO_STEP_SYNC = dict(
    logging_nan_inf_filter=False,  # the filter reads every step's loss on the host; a non-finite loss stops the
    # run at the next log anyway (MetricsLog) instead of being averaged away
    accelerator_config={"non_blocking": torch.cuda.is_available()},  # batches go to the GPU from pinned memory
    # without waiting for the step before them (a blocking copy synchronises the stream)
)


def training_args(cfg: Config, out: Path, precision: str, has_eval: bool, **options) -> TrainingArguments:
    """cfg.train -> TrainingArguments: the one place a setting reaches Trainer. A fresh run with validation films
    evaluates once before its first step, so its validation curve starts at the base model (step 0). `options`:
    those of `arguments` (resuming, saves, logs)."""
    try:
        return TrainingArguments(**arguments(cfg, out, precision, has_eval, **options))
    except (ValueError, TypeError, ImportError) as e:
        raise UserError(f"bad training setting: {first_line(e)}") from None


def arguments(
    cfg: Config,
    out: Path,
    precision: str,
    has_eval: bool,
    resuming: bool = False,
    saves: bool = True,
    logs: bool = True,
) -> dict:
    """The keywords of training_args' TrainingArguments(...), train.trainer_args last. `resuming`: no step-0
    evaluation; `saves` and `logs` false (the benchmarks): no checkpoints, no log lines, no
    trackers, no bar."""
    t = cfg.train
    eval_strategy = "no" if not has_eval else ("steps" if t.eval_steps else "epoch")
    save_strategy = "no" if not saves or t.save_steps == 0 else ("steps" if t.save_steps else "epoch")  # 0: only on
    report = [r.strip() for r in t.report_to.split(",") if r.strip() not in ("", "none", "tensorboard")]  # a signal
    return dict(
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
        bf16=precision == "bf16",  # autocast; on a CPU only where bf16 is native (moviegpt.core.hardware)
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        eval_strategy=eval_strategy,
        eval_steps=t.eval_steps,
        eval_on_start=has_eval and not resuming,  # step 0; a resumed run has logged it already
        save_strategy=save_strategy,  # on a signal (StopOnSignal) or a timer (SaveEvery) a run saves whatever this is
        save_steps=t.save_steps or 500,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=t.keep_best,
        metric_for_best_model="eval_loss" if t.keep_best else None,
        logging_steps=t.logging_steps if logs else 10**9,
        logging_first_step=logs,
        include_num_input_tokens_seen="non_padding",  # tokens/s counts real tokens, not padding
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=(report or "none") if logs else "none",  # tensorboard: a callback writing into the run directory
        disable_tqdm=not (logs and progress.enabled()),  # a bar in a terminal or notebook, nothing in a log
        **{**NO_STEP_SYNC, **t.trainer_args},
    )


def own_args() -> set[str]:
    """The TrainingArguments fields moviegpt sets from its own keys (train.trainer_args may not name them),
    read from the call itself, so the list cannot drift from it."""
    return set(arguments(Config(), Path("."), "fp32", has_eval=True)) - set(NO_STEP_SYNC)


def build(
    cfg: Config,
    model,
    train_dataset,
    out: Path,
    precision: str,
    *,
    tokenizer=None,
    eval_dataset=None,
    resuming: bool = False,
    callbacks: list | None = None,
    collator=None,
    saves: bool = True,
    logs: bool = True,
    atomic: bool = True,
) -> Trainer:
    """The one place a Trainer is made: `moviegpt train` and the benchmarks both train this.
    What differs between them goes in as arguments (saves, logs, callbacks, the collator), never as a change to
    the TrainingArguments afterwards. `atomic` false: Trainer's own checkpoints (benchmarks/checkpoint_cost.py)."""
    args = training_args(cfg, out, precision, eval_dataset is not None, resuming=resuming, saves=saves, logs=logs)
    return quiet(
        AtomicCheckpointTrainer(
            atomic=atomic,
            model=training_model(model, cfg),
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            data_collator=collator or (keep_apart_collator if cfg.text.keep_apart else default_data_collator),
            processing_class=tokenizer,
            callbacks=callbacks or [],
        )
    )


def keep_apart_collator(features: list[dict]) -> dict:
    """Blocks of films kept apart (text.keep_apart), batched with use_cache=False: the model builds its per-film mask
    from the position ids only when it keeps no cache; with one, each film would attend to the films before it
    (tests/data/test_tokens.py checks a film's logits packed this way against its logits alone)."""
    return {**default_data_collator(features), "use_cache": False}


def quiet(trainer: Trainer) -> Trainer:
    """Every log dict goes to the run's metrics.jsonl. Without a progress bar Trainer would also print each to stdout;
    with one, it would print each as a line under the bar: here the bar shows the latest numbers in place."""
    if trainer.args.disable_tqdm:
        trainer.remove_callback(PrinterCallback)
    elif any(type(c) is ProgressCallback for c in trainer.callback_handler.callbacks):
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(BarProgress)
    return trainer


class BarProgress(ProgressCallback):
    """Trainer's terminal bar, with the last logged loss, validation loss and tokens/s beside it instead of a line
    per log."""

    SHOWN = {"loss": "loss", "eval_loss": "val loss", "tokens_per_second": "tok/s"}
    last: dict | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            new = {name: f"{logs[key]:.4g}" for key, name in self.SHOWN.items() if key in logs}
            if new:
                self.last = {**(self.last or {}), **new}
                self.training_bar.set_postfix(self.last, refresh=True)


def loss_only(model, enabled: bool = True):
    """train.loss_only: while training, the model returns its loss and nothing else. Trainer uses only the
    loss, but under bf16 accelerate upcasts every bf16 tensor a model returns to fp32, and a causal LM returns
    its batch x length x vocabulary logits: 32 x 128 x 50,257 = 823 MB written (and freed) every step for
    nothing (the benchmark's "ours, logits returned" row measures it). In eval mode (validation, evaluation,
    generation) the model returns everything as before; the losses are the same either way."""
    if not enabled or getattr(model.forward, "loss_only", False):  # once (a model trained again: benchmarks)
        return model
    forward = model.forward

    @functools.wraps(forward)  # keeps the signature Trainer inspects for its input columns
    def train_forward(*args, **kwargs):
        out = forward(*args, **kwargs)
        return CausalLMOutput(loss=out.loss) if model.training and out.loss is not None else out

    train_forward.loss_only = True
    model.forward = train_forward
    return model


def training_model(model, cfg: Config):
    """The model as Trainer trains it, in `moviegpt train` and the benchmarks alike: its output
    layer aligned on a GPU (train.vocab_multiple), its training steps returning the loss only (train.loss_only)."""
    return loss_only(align_output(model, cfg.train.vocab_multiple), cfg.train.loss_only)


@contextlib.contextmanager
def kept_random_state():
    """Python's, numpy's and torch's random states (every GPU's too) put back as they were on leaving."""
    import random

    import numpy as np

    kept = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(kept[0])
        np.random.set_state(kept[1])
        torch.random.set_rng_state(kept[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


class CountOnDevice(Trainer):
    """Trainer that counts the tokens it has seen without stopping the GPU. Trainer adds every micro-batch's
    count to its state with `.item()`, which waits for the step to finish on the GPU; here the count stays on
    the device and reaches `state.num_input_tokens_seen` when a log or a checkpoint reads it."""

    _pending = None  # tokens counted on the device since the last log or save

    def create_scheduler(self, num_training_steps, optimizer=None):
        """Trainer's schedule, but a warm-up trains from its first step (moviegpt.train.schedule)."""
        if self.lr_scheduler is None:
            made = super().create_scheduler(num_training_steps, optimizer)
            self.lr_scheduler = schedule.first_step(made, self.args, num_training_steps)
        return self.lr_scheduler

    def _evaluate(self, *args, **kwargs):
        """A validation pass (its callbacks, such as the samples, included) leaves the random state as it found it:
        each pass draws a seed for its data loader from torch's generator, which would change every dropout mask
        after it, so that how often a run validates would change what it trains."""
        with kept_random_state():
            return super()._evaluate(*args, **kwargs)

    def _track_num_input_tokens(self, inputs):  # Trainer's hook (transformers 5.x), called once per micro-batch
        if self.args.include_num_input_tokens_seen != "non_padding":
            return super()._track_num_input_tokens(inputs)
        if "attention_mask" in inputs:
            n = inputs["attention_mask"].sum()
        elif "position_ids" in inputs:  # packed films kept apart (text.keep_apart): blocks hold no padding. Trainer
            n = torch.tensor(inputs["input_ids"].numel())  # would count tokens unequal to the pad token, which
            # here is the EOS: every film's last token would go uncounted
        else:
            return super()._track_num_input_tokens(inputs)
        self._pending = n if self._pending is None else self._pending + n

    def flush_tokens(self) -> None:
        if self._pending is not None:
            total = self.accelerator.gather(self._pending.to(self.args.device).reshape(1)).sum()
            self.state.num_input_tokens_seen += int(total)  # the one host read, at a log or a save
            self._pending = None

    def log(self, logs, *args, **kwargs):
        self.flush_tokens()
        return super().log(logs, *args, **kwargs)

    def _save_checkpoint(self, model, trial):
        self.flush_tokens()
        return super()._save_checkpoint(model, trial)


class AtomicCheckpointTrainer(CountOnDevice):
    """Trainer whose checkpoints appear whole or not at all.

    Trainer writes checkpoint-N/ in place, so a kill during a save leaves a half-written folder that
    get_last_checkpoint would pick up. Here every save goes to tmp-checkpoint-N/checkpoint-N/ and is
    renamed to checkpoint-N/ once complete (a rename is atomic on one filesystem); leftovers are
    removed before the next start (RunDir.clear_staging). `atomic=False`: Trainer's own save, in place (the
    benchmark that measures what staging costs)."""

    _staging: str | None = None

    def __init__(self, *args, atomic: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.atomic = atomic

    def _get_output_dir(self, trial):
        return self._staging or super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        if not self.atomic:
            return super()._save_checkpoint(model, trial)
        out = Path(super()._get_output_dir(trial))
        name = f"checkpoint-{self.state.global_step}"
        staging = out / f"tmp-{name}"
        started = time.perf_counter()
        self._staging = str(staging)
        try:
            with saving(out / name, cleanup=staging):
                super()._save_checkpoint(model, trial)  # writes staging/checkpoint-N (every rank its RNG file)
        finally:
            self._staging = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            self._publish(out, staging, name)
        self.accelerator.wait_for_everyone()
        self.log({"save_seconds": time.perf_counter() - started})  # metrics.jsonl: what the checkpoint cost

    def _publish(self, out: Path, staging: Path, name: str) -> None:
        staged, final = staging / name, out / name
        if self.state.best_model_checkpoint == str(staged):
            self.state.best_model_checkpoint = str(final)
            self.state.save_to_json(str(staged / "trainer_state.json"))
        (staged / "training_args.bin").unlink(missing_ok=True)  # a pickle; config.yaml holds the settings
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)  # the checkpoint becomes visible here, complete
        staging.rmdir()
        rotate_checkpoints(
            output_dir=str(out),
            save_total_limit=self.args.save_total_limit,
            best_model_checkpoint=self.state.best_model_checkpoint,
            use_mtime=False,
        )


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
        raise UserError(
            f"could not write {what}: {reason}; free some space and rerun the same "
            "command to resume from the last complete checkpoint"
        ) from None


NOT_SETTABLE = {"logging_dir", "resume_from_checkpoint", "push_to_hub", "hub_token"}  # a run's own folder, resume
# and the hub: `moviegpt train` decides these; the rest of what it sets is read from the call (trainer.own_args)


def check_args(extra: dict) -> None:
    """train.trainer_args names real TrainingArguments fields that moviegpt does not set from its own keys
    (the values are checked by TrainingArguments itself when the run starts)."""
    if not extra:
        return
    known = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    own = own_args() | NOT_SETTABLE
    for k, v in extra.items():
        if k in own:
            raise UserError(
                f"train.trainer_args.{k} is set by moviegpt itself; use its own key "
                "(`moviegpt config --keys`) or leave it"
            )
        if k not in known:
            close = difflib.get_close_matches(k, sorted(known), n=1)
            raise UserError(
                f"train.trainer_args.{k} is not a TrainingArguments field"
                + (f"; did you mean '{close[0]}'?" if close else "")
            )
        kinds = _kinds(str(known[k].type))
        if kinds and (not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds)):  # bool is an int
            names = " or ".join(sorted({"null" if t is type(None) else t.__name__ for t in kinds}))
            raise UserError(f"train.trainer_args.{k}={v!r} must be {names} (TrainingArguments' type: {known[k].type})")


_PLAIN = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,), "dict": (dict,), "list": (list,)}


def _kinds(annotation: str) -> tuple:
    """The plain Python types a TrainingArguments annotation allows (empty: anything, it is checked later)."""
    found = [t for name, types in _PLAIN.items() if re.search(rf"\b{name}\b", annotation) for t in types]
    if "None" in annotation:
        found.append(type(None))
    if not found or any(c in annotation for c in ("Strategy", "Names", "SchedulerType", "Config", "Option")):
        return ()  # enums and library objects: TrainingArguments checks them itself
    return tuple(dict.fromkeys(found))
