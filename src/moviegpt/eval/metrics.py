"""Generation-quality measures: plain functions over texts, tested on their own.

distinct-n (Li et al., 2016), the repeated word n-gram rate within a text, and the longest run of words a
text shares with any training overview (memorisation shows). Perplexity lives in moviegpt.eval.evaluate.
"""

from __future__ import annotations

import difflib
import re

import numpy as np


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def ngrams(ws: list[str], n: int) -> list[tuple]:
    return [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]


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
        candidates = (
            set().union(*(self.index.get(g, set()) for g in ngrams(ws, self.n))) if len(ws) >= self.n else set()
        )
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
    repeated = [repeated_ngram_rate(t) for t in texts]
    return {
        "n": len(texts),
        "eos_share": float(np.mean([g["ended_with_eos"] for g in gens])),
        "mean_words": float(np.mean(lengths)),
        "words": lengths,
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "repeated_3gram_rate": float(np.mean(repeated)),
        "repeated_3grams": repeated,
        "longest_copy_words": float(np.mean(longest)),
        "copy_words": longest,
        "copy_share": float(np.mean([c / max(n, 1) for c, n in zip(longest, lengths)])),
    }
