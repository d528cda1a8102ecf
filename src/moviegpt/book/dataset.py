"""The Dataset chapter's facts, tables and data: the films after cleaning, the splits, lengths, genres and
years. The overview lengths load the shipped GPT-2 tokenizer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from moviegpt.book.records import original_recipe
from moviegpt.book.words import numbers, texts
from moviegpt.core.config import Config
from moviegpt.core.rundir import RunDir
from moviegpt.data import movies
from moviegpt.model.tokenizer import load_tokenizer


def cleaned_films(cfg: Config) -> tuple[pd.DataFrame, dict]:
    """All films of the run's source after cleaning (before any cap), with the cleaning counts."""
    return movies.load_clean(cfg.data)


def genre_counts(films: pd.DataFrame) -> pd.Series:
    return films["genres"].explode().dropna().value_counts()


def dataset_facts(cfg: Config, films: pd.DataFrame, counts: dict, lengths: np.ndarray) -> dict:
    genres, limit = genre_counts(films), original_recipe()["orig_length"]
    return {
        "source": cfg.data.source,
        "rows_in": counts["rows_in"],
        "rows_out": counts["rows_out"],
        "dropped": counts["rows_in"] - counts["rows_out"],
        "median_len": float(np.median(lengths)),
        "share_over": float((lengths > limit).mean()),
        "limit": limit,
        "n_genres": len(genres),
        "top_genre": genres.index[0] if len(genres) else "none",
        "max_overview_chars": movies.MAX_OVERVIEW_CHARS,
        **years(films),
    }


def years(films: pd.DataFrame) -> dict:
    """The span of release years, and the median (at least half the films were released in or after it)."""
    y = films["year"].dropna().astype(int)
    if y.empty:
        return {"first_year": "unknown", "last_year": "unknown", "median_year": "unknown"}
    return {"first_year": str(y.min()), "last_year": str(y.max()), "median_year": str(int(y.median()))}


def cleaning_table(counts: dict):
    rows = [("rows in", counts["rows_in"])] + [
        (f"dropped: {k.replace('_', ' ')}", v) for k, v in counts["dropped"].items()
    ]
    return numbers(pd.DataFrame(rows + [("rows out", counts["rows_out"])], columns=["step", "films"]).set_index("step"))


def split_table(run: RunDir):
    return numbers(pd.DataFrame({k: v.__dict__ for k, v in run.info().data.splits.items()}).T.rename_axis("split"))


def overview_lengths(films: pd.DataFrame) -> np.ndarray:
    """Overview length in GPT-2 tokens (the shipped GPT-2 tokenizer, whatever model ran). Loads a tokenizer."""

    tok, _ = load_tokenizer("gpt2-bundled")
    return np.array([len(ids) for ids in tok(films["overview"].tolist())["input_ids"]])


def example_rows(films: pd.DataFrame, n: int = 3):
    out = films[["title", "year", "genres", "overview"]].head(n).copy()
    out["genres"] = out["genres"].map(", ".join)
    out["year"] = out["year"].map(lambda y: "" if pd.isna(y) else str(int(y)))
    return texts(out)
