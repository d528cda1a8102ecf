"""The generate stage: overviews for titles, new film concepts and completions.

All modes use seeded sampling (temperature, top-p, top-k), stop at the model's EOS and run
prompts in batches, left-padded with an attention mask (decoder-only models continue from the
right edge). Prompts follow the model's own training template.
"""
from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, set_seed

from moviegpt.config import GENERATION_DEFAULTS
from moviegpt.errors import UserError
from moviegpt.model import context_length, load_trained
from moviegpt.tokens import prompt_for

MODES = ("title", "concept", "completion")
MAX_PROMPT_CHARS = 2000  # bounds what one request (CLI or demo page) can ask of the model


def build_prompt(mode: str, template: str, title: str = "", text: str = "", genre: str | None = None) -> str:
    """title: "Movie: <title>\\nOverview:"; concept: "Movie:" (the model invents both); completion: the
    title prompt followed by the start of an overview."""
    if len(title) + len(text) > MAX_PROMPT_CHARS:
        raise UserError(f"the prompt is longer than {MAX_PROMPT_CHARS} characters")
    if mode == "title":
        if not title.strip():
            raise UserError("title mode needs a title")
        return prompt_for(title.strip(), template)
    if mode == "completion":
        if not text.strip():
            raise UserError("completion mode needs the start of an overview (--text)")
        return f"{prompt_for(title.strip(), template)} {text.strip()}"
    if mode == "concept":
        if genre:
            if "{genres}" not in template.split("{title}")[0]:
                raise UserError("this model's template has no {genres} field before the title, so it cannot be "
                                "conditioned on a genre; train with e.g. text.template='Genres: {genres}\\n...'")
            return template.split("{title}")[0].format(genres=genre).rstrip()
        return template.split("{title}")[0].rstrip()
    raise UserError(f"unknown generation mode '{mode}'; modes: {', '.join(MODES)}")


@torch.no_grad()
def sample(model: PreTrainedModel, tok: PreTrainedTokenizerBase, prompts: list[str], num: int = 1,
           max_new_tokens: int = GENERATION_DEFAULTS["max_new_tokens"], seed: int = 0,
           temperature: float = GENERATION_DEFAULTS["temperature"], top_p: float = GENERATION_DEFAULTS["top_p"],
           top_k: int = GENERATION_DEFAULTS["top_k"], batch_size: int = 8) -> list[dict]:
    """`num` continuations per prompt; each result says whether the model stopped with its EOS."""
    prompts = [p for p in prompts for _ in range(num)]
    longest = max(len(tok(p)["input_ids"]) for p in prompts)
    if longest + max_new_tokens > context_length(model):
        raise UserError(f"prompt of {longest} tokens plus max_new_tokens={max_new_tokens} exceeds the model's "
                        f"context of {context_length(model)} tokens")
    set_seed(seed)
    model.eval()
    side, tok.padding_side = tok.padding_side, "left"
    out = []
    try:
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i:i + batch_size]
            enc = tok(chunk, return_tensors="pt", padding=True).to(model.device)
            gen = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k,
                                 max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id)
            for prompt, seq in zip(chunk, gen[:, enc["input_ids"].shape[1]:].tolist()):
                ended = tok.eos_token_id in seq
                seq = seq[:seq.index(tok.eos_token_id)] if ended else seq
                raw = tok.decode(seq, skip_special_tokens=True)  # keeps its leading space (or not) for joining
                out.append({"prompt": prompt, "text": raw.strip(), "raw": raw,
                            "ended_with_eos": ended, "new_tokens": len(seq) + int(ended)})
    finally:
        tok.padding_side = side
    return out


def generate_overviews(model: PreTrainedModel, tok: PreTrainedTokenizerBase, titles: list[str], template: str,
                       num: int = 1, **kw) -> list[dict]:
    """For each title, `num` sampled overviews."""
    out = sample(model, tok, [build_prompt("title", template, title=t) for t in titles], num=num, **kw)
    for r, title in zip(out, [t for t in titles for _ in range(num)]):
        r["title"] = title
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


def generate_for(model_dir: str, titles: list[str] | None = None, mode: str = "title", text: str = "",
                 genre: str | None = None, **kw) -> list[dict]:
    """`moviegpt generate`: load a trained model directory and generate in one of MODES with its own template."""
    model, tok, settings = load_trained(model_dir)
    template = settings["template"]
    if mode == "title":
        return generate_overviews(model, tok, titles or [], template, **kw)
    title = (titles or [""])[0]
    return attach(sample(model, tok, [build_prompt(mode, template, title=title, text=text, genre=genre)], **kw),
                  mode, title, text)
