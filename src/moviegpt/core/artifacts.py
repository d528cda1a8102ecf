"""The run's artifacts as typed records: what train writes and evaluate, report, the CLI and the book read.

    config.yaml `resolved`  RunInfo (with DataCounts, Plan, Parent)
    base_eval.json          HeldOut
    summary.json            Summary
    eval.json               Evaluation (with ModelPerplexity, Quality, Example, ConceptCheck, Neighbour)
    score.json              Score: the run scored as every run the book compares is (moviegpt.eval.score)

Records are dataclasses; `from_dict` reads one back from its JSON form (nested records, dicts, lists;
unknown keys ignored, so a newer file still loads) and `to_dict` writes it. Where the files live and how
a run directory lives and dies: moviegpt.core.rundir.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field

SPLITS = ("train", "validation", "test")
CUT = " […]"  # marks a generated text that reached the token limit before the model ended it
EVAL_VERSION = 6  # eval.json's layout; a file of another version, or made with other settings, is recomputed
EVAL_TITLES = 24  # unseen test titles generated for: enough for an interval on each generation measure
EVAL_CONCEPTS = 8  # invented films per model (each may take up to three draws)
EVAL_BATCH = 32  # titles generated at once: decoding reads every weight once per token, so a CPU pays per batch,
# not per title (one batch of 32 instead of four of 8); the sampled texts depend on it


def describe_machine(hw: dict) -> str:
    """One line naming a machine (a run's `hardware` record): the GPU if there was one, else the CPU and its ISA."""
    if hw.get("gpu"):
        return hw["gpu"]
    isa = hw.get("cpu_capability")
    bf16 = "" if "cpu_bf16" not in hw else (", bf16" if hw["cpu_bf16"] else ", no bf16")
    return f"{hw['cpu']} ({hw.get('cpu_cores', '?')} cores{', ' + isa if isa else ''}{bf16})"


def eval_settings(n_titles: int = EVAL_TITLES, max_new_tokens: int = 80, seed: int = 0, k: int = 5) -> dict:
    """What an eval.json was made with; RunDir.evaluation and evaluate_run compare it."""
    return {
        "n_titles": n_titles,
        "n_concepts": EVAL_CONCEPTS,
        "batch": EVAL_BATCH,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "k": k,
        "version": EVAL_VERSION,
    }


@dataclass
class SplitCount:
    available: int | None = None  # None: a streamed split has no known size
    used: int | None = None


@dataclass
class DataCounts:
    rows_in: int | None = None  # None for a stream
    rows_out: int | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    splits: dict[str, SplitCount] = field(default_factory=dict)
    streaming: bool = False

    def used(self, split: str) -> int | None:
        return self.splits[split].used if split in self.splits else None


@dataclass
class HeldOut:
    loss: float
    perplexity: float
    tokens: int
    films: int
    film_nll: list[float] | None = None  # per test film: summed NLL and target tokens (for breakdowns, eval.json)
    film_tokens: list[int] | None = None
    type_nll: dict[str, list[float]] | None = None  # per film, split by token type (tokens.TOKEN_TYPES): they add
    type_tokens: dict[str, list[int]] | None = None  # up to film_nll and film_tokens
    films_hash: str | None = None  # movies.content_hash of the films scored: a later evaluation of other films
    # (the data changed) does not reuse these numbers


@dataclass
class Plan:
    """What moviegpt.train.plan decided for train.budget_minutes on one machine, before the first step, and why."""

    key: str
    machine: str
    budget_minutes: float
    step_seconds: float  # one optimizer step, as estimated
    tokens_per_second: float
    max_steps: int
    eval_steps: int
    save_steps: int
    planned_seconds: float  # the estimate, the steps, the validation passes and samples: what the run should take
    reason: str
    estimate_seconds: float = 0.0  # what measuring the step cost, before the first step
    eval_rows: int | None = None  # validation blocks per pass
    eval_seconds: float = 0.0  # one validation pass, as estimated
    sample_seconds: float = 0.0  # train.samples: the most one validation pass's samples may take; 0: no limit
    warmup_steps: int = 0


@dataclass
class Parent:
    """The finished run a `--from` run continued."""

    run: str
    path: str
    final_perplexity: float


@dataclass
class RunInfo:
    """config.yaml's `resolved`: what actually ran."""

    model: str
    model_choice: str
    parameters: int
    tokenizer: str
    vocab_size: int
    context_length: int
    precision: str
    precision_note: str
    data: DataCounts
    train_examples: int | None
    hardware: dict
    versions: dict
    base_model: str | None = None  # the hub id of the pretrained weights, when there is one
    trainable_parameters: int | None = None
    plan: Plan | None = None
    parent: Parent | None = None
    code: dict | None = None  # code_version() of the code that made the run (runs made before it: unknown)


@dataclass
class Summary:
    run: str
    profile: str
    model: str
    precision: str
    base: HeldOut
    final: HeldOut
    perplexity_ratio: float
    last_eval_loss: float | None
    data: DataCounts
    train_examples: int | None
    steps: int
    epochs: float
    tokens_seen: int
    train_runtime_s: float
    tokens_per_second: float | None
    wall_time_s: float
    peak_memory_mb: float | None = None


@dataclass
class Group:
    """Token-weighted perplexity of a group of test films (a genre, a length bucket)."""

    group: str
    films: int
    tokens: int
    perplexity: float


@dataclass
class ModelPerplexity:
    loss: float
    perplexity: float
    tokens: int
    by_genre: list[Group]
    by_length: list[Group]


@dataclass
class Quality:
    """What moviegpt.eval.metrics measures over a set of texts (generated, or the real overviews)."""

    n: int
    eos_share: float
    mean_words: float
    words: list[int]
    distinct_1: float
    distinct_2: float
    repeated_3gram_rate: float
    longest_copy_words: float
    copy_share: float
    repeated_3grams: list[float] = field(default_factory=list)  # per text, for intervals (moviegpt.core.stats)
    copy_words: list[int] = field(default_factory=list)


@dataclass
class Sample:
    text: str
    ended_with_eos: bool


@dataclass
class Example:
    """One unseen test title: its real overview and what each model wrote for it."""

    title: str
    real: str
    generated: dict[str, Sample]


@dataclass
class ConceptCheck:
    """Invented films of one model: how many titles were new (not in the data) at the first draw, and after
    a known title is drawn again (moviegpt.eval.generate.concepts)."""

    n: int
    new_first: float  # of the draws that read as titles (eval.generate.is_title): the share not in the data
    new_final: float
    titles: list[str]
    titles_first: int = 0  # how many first draws read as titles (the share above is over these)
    titles_final: int = 0


@dataclass
class ChatCheck:
    """A chat-tuned base model in its own chat format (moviegpt.eval.chat): the test films' overviews scored as its
    answer to `prompt` (the overview and end-of-turn tokens by type), and its answers for the unseen titles."""

    prompt: str
    held_out: HeldOut
    generated: list[Sample]
    quality: Quality


@dataclass
class Neighbour:
    film: str
    rank: int
    neighbour: str
    similarity: float


@dataclass
class Evaluation:
    """eval.json: base against fine-tuned on the run's test films (moviegpt.eval.evaluate.evaluate_run)."""

    version: int
    run: str
    settings: dict
    test_films: int
    k: int
    perplexity: dict[str, ModelPerplexity]
    generation: dict[str, Quality]  # "real", "base", "fine-tuned"
    examples: list[Example]
    recommendation: dict[str, float]  # genre overlap@k: "random", "tf-idf", "base", "fine-tuned"
    concepts: dict[str, ConceptCheck]
    neighbours: list[Neighbour]
    faithfulness: dict[str, list[float]] = field(default_factory=dict)  # per title (moviegpt.eval.similarity)
    similarity_model: str = ""
    validation: dict[str, HeldOut] = field(default_factory=dict)  # the validation films, each scored on its own
    # (the fine-tuned model's)
    measures: dict[str, str] = field(default_factory=dict)  # the evaluate modules that computed it: name -> version
    chat: ChatCheck | None = None  # the base model in its chat format, where its tokenizer has one
    films_hash: str = ""  # movies.content_hash of the test films it scored


@dataclass
class Score:
    """score.json: one run's model on the films and settings every compared run is scored with
    (moviegpt.eval.score): the held-out films each on its own, with the part of each film's NLL that is its
    end-of-text target, and seeded generations for the first test titles."""

    run: str
    settings: dict  # what makes two scores comparable: template, max_length, films, titles, sampling
    held_out: HeldOut
    eos_nll: list[float]  # per film: the NLL of its end-of-text target (0 where the film was cut before it)
    eos_targets: list[int]  # per film: 1 where the end-of-text token was a target, else 0
    stopped: list[bool]  # per generated title: the model ended the overview itself
    words: list[int]  # per generated title: words written
    generated: list[str] = field(default_factory=list)
    validation: HeldOut | None = None  # the validation films, each on its own, by token type: where the run sits on
    # the reference study's validation curves (moviegpt.book.results.placement)


# ------------------------------------------------------------------ records <-> JSON


def _convert(tp, value, where: str):
    if value is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if inner[0] is int and isinstance(value, str):  # runs made before this module stored "streamed" here
            return None
        return _convert(inner[0], value, where)
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a mapping")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list")
        return [_convert(args[0], v, where) for v in value]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ValueError(f"{where} must be {tp.__name__}, not {type(value).__name__}")
    return value


def from_dict(cls, d: dict, where: str = ""):
    """A record from its JSON form: nested records, dicts and lists converted; unknown keys ignored."""
    if not isinstance(d, dict):
        raise ValueError(f"{where or cls.__name__} must be a mapping")
    hints = typing.get_type_hints(cls)
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in d:
            kw[f.name] = _convert(hints[f.name], d[f.name], f"{where}.{f.name}" if where else f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where or cls.__name__} has no '{f.name}'")
    return cls(**kw)


def to_dict(record) -> dict:
    return dataclasses.asdict(record)


def code_version() -> dict:
    """The code that is running: the package's version and a hash of its source files (every .py and shipped
    profile under moviegpt/, by path and content), so two runs made by different code can be told apart even
    at one version number."""
    import hashlib
    from importlib import metadata
    from pathlib import Path

    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted([*root.rglob("*.py"), *root.rglob("*.yaml")]):
        if "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    try:
        version = metadata.version("moviegpt")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"version": version, "source": h.hexdigest()[:12]}
