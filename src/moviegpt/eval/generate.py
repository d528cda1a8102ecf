"""The generate stage: overviews for titles, new film concepts and completions.

All modes use seeded sampling (temperature, top-p, top-k, optional repetition controls), stop at the
model's EOS and run prompts in batches, left-padded with an attention mask (decoder-only models continue
from the right edge). Prompts follow the model's own training template, and every field that template
names before the overview is filled (the title, and e.g. {genres} from --genre) or asked for by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, set_seed

from moviegpt.core import validate
from moviegpt.core.artifacts import CUT
from moviegpt.core.config import GENERATION_DEFAULTS
from moviegpt.core.errors import UserError
from moviegpt.data.tokens import as_text
from moviegpt.model.causal_lm import context_length, load_trained, plain_forward

MODES = ("title", "concept", "completion")
MAX_PROMPT_CHARS = 2000  # bounds what one request (CLI or demo page) can ask of the model
FLAGS = {"genres": "--genre"}  # the command-line flag that fills a template field (others: --field NAME=VALUE)


@dataclass
class Sampling:
    """How to sample; checked once (validate), used by the CLI, the demo page and the evaluation."""

    temperature: float = GENERATION_DEFAULTS["temperature"]
    top_p: float = GENERATION_DEFAULTS["top_p"]
    top_k: int = GENERATION_DEFAULTS["top_k"]
    max_new_tokens: int = GENERATION_DEFAULTS["max_new_tokens"]
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    seed: int = 0
    max_time: float = 0.0  # seconds after which generation stops (generate's max_time); 0: no limit

    def __post_init__(self):
        n = validate.number
        self.temperature = n("temperature", self.temperature, lo=0.01, hi=10)
        self.top_p = n("top_p", self.top_p, lo=0.01, hi=1)
        self.top_k = n("top_k", self.top_k, integer=True, lo=0, hi=100_000)
        self.max_new_tokens = n("max_new_tokens", self.max_new_tokens, integer=True, lo=1, hi=4096)
        self.repetition_penalty = n("repetition_penalty", self.repetition_penalty, lo=1.0, hi=10)
        self.no_repeat_ngram_size = n("no_repeat_ngram_size", self.no_repeat_ngram_size, integer=True, lo=0, hi=20)
        self.seed = n("seed", self.seed, integer=True, lo=0, hi=2**32 - 1)
        self.max_time = n("max_time", self.max_time, lo=0, hi=1e6)

    def replace(self, **kw) -> Sampling:
        return dataclasses.replace(self, **kw)


def _head(template: str, upto: str) -> str:
    return template.split("{" + upto)[0]


def fill(text: str, template_fields: dict) -> str:
    """Fill a template fragment's fields; a field the caller did not give is asked for by its flag."""
    names = validate.fields_of(text)
    missing = [f for f in names if f not in ("title", "overview") and f not in template_fields]
    if missing:
        ask = ", ".join(f"{{{f}}} ({FLAGS.get(f, f'--field {f}=VALUE')})" for f in missing)
        raise UserError(f"this model's template also needs {ask} before the overview")
    return text.format_map({k: as_text(v) for k, v in template_fields.items()})


def build_prompt(mode: str, template: str, title: str = "", text: str = "", fields: dict | None = None) -> str:
    """title: "Movie: <title>\\nOverview:"; concept: "Movie:" (the model invents both); completion: the
    title prompt followed by the start of an overview."""
    fields = {k: v for k, v in (fields or {}).items() if k not in ("title", "overview") and as_text(v) != ""}
    if len(title) + len(text) + sum(len(as_text(v)) for v in fields.values()) > MAX_PROMPT_CHARS:
        raise UserError(f"the prompt is longer than {MAX_PROMPT_CHARS} characters")
    extra = [f for f in fields if f not in validate.fields_of(template)]
    if extra:
        raise UserError(
            f"this model's template has no {{{extra[0]}}} field to fill (its template: {template!r}); "
            "train with e.g. text.template='Genres: {genres}\\n...' to condition on genres"
        )
    if mode == "title":
        if not title.strip():
            raise UserError("title mode needs a title")
        return fill(_head(template, "overview").rstrip(), {**fields, "title": title.strip()})
    if mode == "completion":
        if not text.strip():
            raise UserError("completion mode needs the start of an overview (--text)")
        return f"{fill(_head(template, 'overview').rstrip(), {**fields, 'title': title.strip()})} {text.strip()}"
    if mode == "concept":
        return fill(_head(template, "title").rstrip(), fields)
    raise UserError(f"unknown generation mode '{mode}'; modes: {', '.join(MODES)}")


@torch.no_grad()
def sample(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    prompts: list[str],
    num: int = 1,
    how: Sampling | None = None,
    batch_size: int = 8,
) -> list[dict]:
    """`num` continuations per prompt; each result says whether the model stopped with its EOS."""
    how = how or Sampling()
    prompts = [p for p in prompts for _ in range(num)]
    longest = max(len(tok(p)["input_ids"]) for p in prompts)
    if longest + how.max_new_tokens > context_length(model):
        raise UserError(
            f"prompt of {longest} tokens plus max_new_tokens={how.max_new_tokens} exceeds the model's "
            f"context of {context_length(model)} tokens"
        )
    set_seed(how.seed)
    model.eval()
    side, tok.padding_side = tok.padding_side, "left"
    out = []
    try:
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i : i + batch_size]
            enc = tok(chunk, return_tensors="pt", padding=True).to(model.device)
            with plain_forward(model):  # not Trainer's mixed-precision wrapper, when sampling during training
                gen = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=how.temperature,
                    top_p=how.top_p,
                    top_k=how.top_k,
                    max_new_tokens=how.max_new_tokens,
                    repetition_penalty=how.repetition_penalty,
                    no_repeat_ngram_size=how.no_repeat_ngram_size,
                    max_time=how.max_time or None,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
            for prompt, seq in zip(chunk, gen[:, enc["input_ids"].shape[1] :].tolist()):
                ended = tok.eos_token_id in seq
                seq = seq[: seq.index(tok.eos_token_id)] if ended else seq
                raw = tok.decode(seq, skip_special_tokens=True)  # keeps its leading space (or not) for joining
                out.append(
                    {
                        "prompt": prompt,
                        "text": raw.strip(),
                        "raw": raw,
                        "ended_with_eos": ended,
                        "new_tokens": len(seq) + int(ended),
                    }
                )
    finally:
        tok.padding_side = side
    return out


def shown(result: dict, key: str = "text") -> str:
    """A generated text as the book and the CLI show it: CUT marks one the model did not end."""
    return result[key] + ("" if result["ended_with_eos"] else CUT)


def generate_overviews(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    films: list[dict],
    template: str,
    num: int = 1,
    how: Sampling | None = None,
    batch_size: int = 8,
) -> list[dict]:
    """For each film (a title and whatever other fields the template names), `num` sampled overviews."""
    names = validate.fields_of(template)
    prompts = [
        build_prompt(
            "title", template, title=str(f.get("title", "")), fields={k: v for k, v in f.items() if k in names}
        )
        for f in films
    ]
    out = sample(model, tok, prompts, num=num, how=how, batch_size=batch_size)
    for r, film in zip(out, [f for f in films for _ in range(num)]):
        r["title"] = str(film.get("title", ""))
    return out


def split_concept(text: str) -> tuple[str, str]:
    """A concept continuation (" <title>\\nOverview: <overview>") into title and overview."""
    title, _, rest = text.partition("\n")
    return title.strip(), rest.partition(":")[2].strip() if ":" in rest else rest.strip()


def attach(out: list[dict], mode: str, title: str = "", text: str = "") -> list[dict]:
    """Give each result its film: the invented title and overview (concept) or the prompt's (title, completion)."""
    for r in out:
        if mode == "concept":
            r["title"], r["overview"] = split_concept(r["text"])
        else:
            r["title"], r["overview"] = title, f"{text.strip()}{r['raw']}".strip()
    return out


def is_title(text: str) -> bool:
    """Whether an invented "title" reads as a film title at all: it has a letter, is not a number or a year, and
    holds none of the characters of code or markup ({, }, <, >, ;, =, backslash). "2018" and "return {" are not."""
    t = text.strip()
    return 0 < len(t) <= 200 and any(c.isalpha() for c in t) and not any(c in t for c in "{}<>;=\\")


def concepts(
    model,
    tok,
    template: str,
    num: int,
    how: Sampling,
    known: set[str] | None = None,
    fields: dict | None = None,
    tries: int = 3,
) -> list[dict]:
    """`num` invented films. Those whose title already exists in `known` (casefolded) are sampled again, in one
    batch per round, up to `tries` draws in all; each result records whether its first draw was known, whether
    its final one is, whether each reads as a title at all (is_title), and how many draws it took."""
    prompt = build_prompt("concept", template, fields=fields)
    known = known or set()
    out = attach(sample(model, tok, [prompt], num=num, how=how), "concept")
    for r in out:
        r["first_title_known"] = r["title_known"] = r["title"].casefold() in known
        r["first_is_title"] = r["is_title"] = is_title(r["title"])
        r["draws"] = 1
    for attempt in range(1, tries):
        again = [r for r in out if r["title_known"]]
        if not again:
            break
        redrawn = attach(
            sample(model, tok, [prompt], num=len(again), how=how.replace(seed=how.seed + attempt)), "concept"
        )
        for r, new in zip(again, redrawn):
            r.update(
                new, title_known=new["title"].casefold() in known, is_title=is_title(new["title"]), draws=attempt + 1
            )
    return out


def check_fields(template: str, fields: dict) -> None:
    """Every --field and --genre names a field of the model's template other than the title and the overview (which
    have options of their own): one the template lacks would be dropped without a word."""
    for name in fields:
        if name in ("title", "overview"):
            raise UserError(f"--field {name}=... is not how to give the {name}; use --title or --text")
        if name not in validate.fields_of(template):
            flag = FLAGS.get(name, f"--field {name}")
            raise UserError(
                f"{flag}: this model's template has no {{{name}}} field to fill (its template: {template!r}); "
                "train with e.g. text.template='Genres: {genres}\\n...' to condition on genres"
            )


def generate_for(
    model_dir: str,
    titles: list[str] | None = None,
    mode: str = "title",
    text: str = "",
    fields: dict | None = None,
    num: int = 1,
    how: Sampling | None = None,
    known: set[str] | None = None,
) -> list[dict]:
    """`moviegpt generate`: load a trained model directory and generate in one of MODES with its own template."""
    model, tok, settings = load_trained(model_dir)
    template, how = settings["template"], how or Sampling()
    check_fields(template, fields or {})
    if mode == "title":
        return generate_overviews(
            model, tok, [{**(fields or {}), "title": t} for t in titles or [""]], template, num, how
        )
    if mode == "concept":
        return concepts(model, tok, template, num, how, known, fields)
    title = (titles or [""])[0]
    prompt = build_prompt(mode, template, title=title, text=text, fields=fields)
    return attach(sample(model, tok, [prompt], num=num, how=how), mode, title, text)
