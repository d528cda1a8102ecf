"""The text-and-tokens stage: template, tokenizer, and the two batching modes.

Every film becomes `template.format(...) + eos`. The EOS is a real, learned target: labels
are -100 only where the attention mask is 0 (padding). `text.eos: false` reproduces the report's films, with
no EOS to learn. The report's recipe set
pad_token = eos and used DataCollatorForLanguageModeling, which masks every token equal
to pad_token_id, so the EOS was never a target and the model never learned to stop.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
from transformers import PreTrainedTokenizerBase

from moviegpt.core import validate
from moviegpt.core.config import CACHE_DIR, TextConfig
from moviegpt.core.errors import UserError, first_line
from moviegpt.data import movies, stream


def template_fields(template: str) -> list[str]:
    return validate.template(template)


def as_text(value) -> str:
    """A cell as template text: lists (genres) joined with ', ', missing values empty, anything else its str."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(as_text(v) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def format_film(row: dict, template: str) -> str:
    """One film as training text (without EOS); every field is formatted as text (see as_text)."""
    try:
        return template.format_map({k: as_text(v) for k, v in row.items()})
    except KeyError as e:
        raise UserError(f"text.template uses field {e} that the data does not have") from None


def texts(df: pd.DataFrame, template: str, eos: str) -> list[str]:
    fields = fields_in(df.columns, template)
    return _as_text({f: df[f].tolist() for f in fields}, fields, template, eos)


def fields_in(columns, template: str) -> list[str]:
    """The template's fields, checked against the data's columns."""
    return validate.template(template, columns)


def _as_text(batch: dict, fields: list[str], template: str, eos: str) -> list[str]:
    """Columns of films -> one training text each, EOS appended."""
    return [format_film(dict(zip(fields, row)), template) + eos for row in zip(*(batch[f] for f in fields))]


def _num_proc(cfg: TextConfig) -> int | None:
    """Worker processes for tokenisation. By default none: a fast (Rust) tokenizer already encodes each batch
    on every core, and more workers were no faster and took more memory (measured: benchmarks/README.md).
    text.num_proc > 1 forks that many `Dataset.map` workers (slow tokenizers, many cores)."""
    return cfg.num_proc if cfg.num_proc and cfg.num_proc > 1 else None


def _cache_file(df: pd.DataFrame, tok: PreTrainedTokenizerBase, what: str) -> str:
    """A datasets cache file keyed by the films, the tokenizer and the settings, so re-preparing is a load."""
    h = hashlib.sha256(f"{movies.content_hash(df)}|{tok.name_or_path}|{len(tok)}|{tok.eos_token}|{what}".encode())
    CACHE_DIR.joinpath("tokens").mkdir(parents=True, exist_ok=True)
    return str(CACHE_DIR / "tokens" / f"{h.hexdigest()[:16]}.arrow")


def tokenize(
    df: pd.DataFrame, tok: PreTrainedTokenizerBase, cfg: TextConfig, batching: str | None = None, desc: str = "films"
) -> datasets.Dataset:
    """Films -> model inputs with labels, in `pad` or `pack` mode (default: cfg.batching).

    The films go into an Arrow table and are formatted, tokenised and packed batch by batch inside
    `Dataset.map`, so no list of every text or token is ever held in Python; the result is a datasets
    cache file keyed by the films, the tokenizer and the settings, so a second prepare is a load."""
    batching = batching or cfg.batching
    fields = fields_in(df.columns, cfg.template)
    ds = datasets.Dataset.from_pandas(df[fields].reset_index(drop=True), preserve_index=False)
    num_proc = _num_proc(cfg)
    # v2: files written before the fix in encode_ids may hold padded "blocks"; workers cut batches differently
    key = f"v2|{batching}|{cfg.template}|{cfg.max_length}|{cfg.block_size}|{num_proc}" + ("" if cfg.eos else "|no-eos")
    key += "|apart" if cfg.keep_apart and batching == "pack" else ""
    return cached_map(
        ds,
        encoder(tok, cfg, batching),
        _cache_file(df, tok, key),
        num_proc=num_proc,
        desc=f"Tokenising {desc} ({batching}, {cfg.max_length if batching == 'pad' else cfg.block_size} tokens)",
    )


def tokenize_stream(films, tok: PreTrainedTokenizerBase, cfg: TextConfig):
    """A stream of films (stream.stream_films) -> a stream of packed blocks, made as training reads them."""
    encode = encoder(tok, cfg, cfg.batching)
    as_int64 = lambda batch: {k: np.asarray(v, dtype=np.int64) for k, v in encode(batch).items()}  # no Arrow cast here
    return films.map(as_int64, batched=True, batch_size=1000, remove_columns=stream.STREAM_COLUMNS)


def encoder(tok: PreTrainedTokenizerBase, cfg: TextConfig, batching: str):
    """The batch function of both modes: films (columns) -> texts -> token ids -> padded rows or packed blocks."""
    fields = template_fields(cfg.template)
    eos = tok.eos_token if cfg.eos else ""  # text.eos=false: the report's films, with no target to stop at
    as_text = lambda batch: _as_text(batch, fields, cfg.template, eos)
    if batching == "pad":

        def encode(batch):
            enc = tok(as_text(batch), truncation=True, max_length=cfg.max_length, padding="max_length")
            enc["labels"] = [
                [t if m else -100 for t, m in zip(ids, mask)]
                for ids, mask in zip(enc["input_ids"], enc["attention_mask"])
            ]
            return dict(enc)

        return encode
    return lambda batch: pack(encode_ids(tok, as_text(batch)), cfg.block_size, cfg.keep_apart)


def encode_ids(tok: PreTrainedTokenizerBase, batch: list[str]) -> list[list[int]]:
    """Token ids of each text, as tok(batch) gives them, without offsets (the fast tokenizer's cheapest call)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None or not hasattr(backend, "encode_batch_fast"):
        return tok(batch)["input_ids"]
    backend.no_truncation()  # the backend keeps the truncation/padding of the last tok(...) call (pad mode sets both)
    backend.no_padding()
    return [e.ids for e in backend.encode_batch_fast(batch, add_special_tokens=True)]


def pack(ids: list[list[int]], block_size: int, keep_apart: bool = False) -> dict:
    """transformers' run_clm.py `group_texts` in numpy: concatenate the films (each ends in EOS) and cut
    into full blocks; the last partial block of each map batch (1,000 films) is dropped, as in run_clm.

    keep_apart (text.keep_apart): the same blocks, but each film attends only to itself. Position ids restart at
    each film (and at each block), and no attention mask is given, so the model builds a block-diagonal mask from
    the position ids, as it does for transformers' DataCollatorWithFlattening. A film's first token is no target:
    nothing of its own film precedes it (DataCollatorWithFlattening does the same)."""
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=sum(map(len, ids)))
    n = len(flat) // block_size * block_size
    blocks = flat[:n].reshape(-1, block_size)
    if not keep_apart:
        return {"input_ids": blocks, "attention_mask": np.ones_like(blocks, dtype=np.int8), "labels": blocks}
    starts = np.zeros(len(flat), dtype=bool)
    starts[np.cumsum([0, *map(len, ids)])[:-1]] = True  # each film's first token
    starts = starts[:n].reshape(-1, block_size)
    segment_start = starts.copy()
    segment_start[:, 0] = True  # a film cut by a block boundary goes on as a new sequence in the next block
    index = np.broadcast_to(np.arange(block_size), blocks.shape)
    first = np.maximum.accumulate(np.where(segment_start, index, 0), axis=1)
    labels = np.where(starts, -100, blocks)
    return {"input_ids": blocks, "position_ids": (index - first).astype(np.int32), "labels": labels}


def scored(df: pd.DataFrame, tok: PreTrainedTokenizerBase, template: str, max_length: int, desc: str = "films"):
    """Held-out films as they are scored: one film per row, padded to max_length, always ended with the EOS, and
    each token labelled with its type (token_type: TOKEN_TYPES, 0 on padding) so a loss can be split into the
    template's own words, the title, the overview, other fields and the EOS."""
    fields = fields_in(df.columns, template)
    ds = datasets.Dataset.from_pandas(df[fields].reset_index(drop=True), preserve_index=False)
    key = f"scored-v1|{template}|{max_length}"

    def encode(batch):
        rows = [dict(zip(fields, row)) for row in zip(*(batch[f] for f in fields))]
        spans = [typed_text(row, template) for row in rows]
        texts = [text + tok.eos_token for text, _ in spans]
        enc = tok(texts, truncation=True, max_length=max_length, padding="max_length", return_offsets_mapping=True)
        enc["labels"] = [
            [t if m else -100 for t, m in zip(ids, mask)] for ids, mask in zip(enc["input_ids"], enc["attention_mask"])
        ]
        enc["token_type"] = [
            [_type_at(chars, len(text), end) if m else 0 for (_, end), m in zip(offsets, mask)]
            for (text, chars), offsets, mask in zip(spans, enc.pop("offset_mapping"), enc["attention_mask"])
        ]
        return dict(enc)

    return cached_map(
        ds,
        encode,
        _cache_file(df, tok, key),
        desc=f"Tokenising {desc} (one film a row, {max_length} tokens, by token type)",
    )


def cached_map(ds: datasets.Dataset, fn, cache: str, num_proc: int | None = None, desc: str = "") -> datasets.Dataset:
    """ds.map(fn) in batches of 1,000 films into a datasets cache file, loaded when it is there. A cache file that
    cannot be read (cut short by a kill or a full disk, or not one at all) is set aside with one line and made again:
    a damaged cache never blocks every later prepare."""
    kw = dict(batched=True, batch_size=1000, num_proc=num_proc, remove_columns=ds.column_names, desc=desc)
    path = Path(cache)
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise OSError("not a regular file")
        return ds.map(fn, load_from_cache_file=True, cache_file_name=cache, **kw)
    except Exception as e:  # pyarrow and datasets raise their own types for an unreadable file
        if not path.exists() and not path.is_symlink():
            raise
        import sys

        aside = path.with_name(path.name + ".damaged")
        path.replace(aside)
        print(
            f"moviegpt: set aside the damaged tokens cache {path.name} ({first_line(e)}); tokenising again",
            file=sys.stderr,
        )
        return ds.map(fn, load_from_cache_file=False, cache_file_name=cache, **kw)


TOKEN_TYPES = ("template", "title", "overview", "field", "eos")  # token_type 1..5; 0: padding


def typed_text(row: dict, template: str) -> tuple[str, np.ndarray]:
    """A film's text (format_film's) and the type of each of its characters (1-based index into TOKEN_TYPES)."""
    import string

    parts, kinds = [], []
    formatter = string.Formatter()
    for literal, name, spec, conversion in formatter.parse(template):
        parts.append(literal)
        kinds.append(np.full(len(literal), 1, dtype=np.int8))
        if name is None:
            continue
        value = formatter.format_field(formatter.convert_field(as_text(row[name]), conversion), spec or "")
        parts.append(value)
        kind = 1 + TOKEN_TYPES.index(name if name in ("title", "overview") else "field")
        kinds.append(np.full(len(value), kind, dtype=np.int8))
    text = "".join(parts)
    if text != format_film(row, template):  # the same text as training's, or the split would mislabel
        raise UserError(f"text.template {template!r} cannot be split by token type")
    return text, np.concatenate(kinds) if kinds else np.zeros(0, dtype=np.int8)


def _type_at(chars: np.ndarray, text_length: int, end: int) -> int:
    """A token's type: that of its last character (' Avatar' is title, though its space is the template's); a token
    past the film's text is its EOS."""
    if end > text_length or (end == 0 and text_length == 0):
        return 1 + TOKEN_TYPES.index("eos")
    return int(chars[max(end - 1, 0)]) if len(chars) else 1


def token_lengths(df: pd.DataFrame, tok: PreTrainedTokenizerBase, template: str) -> np.ndarray:
    """Tokens per film, EOS included, without truncation."""
    return np.array([len(x) for x in tok(texts(df, template, tok.eos_token))["input_ids"]])


def batching_stats(lengths: np.ndarray, max_length: int, block_size: int) -> dict:
    """What each batching mode does with the same films: tokens trained on, padding, truncation."""
    lengths = np.asarray(lengths)
    total = int(lengths.sum())
    kept_pad = int(np.minimum(lengths, max_length).sum())
    slots = len(lengths) * max_length
    blocks = total // block_size
    return {
        "films": len(lengths),
        "tokens": total,
        "pad": {
            "slots": slots,
            "real_tokens": kept_pad,
            "padding_tokens": slots - kept_pad,
            "padding_share": (slots - kept_pad) / slots if slots else 0.0,
            "useful_share": kept_pad / slots if slots else 0.0,
            "truncated_films": int((lengths > max_length).sum()),
            "truncated_tokens": total - kept_pad,
        },
        "pack": {
            "slots": blocks * block_size,
            "real_tokens": blocks * block_size,
            "padding_tokens": 0,
            "padding_share": 0.0,
            "useful_share": 1.0 if blocks else 0.0,
            "dropped_tail_tokens": total - blocks * block_size,
        },
    }
