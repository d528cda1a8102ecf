"""The generate stage: overviews for titles, with seeded sampling and batched left-padded prompts."""
from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, set_seed

from moviegpt.config import GENERATION_DEFAULTS
from moviegpt.errors import UserError
from moviegpt.model import context_length, load_trained
from moviegpt.tokens import prompt_for


@torch.no_grad()
def generate_overviews(model: PreTrainedModel, tok: PreTrainedTokenizerBase, titles: list[str], template: str,
                       num: int = 1, max_new_tokens: int = GENERATION_DEFAULTS["max_new_tokens"], seed: int = 0,
                       temperature: float = GENERATION_DEFAULTS["temperature"], top_p: float = GENERATION_DEFAULTS["top_p"],
                       top_k: int = GENERATION_DEFAULTS["top_k"], batch_size: int = 8) -> list[dict]:
    """For each title, `num` sampled overviews; each result says whether the model stopped with EOS."""
    titles = [t for t in titles for _ in range(num)]
    prompts = [prompt_for(t, template) for t in titles]
    longest = max(len(tok(p)["input_ids"]) for p in prompts)
    if longest + max_new_tokens > context_length(model):
        raise UserError(f"prompt of {longest} tokens plus max_new_tokens={max_new_tokens} exceeds the model's "
                        f"context of {context_length(model)} tokens")
    set_seed(seed)
    model.eval()
    side, tok.padding_side = tok.padding_side, "left"  # decoder-only models continue from the right edge
    out = []
    try:
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i:i + batch_size]
            enc = tok(chunk, return_tensors="pt", padding=True).to(model.device)
            gen = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k,
                                 max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id)
            for title, prompt, seq in zip(titles[i:i + batch_size], chunk, gen[:, enc["input_ids"].shape[1]:].tolist()):
                ended = tok.eos_token_id in seq
                seq = seq[:seq.index(tok.eos_token_id)] if ended else seq
                out.append({"title": title, "prompt": prompt, "text": tok.decode(seq, skip_special_tokens=True).strip(),
                            "ended_with_eos": ended, "new_tokens": len(seq) + int(ended)})
    finally:
        tok.padding_side = side
    return out


def generate_for(model_dir: str, titles: list[str], **kw) -> list[dict]:
    """`moviegpt generate`: load a trained model directory and write overviews with its own template."""
    model, tok, settings = load_trained(model_dir)
    return generate_overviews(model, tok, titles, settings["template"], **kw)
