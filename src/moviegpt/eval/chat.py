"""A fair base model: a chat-tuned model (the offline stand-in, SmolLM2-135M-Instruct) scored and prompted in its
own chat format as well as in the training template.

The training template ("Movie: {title}\\nOverview: {overview}") is plain text, which an Instruct model was never
tuned to continue. Here the same test films are written as a conversation (the tokenizer's own chat template): the
user asks for an overview of the title (PROMPT), and the assistant's turn is the real overview followed by the
end-of-turn token. Only the overview and that end token are scored, so the overview's perplexity in each format
compares token for token (up to the overview's first token, which in the template follows a space). The model is
also asked for an overview of each unseen title in this format, with the same seeded sampling as in the template.
A model whose tokenizer has no chat template (GPT-2) has nothing to measure here.
"""

from __future__ import annotations

import datasets
import numpy as np
import pandas as pd

from moviegpt.data.tokens import TOKEN_TYPES

PROMPT = "Write a short overview of the film {title}."  # the user's turn; the assistant's is the overview
TEMPLATE, OVERVIEW, EOS = (1 + TOKEN_TYPES.index(k) for k in ("template", "overview", "eos"))


def available(tok) -> bool:
    return bool(getattr(tok, "chat_template", None))


def prompt(tok, title: str) -> str:
    """The conversation up to the assistant's answer, as the tokenizer's chat template writes it."""
    messages = [{"role": "user", "content": PROMPT.format(title=title)}]
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def scored(films: pd.DataFrame, tok, max_length: int) -> datasets.Dataset:
    """Each film as a conversation: the prompt (not scored), the real overview and the end-of-turn token (scored),
    with each token's type, in the layout evaluate.film_nll reads."""
    rows = {"input_ids": [], "attention_mask": [], "labels": [], "token_type": []}
    for title, overview in zip(films["title"], films["overview"]):
        head = prompt(tok, str(title))
        text = head + str(overview) + tok.eos_token
        chars = np.full(len(text), OVERVIEW, dtype=np.int8)
        chars[: len(head)] = TEMPLATE
        chars[len(text) - len(tok.eos_token) :] = EOS
        enc = tok(
            text,
            truncation=True,
            max_length=max_length,
            padding="max_length",
            return_offsets_mapping=True,
            add_special_tokens=False,
        )
        kinds = [
            int(chars[max(end - 1, 0)]) if m else 0 for (_, end), m in zip(enc["offset_mapping"], enc["attention_mask"])
        ]
        rows["input_ids"].append(enc["input_ids"])
        rows["attention_mask"].append(enc["attention_mask"])
        rows["labels"].append([t if k in (OVERVIEW, EOS) else -100 for t, k in zip(enc["input_ids"], kinds)])
        rows["token_type"].append(kinds)
    return datasets.Dataset.from_dict(rows)
