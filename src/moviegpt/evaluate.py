"""The evaluate stage: held-out loss and perplexity, token-weighted.

Perplexity is exp(total NLL / total target tokens) over the whole split, the same for
the base and the fine-tuned model, so the two compare. (The mean of per-batch perplexities,
or of per-batch mean losses when batches hold different numbers of tokens, would not.)
Each film is scored on its own (pad mode), so the number does not depend on how training batched.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from moviegpt import data, recommend, tokens
from moviegpt.config import DataConfig, TextConfig, load_run_config
from moviegpt.errors import UserError
from moviegpt.generate import generate_overviews
from moviegpt.model import load_model, load_trained


@torch.no_grad()
def token_nll(model: PreTrainedModel, ds: datasets.Dataset, batch_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-film summed NLL and target-token counts for a pad-mode dataset (labels -100 on padding)."""
    model.eval()
    device = next(model.parameters()).device
    nll, counts = [], []
    for i in range(0, len(ds), batch_size):
        batch = ds[i:i + batch_size]
        mask = torch.tensor(batch["attention_mask"])
        width = int(mask.sum(1).max())  # drop columns that are padding in every row of this batch
        ids = torch.tensor(batch["input_ids"])[:, :width].to(device)
        labels = torch.tensor(batch["labels"])[:, :width].to(device)
        logits = model(input_ids=ids, attention_mask=mask[:, :width].to(device)).logits.float()
        target = labels[:, 1:]
        loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), target, ignore_index=-100, reduction="none")
        nll.append(loss.sum(1).cpu())
        counts.append((target != -100).sum(1).cpu())
    return torch.cat(nll).double(), torch.cat(counts)


def perplexity(model: PreTrainedModel, ds: datasets.Dataset, batch_size: int = 8) -> dict:
    nll, n = token_nll(model, ds, batch_size)
    loss = float(nll.sum() / n.sum())
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": int(n.sum()), "films": len(ds)}


def evaluate_model(model_dir: str, source: str = "bundled", split: str = "test", max_rows: int | None = None,
                   batch_size: int = 8) -> dict:
    """`moviegpt evaluate`: a trained model on one split of any data source (split by the same film hashes)."""
    model, tok, s = load_trained(model_dir)
    splits = data.load_splits(DataConfig(source=source, splits=s["splits"], max_train_rows=max_rows,
                                         max_eval_rows=max_rows), s["seed"])
    text = TextConfig(template=s["template"], max_length=s["max_length"])
    ds = tokens.tokenize(splits[split], tok, text, batching="pad", desc=f"{split} films")
    return {"model": str(model_dir), "data": source, "split": split, **perplexity(model, ds, batch_size)}


# ---------------------------------------------------------------- generation quality (plain, tested functions)

def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def ngrams(ws: list[str], n: int) -> list[tuple]:
    return [tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)]


def distinct_n(texts: list[str], n: int) -> float:
    """Unique word n-grams over all n-grams, across the texts (Li et al., 2016); 0 when there are none."""
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_rate(text: str, n: int = 3) -> float:
    """Share of a text's word n-grams that repeat an earlier one in the same text (degenerate loops score high)."""
    grams = ngrams(words(text), n)
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


class CopyIndex:
    """Longest run of consecutive words that a text shares with any training overview (memorisation shows)."""

    def __init__(self, corpus: list[str], n: int = 3):
        self.docs = [words(t) for t in corpus]
        self.n = n
        self.index: dict[tuple, set[int]] = {}
        for i, ws in enumerate(self.docs):
            for g in ngrams(ws, n):
                self.index.setdefault(g, set()).add(i)

    def longest(self, text: str) -> int:
        ws = words(text)
        candidates = set().union(*(self.index.get(g, set()) for g in ngrams(ws, self.n))) if len(ws) >= self.n else set()
        best = 0  # overlaps shorter than n words (common words, always shared) count as 0
        for i in candidates:
            m = difflib.SequenceMatcher(None, ws, self.docs[i], autojunk=False)
            best = max(best, m.find_longest_match(0, len(ws), 0, len(self.docs[i])).size)
        return best


def generation_quality(gens: list[dict], copy_index: CopyIndex) -> dict:
    """Summary of generated overviews: stopping, length, diversity, repetition and copying."""
    texts = [g["text"] for g in gens]
    longest = [copy_index.longest(t) for t in texts]
    lengths = [len(words(t)) for t in texts]
    return {"n": len(texts), "eos_share": float(np.mean([g["ended_with_eos"] for g in gens])),
            "mean_words": float(np.mean(lengths)), "words": lengths,
            "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
            "repeated_3gram_rate": float(np.mean([repeated_ngram_rate(t) for t in texts])),
            "longest_copy_words": float(np.mean(longest)),
            "copy_share": float(np.mean([c / max(n, 1) for c, n in zip(longest, lengths)]))}


# ---------------------------------------------------------------- the whole evaluation of a run: eval.json

LENGTH_BUCKETS = [0, 40, 80, 120, 10_000]  # overview length in the model's tokens


def breakdown(nll: torch.Tensor, n: torch.Tensor, films: pd.DataFrame, top_genres: int = 8) -> dict:
    """Token-weighted perplexity per genre (the most frequent) and per film-length bucket."""
    df = pd.DataFrame({"nll": nll.numpy(), "n": n.numpy(), "genres": films["genres"].values})
    by_genre = df.explode("genres").dropna(subset=["genres"]).groupby("genres")[["nll", "n"]].sum()
    by_genre = by_genre.assign(films=df.explode("genres").groupby("genres").size()).nlargest(top_genres, "films")
    df["bucket"] = pd.cut(df["n"], LENGTH_BUCKETS, right=True)
    by_len = df.groupby("bucket", observed=True)[["nll", "n"]].sum().assign(films=df.groupby("bucket", observed=True).size())
    ppl = lambda t: [{"group": str(i), "films": int(r.films), "tokens": int(r.n), "perplexity": math.exp(r.nll / r.n)}
                     for i, r in t.iterrows()]
    return {"by_genre": ppl(by_genre), "by_length": ppl(by_len)}


def evaluate_run(run_dir: Path, n_titles: int = 12, max_new_tokens: int = 80, seed: int = 0, k: int = 5,
                 log=print) -> dict:
    """Base vs fine-tuned on the run's test films: perplexity (overall, by genre, by length), generation
    quality for unseen titles, and recommendation quality (genre overlap@k) against TF-IDF. Written once
    to RUN/eval.json, then read back (recomputed only if asked for with other settings)."""
    path = Path(run_dir) / "eval.json"
    settings = {"n_titles": n_titles, "max_new_tokens": max_new_tokens, "seed": seed, "k": k}
    if path.exists() and (cached := json.loads(path.read_text())).get("settings") == settings:
        return cached
    if not (Path(run_dir) / "summary.json").exists():
        raise UserError(f"{run_dir} is not a finished moviegpt run (no summary.json)")
    cfg = load_run_config(run_dir)
    splits = data.load_splits(cfg.data, cfg.seed)
    test = splits.test
    tok, _ = tokens.load_tokenizer(str(Path(run_dir) / "model"))
    ds = tokens.tokenize(test, tok, TextConfig(template=cfg.text.template, max_length=cfg.text.max_length),
                         batching="pad", desc="test films")
    models = {"base": load_model(cfg.model, tok, cfg.seed)[0], "fine-tuned": load_trained(str(Path(run_dir) / "model"))[0]}
    copy_index = CopyIndex(splits.train["overview"].tolist())
    titles = test.head(n_titles)
    real = [{"text": t, "ended_with_eos": True} for t in titles["overview"]]
    out = {"run": Path(run_dir).name, "settings": settings, "test_films": len(test), "k": k, "perplexity": {}, "generation": {},
           "examples": {"title": titles["title"].tolist(), "real": titles["overview"].tolist()},
           "recommendation": {"tf-idf": recommend.genre_overlap_at_k(recommend.tfidf(test["overview"].tolist()),
                                                                     test["genres"].tolist(), k),
                              "random": recommend.random_overlap(test["genres"].tolist())}}
    out["generation"]["real"] = generation_quality(real, copy_index)
    for name, model in models.items():
        log(f"Evaluating the {name} model...")
        nll, n = token_nll(model, ds, cfg.train.eval_batch_size)
        loss = float(nll.sum() / n.sum())
        out["perplexity"][name] = {"loss": loss, "perplexity": math.exp(loss), "tokens": int(n.sum()),
                                   **breakdown(nll, n, test)}
        gens = generate_overviews(model, tok, titles["title"].tolist(), cfg.text.template,
                                  max_new_tokens=max_new_tokens, seed=seed)
        out["generation"][name] = generation_quality(gens, copy_index)
        out["examples"][name] = [{"text": g["text"], "ended_with_eos": g["ended_with_eos"]} for g in gens]
        vecs = recommend.embed(model, tok, test["overview"].tolist())
        out["recommendation"][name] = recommend.genre_overlap_at_k(vecs, test["genres"].tolist(), k)
    path.write_text(json.dumps(out, indent=2))
    return out


def headline(ev: dict) -> dict:
    """The few numbers of eval.json worth printing."""
    keys = ("eos_share", "mean_words", "distinct_2", "repeated_3gram_rate", "longest_copy_words")
    return {"run": ev["run"],
            "perplexity": {m: round(v["perplexity"], 3) for m, v in ev["perplexity"].items()},
            "generation": {m: {k: round(v[k], 3) for k in keys if k in v} for m, v in ev["generation"].items()},
            f"genre_overlap@{ev['k']}": {m: round(v, 3) for m, v in ev["recommendation"].items()}}
