"""Content-based recommendation, the use the original report promised: films with similar overviews.

An overview's embedding is the language model's last hidden state, mean-pooled over the
overview's tokens and L2-normalised; neighbours are the films with the highest cosine
similarity. `genre_overlap_at_k` scores a set of embeddings by how often a film's k nearest
neighbours share one of its genres, so the fine-tuned model, the base model and a TF-IDF
baseline can be compared on the same films.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from moviegpt.core import progress, validate
from moviegpt.core.config import Config
from moviegpt.core.errors import UserError
from moviegpt.core.settings import load_run_config
from moviegpt.data import movies
from moviegpt.model.causal_lm import load_trained


@torch.no_grad()
def embed(
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    texts: list[str],
    batch_size: int = 16,
    max_length: int = 256,
    desc: str = "embeddings",
) -> np.ndarray:
    """Mean-pooled, L2-normalised last hidden states, one row per text."""
    model.eval()
    out = []
    order = np.argsort([len(t) for t in texts])  # similar lengths per batch: less padding computed
    for i in progress.bar(range(0, len(texts), batch_size), desc=desc, unit="batch"):
        idx = order[i : i + batch_size]
        enc = tok(
            [texts[j] for j in idx], return_tensors="pt", padding=True, truncation=True, max_length=max_length
        ).to(model.device)
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1].float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        out.append((idx, ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()))
    vecs = np.zeros((len(texts), out[0][1].shape[1]), dtype=np.float32) if out else np.zeros((0, 1), np.float32)
    for idx, v in out:
        vecs[idx] = v
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True).clip(min=1e-12)


def tfidf(texts: list[str]) -> np.ndarray:
    """The baseline: TF-IDF over overview words (English stop words removed), L2-normalised."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts).toarray().astype(np.float32)


def neighbours(vecs: np.ndarray, query: np.ndarray, k: int, exclude: int | None = None) -> list[tuple[int, float]]:
    """Indices and cosine similarities of the k rows of `vecs` nearest to `query` (both L2-normalised)."""
    sims = vecs @ query
    if exclude is not None:
        sims[exclude] = -np.inf
    others = len(sims) - (exclude is not None)  # never more than there are other films: the film itself is no answer
    top = np.argsort(-sims, kind="stable")[: min(k, others)]
    return [(int(i), float(sims[i])) for i in top]


def genre_overlap_at_k(vecs: np.ndarray, genres: list[list[str]], k: int = 5) -> float:
    """Mean share of each film's k nearest neighbours (itself excluded) that share at least one of its genres."""
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    sets = [set(g) for g in genres]
    return float(np.mean([np.mean([bool(sets[i] & sets[j]) for j in row]) for i, row in enumerate(top)]))


def random_overlap(genres: list[list[str]]) -> float:
    """What genre_overlap_at_k would be with neighbours drawn at random: the chance baseline."""
    sets = [set(g) for g in genres]
    n = len(sets)
    return float(np.mean([np.mean([bool(sets[i] & sets[j]) for j in range(n) if j != i]) for i in range(n)]))


class Recommender:
    """kNN over a corpus of films; embeddings are computed once and cached (a .npy next to the model), keyed by
    a hash of the model's weights and the films' text, so a stale, truncated or wrong-width file is rebuilt."""

    def __init__(
        self,
        model: PreTrainedModel,
        tok: PreTrainedTokenizerBase,
        films: pd.DataFrame,
        cache: Path | None = None,
        model_dir: Path | None = None,
    ):
        self.model, self.tok, self.films = model, tok, films.reset_index(drop=True)
        key = cache_key(self.films, model_dir) if cache is not None else None
        self.vecs = _load_cached(cache, key, len(self.films), model) if cache is not None else None
        if self.vecs is None:
            self.vecs = embed(model, tok, self.films["overview"].tolist())
            if cache is not None:
                _save_cached(cache, key, self.vecs)

    def find_title(self, title: str) -> int | None:
        hits = self.films.index[self.films["title"].str.casefold() == title.strip().casefold()]
        return int(hits[0]) if len(hits) else None

    def by_title(self, title: str, k: int = 5) -> tuple[pd.DataFrame, bool]:
        """Neighbours of a film in the corpus; an unknown title is searched as free text (second value False)."""
        validate.need(bool(title.strip()), "the title is empty; give a film's title or some text to search for")
        i = self.find_title(title)
        if i is None:
            return self.by_text(title, k), False
        return self._table(neighbours(self.vecs, self.vecs[i], k, exclude=i)), True

    def by_text(self, text: str, k: int = 5) -> pd.DataFrame:
        return self._table(neighbours(self.vecs, embed(self.model, self.tok, [text])[0], k))

    def _table(self, hits: list[tuple[int, float]]) -> pd.DataFrame:
        rows = self.films.iloc[[i for i, _ in hits]]
        return pd.DataFrame(
            {
                "title": rows["title"].values,
                "year": rows["year"].values,
                "genres": [", ".join(g) for g in rows["genres"]],
                "similarity": [s for _, s in hits],
            }
        )


def cache_key(films: pd.DataFrame, model_dir: Path | None) -> str:
    h = hashlib.sha256(movies.content_hash(films).encode())
    for f in sorted(Path(model_dir).glob("*.safetensors")) if model_dir else []:
        h.update(f"{f.name}|{f.stat().st_size}|{f.stat().st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _load_cached(path: Path, key: str, rows: int, model) -> np.ndarray | None:
    meta = path.with_suffix(".json")
    try:
        if json.loads(meta.read_text()).get("key") != key:
            return None
        vecs = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # missing, truncated or not an array: rebuilt
    width = model.config.hidden_size if hasattr(model.config, "hidden_size") else vecs.shape[-1]
    return vecs if vecs.ndim == 2 and vecs.shape == (rows, width) and np.isfinite(vecs).all() else None


def _save_cached(path: Path, key: str, vecs: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, vecs, allow_pickle=False)
    validate.write_atomic(path, buf.getvalue())
    validate.write_atomic(path.with_suffix(".json"), json.dumps({"key": key, "shape": list(vecs.shape)}))


def corpus(cfg: Config) -> pd.DataFrame:
    """The films a run knows: its training, validation and test films, as the run used them."""
    s = movies.load_splits(cfg.data, cfg.seed)
    return pd.concat([s.train, s.validation, s.test], ignore_index=True)


def for_model(model_dir: str) -> Recommender:
    """A recommender over the run's films, with the fine-tuned model's embeddings cached in the run directory."""
    run_dir = Path(model_dir).resolve().parent
    if not (run_dir / "config.yaml").exists():
        raise UserError(
            f"{model_dir} is not the model/ directory of a moviegpt run (no config.yaml beside it); "
            "recommend searches the films of the run that trained the model"
        )
    model, tok, _ = load_trained(model_dir)
    return Recommender(
        model, tok, corpus(load_run_config(run_dir)), cache=run_dir / "embeddings.npy", model_dir=Path(model_dir)
    )
