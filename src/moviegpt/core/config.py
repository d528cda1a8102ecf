"""The one config object that flows through every stage.

A profile is a YAML file (the shipped ones: `moviegpt profiles`; any other YAML path works too)
whose sections mirror the dataclasses below; anything not given keeps the default here.
`--set section.key=value` overrides one setting. Every setting documents itself beside its field
(`moviegpt config --keys` prints them all) and is read in exactly one place: search for
`cfg.<section>.<key>` to find it. Loading and checking the values is `moviegpt.core.settings`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = Path(os.environ.get("MOVIEGPT_CACHE", Path.home() / ".cache" / "moviegpt"))  # tokens, stand-ins, plans
# Sampling defaults: used by moviegpt.eval.generate, the CLI and the saved model's generation_config.json
GENERATION_DEFAULTS = dict(do_sample=True, temperature=0.8, top_p=0.95, top_k=50, max_new_tokens=80)


def setting(default=None, help: str = "", *, factory=None, hash="yes", lo=None, hi=None, choices=None):
    """A config field with its help and its checks. hash: "yes" (changes what a run computes), "no" (speed or
    place only), or "changed" (added later: counted only when not at its default, so runs made before it
    existed keep their directory). lo/hi bound numbers; choices names the values allowed (or a callable
    returning them)."""
    meta = {"help": help, "hash": hash, "lo": lo, "hi": hi, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _optimizers():
    from transformers.training_args import OptimizerNames

    return [o.value for o in OptimizerNames]


def _schedulers():
    from transformers.trainer_utils import SchedulerType

    return [s.value for s in SchedulerType]


# Values the shipped profiles use, known without importing transformers (a chapter that reads a run's config
# stays free of torch); any other value is checked against transformers' own list.
_optimizers.common = ("adamw_torch", "adamw_torch_fused")
_schedulers.common = ("linear", "cosine", "constant", "constant_with_warmup")


BIG = 10**9  # upper bound of counts: larger values are typos, and some libraries overflow on them


@dataclass
class DataConfig:
    source: str = setting(
        "bundled",
        "'bundled' (the shipped TMDB 5000 sample), a hub dataset id such as "
        "wykonos/movies, or a local/fsspec path to a .csv, .parquet or .jsonl file",
    )
    hub_split: str = setting("train", "which split of a hub dataset to read (wykonos/movies has only 'train')")
    splits: list = setting(
        help="train / validation / test fractions; each film's split is a hash of its id",
        factory=lambda: [0.9, 0.05, 0.05],
    )
    max_train_rows: int | None = setting(None, "cap on training films, taken after a seeded shuffle", lo=1, hi=BIG)
    max_eval_rows: int | None = setting(None, "cap on validation and on test films, likewise", lo=1, hi=BIG)
    seed: int | None = setting(
        None,
        "seeds the shuffle that picks the capped films; none = the run's seed (a study varies the training seed "
        "on the same films)",
        hash="changed",
        lo=0,
        hi=2**32 - 1,
    )
    held_out_length: int | None = setting(
        None,
        "held-out scoring: tokens per film (longer films are cut), the same for every recipe compared whatever "
        "length it trains on; none = text.max_length",
        hash="changed",
        lo=8,
        hi=1 << 20,
    )
    streaming: bool = setting(False, "read the source as a datasets stream (larger than memory); needs train.max_steps")
    timeout_s: float = setting(
        60.0, "give up on a remote (http, s3, hub) read that sends nothing for this long", hash="no", lo=1, hi=3600
    )


@dataclass
class TextConfig:
    template: str = setting(
        "Movie: {title}\nOverview: {overview}",
        "how a film becomes text; {field} names a "
        "column (title, overview, genres, ...); the end-of-text token is appended (text.eos)",
    )
    eos: bool = setting(
        True,
        "end each training film with the tokenizer's end-of-text token, a learned target (false: the report's "
        "recipe, whose collator masked every pad = EOS token, so its model never learned to stop); held-out "
        "evaluation always scores it",
        hash="changed",
    )
    batching: str = setting(
        "pack",
        "'pad': one film per row, padded to max_length (the report's); 'pack': films "
        "joined and cut into block_size blocks (run_clm's group_texts)",
        choices=("pad", "pack"),
    )
    max_length: int = setting(
        128, "pad mode, and held-out evaluation: tokens per film (longer films are cut)", lo=8, hi=1 << 20
    )
    block_size: int = setting(128, "pack mode: tokens per packed block", lo=8, hi=1 << 20)
    keep_apart: bool = setting(
        False,
        "pack mode: each film attends only to itself (position ids restart at each film and no attention mask "
        "is passed, so the model builds a per-film mask: transformers' DataCollatorWithFlattening); false: "
        "run_clm's packing, where a film attends to the films before it in its block",
        hash="changed",
    )
    num_proc: int | None = setting(
        None, "tokenisation worker processes (Dataset.map num_proc); none = in-process", hash="no", lo=1, hi=1024
    )

    def seq_len(self, batching: str | None = None) -> int:
        """Tokens per training row: the block in pack mode, the padded film in pad mode."""
        return self.block_size if (batching or self.batching) == "pack" else self.max_length


@dataclass
class ModelConfig:
    name: str = setting(
        "gpt2",
        "hub id, local save_pretrained directory, a stand-in (smollm2-135m), or 'scratch' "
        "(a GPT-2 built from n_layer/n_head/n_embd below)",
    )
    fallback: str | None = setting(
        None, "used instead of name when name is a hub id that is neither reachable nor in the local cache"
    )
    requested: str | None = setting(None, "set by moviegpt when the fallback replaced the requested model")
    tokenizer: str | None = setting(
        None, "none = the model's own; 'gpt2-bundled' = the GPT-2 files shipped in moviegpt"
    )
    parent: str | None = setting(
        None, "the run this one continues from (set by `moviegpt train --from RUN`)", hash="changed"
    )
    n_layer: int = setting(2, "scratch only: transformer blocks", lo=1, hi=1024)
    n_head: int = setting(2, "scratch only: attention heads", lo=1, hi=1024)
    n_embd: int = setting(128, "scratch only: hidden width", lo=1, hi=1 << 16)
    n_positions: int = setting(1024, "scratch only: context length", lo=8, hi=1 << 20)
    dropout: float = setting(0.1, "scratch only: GPT-2's residual, embedding and attention dropout", lo=0, hi=0.99)
    attn_implementation: str = setting(
        "sdpa",
        "attention kernel: 'sdpa' (PyTorch's fused scaled-dot-product attention) or 'eager'",
        choices=("sdpa", "eager"),
    )


@dataclass
class TrainConfig:
    epochs: float = setting(2.0, "passes over the training films (ignored when max_steps > 0)", lo=0, hi=1e6)
    max_steps: int = setting(
        -1, "> 0: exactly this many optimizer steps (overrides epochs and budget_minutes)", lo=-1, hi=BIG
    )
    budget_minutes: float | None = setting(
        None,
        "plan the run to this many minutes of training on this machine: one row's step is timed before the "
        "first step and the step count, warm-up, validation and checkpoints are fixed to fit (moviegpt.train.plan); "
        "cached per machine",
        hash="changed",
        lo=0.1,
        hi=1e6,
    )
    batch_size: int = setting(4, "rows per device per micro-batch", lo=1, hi=1 << 16)
    eval_batch_size: int = setting(8, "rows per batch when evaluating", lo=1, hi=1 << 16)
    grad_accum: int = setting(1, "micro-batches per optimizer step", lo=1, hi=1 << 16)
    learning_rate: float = setting(5e-5, "peak learning rate", lo=1e-12, hi=10)
    lr_scheduler: str = setting(
        "linear", "any transformers SchedulerType (linear, cosine, constant, ...)", choices=_schedulers
    )
    warmup_steps: float = setting(0, "warm-up steps, or a fraction of all steps when below 1", lo=0, hi=BIG)
    weight_decay: float = setting(0.0, "AdamW weight decay", lo=0, hi=10)
    max_grad_norm: float = setting(1.0, "gradient clipping norm", lo=0, hi=1e6)
    precision: str = setting(
        "auto",
        "auto | fp32 | bf16 | fp16; auto = bf16 where it is native (moviegpt.core.hardware), else fp16 on CUDA, "
        "else fp32",
        choices=("auto", "fp32", "bf16", "fp16"),
    )
    optim: str = setting(
        "adamw_torch", "any transformers OptimizerNames (adamw_torch, adamw_torch_fused, ...)", choices=_optimizers
    )
    compile: bool = setting(False, "torch.compile the model (Inductor): fused kernels, compiled once per shape")
    vocab_multiple: int = setting(
        1,
        "compute the output layer as if the vocabulary were padded to a multiple of "
        "this (64: GPT-2's 50,257 rows become nanoGPT's 50,304); GPU matmul kernels want "
        "aligned sizes; the logits are the same; GPU only (moviegpt.model.causal_lm.align_output)",
        hash="no",
        lo=1,
        hi=4096,
    )
    loss_only: bool = setting(
        True,
        "training steps return the loss alone, no logits: the same numbers, faster "
        "under bf16 (moviegpt.train.trainer.loss_only)",
        hash="no",
    )
    lora: bool = setting(
        False,
        "train LoRA adapters (peft, settings in the lora section) instead of every weight; "
        "model/ still holds the merged model",
        hash="changed",
    )
    report_to: str = setting(
        "none",
        "experiment tracking through Trainer: none, tensorboard, trackio, wandb, "
        "mlflow, ... (comma-separated for several)",
        hash="no",
    )
    trainer_args: dict = setting(
        help="any other transformers TrainingArguments field, e.g. "
        "train.trainer_args.gradient_checkpointing=true (TrainingArguments checks it)",
        factory=dict,
        hash="changed",
    )
    logging_steps: int = setting(50, "log the training loss every N steps", lo=1, hi=BIG)
    eval_steps: int | None = setting(None, "validate every N steps; none = once per epoch", lo=1, hi=BIG)
    eval_rows: int | None = setting(
        None,
        "validation examples in each in-loop validation pass (the first N); "
        "none = all; a planned run sizes it to the budget (moviegpt.train.plan)",
        hash="changed",
        lo=1,
        hi=BIG,
    )
    samples: int = setting(
        0,
        "test titles (the first N) sampled at each validation pass, step 0 included, with the generation defaults, "
        "train.sample_tokens and the run's seed, into metrics.jsonl (kind samples); 0 = none; a plan budgets them",
        hash="no",
        lo=0,
        hi=64,
    )
    film_curve: list = setting(
        help="fractions of the run's steps (0 = before the first) at which every validation film is scored on its "
        "own, by token type, into metrics.jsonl (kind films); replaces Trainer's validation passes; [] = none",
        factory=list,
        hash="no",
    )
    sample_tokens: int = setting(48, "train.samples: at most this many new tokens per title", hash="no", lo=1, hi=4096)
    save_steps: int | None = setting(
        None,
        "checkpoint every N steps; none = once per epoch; 0 = only on a signal "
        "or after save_minutes (a short planned run)",
        lo=0,
        hi=BIG,
    )
    save_minutes: float | None = setting(
        None, "also checkpoint when this many minutes passed since the last save", lo=0.01, hi=1e6
    )
    save_total_limit: int | None = setting(1, "checkpoints kept (the best one too, with keep_best)", lo=1, hi=BIG)
    keep_best: bool = setting(False, "load the checkpoint with the lowest validation loss at the end")


@dataclass
class LoraConfig:
    r: int = setting(8, "rank of each adapter", lo=1, hi=4096, hash="changed")
    alpha: float = setting(16.0, "scaling numerator: updates are scaled by alpha / r", lo=1e-6, hi=1e6, hash="changed")
    dropout: float = setting(0.05, "dropout on the adapters' input", lo=0, hi=0.99, hash="changed")
    target_modules: list | None = setting(
        None,
        "module names to adapt; none = the attention and MLP projections "
        "of the architecture (GPT-2: c_attn, c_proj, c_fc; Llama-style: "
        "q/k/v/o_proj, gate/up/down_proj)",
        hash="changed",
    )


@dataclass
class Config:
    profile: str = setting("custom", "the profile's name: the run directory is <profile>-<hash>")
    seed: int = setting(42, "seeds the split shuffle, the model initialisation and Trainer", lo=0, hi=2**32 - 1)
    runs_dir: str = setting("runs", "where run directories are written (relative to the current folder)", hash="no")
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Short hash of everything that changes what a run computes (derived from each field's `hash`)."""

        def keep(obj) -> dict:
            out = {}
            for f in dataclasses.fields(obj):
                value = getattr(obj, f.name)
                if dataclasses.is_dataclass(value):
                    if sub := keep(value):
                        out[f.name] = sub
                    continue
                rule = f.metadata.get("hash", "yes")
                default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                if rule == "yes" or (rule == "changed" and value != default):
                    out[f.name] = value
            return out

        return hashlib.sha256(json.dumps(keep(self), sort_keys=True).encode()).hexdigest()[:8]

    @property
    def run_name(self) -> str:
        """The run's directory: <profile>-<hash of the settings>, and for a budgeted run, whose plan fixed its steps
        for one machine, -<that machine's tag> (moviegpt.core.hardware.machine_tag)."""
        name = f"{self.profile}-{self.hash()}"
        if self.train.budget_minutes and self.train.max_steps > 0:
            from moviegpt.core.hardware import machine_tag

            name += f"-{machine_tag()}"
        return name

    @property
    def scored_length(self) -> int:
        """Tokens per held-out film when scoring (data.held_out_length, else text.max_length)."""
        return self.data.held_out_length or self.text.max_length

    @property
    def tokens_per_step(self) -> int:
        """Tokens in one optimizer step on one device: batch x accumulation x row length."""
        return self.train.batch_size * self.train.grad_accum * self.text.seq_len()


SECTIONS = {"data": DataConfig, "text": TextConfig, "model": ModelConfig, "train": TrainConfig, "lora": LoraConfig}


def fields_of(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def all_keys() -> dict[str, dataclasses.Field]:
    """Every setting by its dotted key."""
    keys = {k: f for k, f in fields_of(Config).items() if k not in SECTIONS}
    for name, cls in SECTIONS.items():
        keys.update({f"{name}.{k}": f for k, f in fields_of(cls).items()})
    return keys


def default_of(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def keys_help() -> list[dict]:
    """Every key with its type, default and help (`moviegpt config --keys`)."""
    return [
        {"key": k, "type": str(f.type), "default": default_of(f), "help": f.metadata.get("help", "")}
        for k, f in all_keys().items()
    ]


def save_interval(step_seconds: float, save_every_steps: int | None, save_minutes: float | None) -> float:
    """Seconds of training between two saves under a step- and/or time-driven policy (whichever comes first)."""
    return min(
        x for x in (save_every_steps and save_every_steps * step_seconds, save_minutes and save_minutes * 60) if x
    )
