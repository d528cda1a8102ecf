"""Regenerate data/tmdb5000.parquet, the bundled offline sample, from the Kaggle TMDB 5000 CSV.

    python scripts/make_bundled_sample.py PATH/TO/tmdb5000/movies.csv

The Kaggle layout stores genres, keywords and production companies as JSON lists of
{id, name}; wykonos/movies joins the names with '-'. This script converts the former to
the latter so the bundled sample looks exactly like a slice of the real dataset, and sorts
it by popularity (as wykonos/movies is). Columns wykonos has but TMDB 5000 lacks
(credits, poster_path, backdrop_path, recommendations) are left out, not invented.
"""
import json
import sys
from pathlib import Path

import pandas as pd

WYKONOS_COLUMNS = ["id", "title", "genres", "original_language", "overview", "popularity",
                   "production_companies", "release_date", "budget", "revenue", "runtime",
                   "status", "tagline", "vote_average", "vote_count", "keywords"]


def join_names(cell: str) -> str:
    return "-".join(item["name"] for item in json.loads(cell)) if isinstance(cell, str) else ""


def main(src: str, dst: str = "data/tmdb5000.parquet") -> None:
    df = pd.read_csv(src)
    for col in ("genres", "keywords", "production_companies"):
        df[col] = df[col].map(join_names)
    df = df[WYKONOS_COLUMNS].sort_values("popularity", ascending=False, kind="stable")
    df.to_parquet(dst, index=False, compression="zstd")
    print(f"wrote {dst}: {len(df)} rows x {df.shape[1]} columns ({Path(dst).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
