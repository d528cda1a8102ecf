"""The model stage: a hub model, a local save_pretrained directory, or a GPT-2 built from a config;
optionally wrapped in LoRA adapters (peft).

Weights load only as safetensors, remote code is never trusted (`trust_remote_code=False` on every
load, and a local directory that names its own code is refused before transformers sees it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import warnings
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, PreTrainedModel, PreTrainedTokenizerBase

from moviegpt.core import hub, validate
from moviegpt.core.config import Config, DataConfig, ModelConfig, TextConfig
from moviegpt.core.errors import UserError, first_line
from moviegpt.model import assets
from moviegpt.model.tokenizer import load_tokenizer

SETTINGS_FILE = "moviegpt.json"  # written beside the weights: the text settings a trained model expects
DEFAULT_SETTINGS = {
    "template": TextConfig.template,
    "max_length": TextConfig.max_length,
    "splits": DataConfig().splits,
    "seed": 42,
}
HUB_IDS = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
}
LORA_TARGETS = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
LLAMA_STYLE = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "olmo", "olmo2", "smollm3"}


def load_model(cfg: ModelConfig, tok: PreTrainedTokenizerBase, seed: int = 0) -> tuple[PreTrainedModel, str]:
    """Return the model and a one-line description of what was loaded."""
    if cfg.name == "scratch":
        torch.manual_seed(seed)  # the "base model" of a scratch run is this seeded initialisation
        config = GPT2Config(
            vocab_size=len(tok),
            n_positions=cfg.n_positions,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            n_embd=cfg.n_embd,
            bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            resid_pdrop=cfg.dropout,
            embd_pdrop=cfg.dropout,
            attn_pdrop=cfg.dropout,
        )
        model = GPT2LMHeadModel(config)
        model.config._attn_implementation = cfg.attn_implementation
        desc = f"GPT-2 from config ({cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} dims), random init"
    else:
        model, desc = load_pretrained(cfg.name, cfg.attn_implementation)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, desc


def loadable(name: str) -> bool:
    """Can this model be had here: a stand-in, a local directory, the hub, or the local hub cache?"""
    from huggingface_hub import try_to_load_from_cache

    if name == "scratch" or assets.is_stand_in(name) or Path(name).exists() or hub.reachable():
        return True
    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def choose(cfg: Config) -> Config:
    """Swap in `model.fallback` when the requested hub model cannot be loaded here (recorded in `model.requested`)."""
    m = cfg.model
    if not m.fallback or m.requested or loadable(m.name):
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(m, name=m.fallback, tokenizer=None, requested=m.name))


def choice_note(cfg: ModelConfig) -> str:
    """One sentence for the report: which model ran, and why."""
    if cfg.requested:
        return (
            f"The {cfg.requested} weights were not reachable (no Hugging Face hub, not in the local cache), "
            f"so this run used the stand-in {cfg.name}: {assets.STAND_INS[cfg.name]['describes']}."
        )
    if cfg.parent:
        return f"This run continued the fine-tuned model of run {cfg.parent}."
    return f"This run used {cfg.name}, as its profile asks."


def base_model_id(cfg: ModelConfig) -> str | None:
    """The hub id of the pretrained weights a run started from (for the model card), if there is one."""
    if cfg.name == "scratch":
        return None
    if assets.is_stand_in(cfg.name):
        return assets.STAND_INS[cfg.name]["hub_id"]
    settings = Path(cfg.name) / SETTINGS_FILE
    if settings.is_file():  # a moviegpt model directory (a --from run): the weights it started from
        return json.loads(settings.read_text()).get("base_model")
    return None if Path(cfg.name).exists() else HUB_IDS.get(cfg.name, cfg.name)


def load_pretrained(name: str, attn_implementation: str = "sdpa") -> tuple[PreTrainedModel, str]:
    kw = dict(use_safetensors=True, trust_remote_code=False, attn_implementation=attn_implementation)
    if assets.is_stand_in(name):
        return _load(str(assets.ensure(name)), kw), assets.STAND_INS[name]["describes"]
    path = Path(name)
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"{name} is not a model directory (no config.json); give a save_pretrained directory")
        if not any(path.glob("*.safetensors")) and not (path / "model.safetensors.index.json").exists():
            raise UserError(f"{name} has no .safetensors weights; moviegpt loads weights only as safetensors")
        validate.model_dir_is_data(path)
        return _load(name, kw), f"local directory {name}"
    if hub.reachable():
        return _load(name, kw), f"hub: {name}"
    try:
        return _load(name, dict(kw, local_files_only=True)), f"local hub cache: {name}"
    except UserError:
        raise UserError(
            f"cannot reach the Hugging Face hub to load model '{name}' and it is not in the local "
            f"cache; {hub.OFFLINE_HINT}"
        ) from None


def _load(name: str, kw: dict) -> PreTrainedModel:
    """The model, refused when its weights do not fill it: transformers would start any weight the files lack (a
    config naming more layers than the weights hold) from random values and say so only in a log line."""
    try:
        model, info = AutoModelForCausalLM.from_pretrained(name, output_loading_info=True, **kw)
    except Exception as e:
        raise UserError(f"cannot load model '{name}': {first_line(e)}") from None
    missing = [k for k in info.get("missing_keys", []) if not k.endswith(TIED)]
    if missing:
        raise UserError(
            f"model '{name}': its weights lack {len(missing)} tensor(s) its config.json asks for (first: "
            f"{missing[0]}); the config and the weights come from different models"
        )
    return model


TIED = ("lm_head.weight",)  # an output layer tied to the input embedding is not stored on its own


def load_trained(model_dir: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """A model directory written by `moviegpt train` (or any save_pretrained causal LM), its tokenizer and settings."""
    model, _ = load_pretrained(model_dir)
    tok, _ = load_tokenizer(model_dir)
    settings = read_settings(Path(model_dir))
    rows = model.get_input_embeddings().num_embeddings
    validate.need(
        len(tok) <= rows,
        f"{model_dir}: its tokenizer has {len(tok):,} tokens but the model's embedding only {rows:,} rows; "
        "the two files come from different models (save both with save_pretrained from one run)",
    )
    validate.need(
        settings["max_length"] <= context_length(model),
        f"{model_dir}/{SETTINGS_FILE}: max_length {settings['max_length']} exceeds the model's context of "
        f"{context_length(model)} tokens; fix it, or delete the file to use defaults",
    )
    return model, tok, settings


def read_settings(model_dir: Path) -> dict:
    """moviegpt.json beside a model: each value checked as the same setting given with --set would be."""
    from moviegpt.core.settings import from_dict

    path = model_dir / SETTINGS_FILE
    fix = "fix it, or delete the file to use defaults"
    raw = validate.read_json(path, "model settings", fix) if path.exists() else {}
    validate.need(isinstance(raw, dict), f"{path} must hold a mapping of settings, not {type(raw).__name__}; {fix}")
    known = {k: raw[k] for k in DEFAULT_SETTINGS if k in raw}
    try:
        cfg = from_dict(
            {
                "text": {k: known[k] for k in ("template", "max_length") if k in known},
                "data": {"splits": known["splits"]} if "splits" in known else {},
                **({"seed": known["seed"]} if "seed" in known else {}),
            }
        )
    except UserError as e:
        raise UserError(f"{path}: {e}; {fix}") from None
    checked = {"template": cfg.text.template, "max_length": cfg.text.max_length, "splits": cfg.data.splits}
    return {**raw, **checked, "seed": cfg.seed}


def context_length(model: PreTrainedModel) -> int:
    c = model.config
    return int(getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None) or 1024)


def count_parameters(model, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


# ------------------------------------------------------------------ LoRA (peft)


def lora_targets(model: PreTrainedModel, cfg: Config) -> list[str]:
    if cfg.lora.target_modules:
        return [str(t) for t in cfg.lora.target_modules]
    kind = model.config.model_type
    if kind == "gpt2" or kind in LLAMA_STYLE:
        return LORA_TARGETS["gpt2" if kind == "gpt2" else "llama"]
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

    validate.need(kind in KNOWN, f"no default LoRA targets for a {kind} model; set lora.target_modules")
    return list(KNOWN[kind])


def adapt(model: PreTrainedModel, cfg: Config):
    """train.lora: freeze the model and train low-rank adapters on its projections (peft)."""
    if not cfg.train.lora:
        return model
    from peft import LoraConfig, get_peft_model

    targets = lora_targets(model, cfg)
    names = {n.split(".")[-1] for n, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    validate.need(
        not missing,
        f"lora.target_modules {', '.join(missing)} are not modules of this model ({model.config.model_type})",
    )
    lc = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        fan_in_fan_out=model.config.model_type == "gpt2",
    )  # GPT-2's Conv1D layers
    torch.manual_seed(cfg.seed)  # the adapters' random initialisation is the run's seed's, so a rerun is the same run
    with warnings.catch_warnings():  # peft reads transformers' deprecated `is_gradient_checkpointing` (peft's call,
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return get_peft_model(model, lc)  # not ours): the one library warning a default build would print


class AlignedHead(torch.nn.Linear):
    """An output layer whose matmul runs on its weight padded with zero rows to a multiple of `multiple`; the extra
    logits are dropped, so the output is the same tensor. GPT-2's 50,257 is odd: bf16 rows of that length are not
    16-byte aligned, and GPU matmul kernels that need alignment are passed over (nanoGPT pads to 50,304 for this)."""

    multiple = 64

    def forward(self, x):
        pad = -self.out_features % self.multiple
        logits = torch.nn.functional.linear(x, torch.nn.functional.pad(self.weight, (0, 0, 0, pad)))
        return logits[..., : self.out_features].contiguous()


def align_output(model, multiple: int, gpu: bool | None = None):
    """train.vocab_multiple: make the model's bias-free linear output layer an AlignedHead (same weight, shared
    with the input embedding as before, same state dict); nothing to do when its size is already a multiple, or
    without a GPU (a CPU's matmul gains nothing from it and the padding and slicing copies cost time)."""
    head = model.get_output_embeddings()
    gpu = torch.cuda.is_available() if gpu is None else gpu
    if multiple > 1 and gpu and type(head) is torch.nn.Linear and head.bias is None and head.out_features % multiple:
        head.__class__ = AlignedHead  # the same module and parameter, another forward
        head.multiple = multiple
    return model


def merged(model):
    """The plain transformers model with the adapters folded into its weights (what model/ holds)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


@contextlib.contextmanager
def plain_forward(model):
    """The model's own forward, for held-out scoring (evaluate.film_nll) and sampling (generate.sample), whether or
    not a Trainer has trained it. Under bf16 or fp16, Trainer's accelerate wraps a model's forward in autocast and
    in a copy of every output to fp32 (at every generated token the KV cache too, which makes sampling several
    times slower: benchmarks/sampling.py). Unwrapped, a model is scored and sampled in its own precision (fp32
    weights) before, during and after training alike; Trainer's validation keeps its mixed precision."""
    wrapped = model.__dict__.get("forward")  # an instance attribute: loss_only's and accelerate's wrappers
    if wrapped is None:
        yield model
        return
    model.forward = type(model).forward.__get__(model)
    try:
        yield model
    finally:
        model.forward = wrapped
