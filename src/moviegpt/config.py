"""The one config object that flows through every stage.

A profile is a YAML file in `configs/` (or any YAML path) whose sections mirror the
dataclasses below; anything not given keeps the default here. `--set section.key=value`
overrides one setting. Every setting is read in exactly one place: search for
`cfg.<section>.<key>` to find it.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from moviegpt.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # src/moviegpt/config.py -> repository root
CONFIGS_DIR = PROJECT_ROOT / "configs"
CACHE_DIR = Path(os.environ.get("MOVIEGPT_CACHE", Path.home() / ".cache" / "moviegpt"))  # tokens, stand-in models
# Sampling defaults: used by moviegpt.generate, the CLI and the saved model's generation_config.json
GENERATION_DEFAULTS = dict(do_sample=True, temperature=0.8, top_p=0.95, top_k=50, max_new_tokens=80)


@dataclass
class DataConfig:
    source: str = "bundled"  # "bundled", a hub dataset id, or a local/fsspec path (.csv, .parquet, .jsonl)
    hub_split: str = "train"  # which split of a hub dataset to read (wykonos/movies has only "train")
    splits: list = field(default_factory=lambda: [0.9, 0.05, 0.05])  # train / validation / test fractions
    max_train_rows: int | None = None  # cap on training films, taken after a seeded shuffle
    max_eval_rows: int | None = None  # cap on validation and on test films, likewise
    streaming: bool = False  # read the source as a datasets stream (larger than memory); needs train.max_steps


@dataclass
class TextConfig:
    template: str = "Movie: {title}\nOverview: {overview}"  # the report's format; EOS is appended
    batching: str = "pack"  # "pad": one film per row padded to max_length (the report's); "pack": run_clm's group_texts
    max_length: int = 128  # pad mode: truncate/pad each film to this many tokens
    block_size: int = 128  # pack mode: length of each packed block
    num_proc: int | None = None  # tokenisation worker processes (Dataset.map num_proc); None = in-process


@dataclass
class ModelConfig:
    name: str = "gpt2"  # hub id, local save_pretrained dir, a stand-in (smollm2-135m), or "scratch" (GPT-2 from the sizes below)
    fallback: str | None = None  # used instead of `name` when `name` is a hub id that is neither reachable nor cached
    requested: str | None = None  # set by moviegpt.model.choose when the fallback replaced the requested model
    tokenizer: str | None = None  # None = the model's own; "gpt2-bundled" = the GPT-2 files shipped in moviegpt
    n_layer: int = 2  # scratch only
    n_head: int = 2  # scratch only
    n_embd: int = 128  # scratch only
    n_positions: int = 1024  # scratch only
    dropout: float = 0.1  # scratch only: GPT-2's residual, embedding and attention dropout
    attn_implementation: str = "sdpa"  # PyTorch's fused scaled-dot-product attention


@dataclass
class TrainConfig:
    epochs: float = 2.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 4  # per device
    eval_batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 5e-5
    lr_scheduler: str = "linear"
    warmup_steps: float = 0  # steps, or a fraction of all steps when below 1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (fp16 needs CUDA; auto = bf16 where the hardware has it)
    optim: str = "adamw_torch"
    compile: bool = False  # torch.compile the model (Inductor): fused kernels, once per shape; pays on long runs
    loss_only: bool = True  # training steps return the loss alone, no logits (train.loss_only); same numbers, faster under bf16
    logging_steps: int = 50
    eval_steps: int | None = None  # None: evaluate on the validation split once per epoch
    save_steps: int | None = None  # None: save once per epoch
    save_minutes: float | None = None  # also save when this many minutes passed since the last save (time-driven)
    save_total_limit: int | None = 1
    keep_best: bool = False  # load the checkpoint with the lowest validation loss at the end


@dataclass
class Config:
    profile: str = "custom"
    seed: int = 42
    runs_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Short hash of everything that changes what a run computes (not where it is written)."""
        d = self.to_dict()
        d.pop("runs_dir")
        d["text"].pop("num_proc")
        d["train"].pop("loss_only")  # changes speed only: the same losses and weights either way
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def run_name(self) -> str:
        return f"{self.profile}-{self.hash()}"


SECTIONS = {f.name for f in dataclasses.fields(Config)}
_SECTION_CLASSES = {"data": DataConfig, "text": TextConfig, "model": ModelConfig, "train": TrainConfig}


def all_keys() -> list[str]:
    keys = [f.name for f in dataclasses.fields(Config) if f.name not in _SECTION_CLASSES]
    for name, cls in _SECTION_CLASSES.items():
        keys += [f"{name}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


def _unknown(key: str) -> UserError:
    close = difflib.get_close_matches(key, all_keys(), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(all_keys())}"
    return UserError(f"unknown config key '{key}'{hint}")


def _coerce(key: str, value: Any, annotation: str) -> Any:
    """Check a value against the field's annotation (YAML already parsed numbers and booleans)."""
    kind, _, optional = annotation.partition(" | ")
    if value is None:
        if optional:
            return None
        raise UserError(f"config value {key} must be set (it cannot be null)")
    if kind == "bool" and not isinstance(value, bool):
        raise UserError(f"config value {key}={value!r} must be true or false")
    if kind in ("int", "float"):
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as text
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config value {key}={value!r} must be a number")
        if kind == "int" and float(value) != int(value):
            raise UserError(f"config value {key}={value!r} must be a whole number")
        return int(value) if kind == "int" else float(value)
    if kind == "str" and not isinstance(value, str):
        raise UserError(f"config value {key}={value!r} must be text")
    if kind == "list" and not isinstance(value, list):
        raise UserError(f"config value {key}={value!r} must be a list")
    return value


def _apply(cfg: Config, key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in SECTIONS and parts[0] not in _SECTION_CLASSES:
        target, attr = cfg, parts[0]
    elif len(parts) == 2 and parts[0] in _SECTION_CLASSES:
        target, attr = getattr(cfg, parts[0]), parts[1]
        if attr not in {f.name for f in dataclasses.fields(target)}:
            raise _unknown(key)
    else:
        raise _unknown(key)
    annotation = {f.name: f.type for f in dataclasses.fields(target)}[attr]
    setattr(target, attr, _coerce(key, value, annotation))


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and not prefix and k in _SECTION_CLASSES:
            out.update(_flatten(v, f"{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read config file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise UserError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def profiles() -> list[str]:
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def from_dict(d: dict, overrides: list[str] | None = None) -> Config:
    cfg = Config()
    for key, value in _flatten(d).items():
        _apply(cfg, key, value)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"override '{item}' must look like section.key=value")
        _apply(cfg, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    validate(cfg)
    return cfg


def load_run_config(run_dir: Path) -> Config:
    """The config a finished run was made with (its config.yaml, less what was recorded about the run)."""
    d = _read_yaml(Path(run_dir) / "config.yaml")
    return from_dict({k: v for k, v in d.items() if k not in ("run_name", "resolved")})


def load_config(name_or_path: str, overrides: list[str] | None = None) -> Config:
    """Load a profile by name (configs/<name>.yaml) or a YAML path, then apply `key=value` overrides."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIGS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise UserError(f"unknown profile '{name_or_path}'; profiles: {', '.join(profiles())} (or give a YAML path)")
    elif not path.exists():
        raise UserError(f"config file not found: {path}")
    return from_dict({"profile": path.stem, **_read_yaml(path)}, overrides)


def validate(cfg: Config) -> None:
    """Range checks that do not need the model or the data (those are checked where they load)."""
    t, x = cfg.train, cfg.text

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise UserError(f"bad config value: {msg}")

    need(t.batch_size >= 1, f"train.batch_size={t.batch_size} must be at least 1")
    need(t.eval_batch_size >= 1, f"train.eval_batch_size={t.eval_batch_size} must be at least 1")
    need(t.grad_accum >= 1, f"train.grad_accum={t.grad_accum} must be at least 1")
    need(t.learning_rate > 0, f"train.learning_rate={t.learning_rate} must be positive")
    need(t.epochs > 0 or t.max_steps > 0, "train.epochs or train.max_steps must be positive")
    need(not cfg.data.streaming or t.max_steps > 0, "data.streaming=true needs train.max_steps (a stream has no length)")
    need(0 <= cfg.model.dropout < 1, f"model.dropout={cfg.model.dropout} must be in [0, 1)")
    need(t.warmup_steps >= 0, f"train.warmup_steps={t.warmup_steps} must not be negative")
    need(t.weight_decay >= 0, f"train.weight_decay={t.weight_decay} must not be negative")
    need(t.logging_steps >= 1, f"train.logging_steps={t.logging_steps} must be at least 1")
    need(t.eval_steps is None or t.eval_steps >= 1, f"train.eval_steps={t.eval_steps} must be at least 1")
    need(t.save_steps is None or t.save_steps >= 1, f"train.save_steps={t.save_steps} must be at least 1")
    need(t.save_minutes is None or t.save_minutes > 0, f"train.save_minutes={t.save_minutes} must be positive")
    need(not t.keep_best or (t.eval_steps and t.save_steps and t.save_steps % t.eval_steps == 0),
         "train.keep_best needs train.eval_steps and a train.save_steps that is a multiple of it")
    need(t.precision in ("auto", "fp32", "bf16", "fp16"), f"train.precision='{t.precision}' must be auto, fp32, bf16 or fp16")
    need(x.batching in ("pad", "pack"), f"text.batching='{x.batching}' must be pad or pack")
    need(x.max_length >= 8, f"text.max_length={x.max_length} must be at least 8")
    need(x.block_size >= 8, f"text.block_size={x.block_size} must be at least 8")
    need("{title}" in x.template and "{overview}" in x.template, "text.template must contain {title} and {overview}")
    s = cfg.data.splits
    need(len(s) == 3 and all(isinstance(v, (int, float)) and v >= 0 for v in s) and abs(sum(s) - 1) < 1e-6,
         f"data.splits={s} must be three non-negative fractions (train, validation, test) summing to 1")
    need(s[0] > 0 and s[2] > 0, f"data.splits={s} needs a non-empty train and test split")
    for key in ("max_train_rows", "max_eval_rows"):
        v = getattr(cfg.data, key)
        need(v is None or v >= 1, f"data.{key}={v} must be at least 1")
    m = cfg.model
    if m.name == "scratch":
        need(m.n_layer >= 1 and m.n_head >= 1 and m.n_embd >= 1, "model.n_layer, n_head and n_embd must be at least 1")
        need(m.n_embd % m.n_head == 0, f"model.n_embd={m.n_embd} must be divisible by model.n_head={m.n_head}")
        need(m.tokenizer is not None, "model.name=scratch needs model.tokenizer (e.g. gpt2-bundled)")


def save_config(cfg: Config, path: Path, extra: dict | None = None) -> None:
    """Write the resolved config, plus what actually ran (model, hardware, versions) under `resolved`."""
    d = cfg.to_dict()
    d["run_name"] = cfg.run_name
    if extra:
        d["resolved"] = extra
    path.write_text(yaml.safe_dump(d, sort_keys=False, allow_unicode=True))
