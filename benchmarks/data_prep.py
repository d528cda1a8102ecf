"""Data preparation at the full wykonos/movies size: ours vs the report's, each in a fresh process.

    python benchmarks/data_prep.py [--rows 722796] [--original-rows N]

Builds a 722,796-row replica of the bundled films (replica, below), then measures
load -> clean -> split -> tokenise -> pack (ours, cold cache), the same again (warm cache: the
datasets cache files are reused), and the report's per-row map with padding to 128. Prints a
table and writes benchmarks/results/data_prep.json. Peak memory is the process's and its
workers' maximum resident set.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness
import pandas as pd

from moviegpt.data import movies
from moviegpt.model.tokenizer import load_tokenizer


@dataclass
class Stages:
    """Wall time of each named stage, in order."""

    times: dict = field(default_factory=dict)
    _t: float = field(default_factory=time.perf_counter)

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self._t
        self._t = now

    @property
    def total(self) -> float:
        return sum(self.times.values())


def prepare_ours(path: str, block_size: int = 512, num_proc: int | None = None) -> dict:
    """Our data path, as `moviegpt prepare` runs it: read, normalise, clean (counted), hash split,
    then tokenise and pack the training split (datasets map, batched, fast tokenizer, cached)."""
    from moviegpt.core.config import DataConfig, TextConfig
    from moviegpt.data import tokens

    st = Stages()
    cfg = DataConfig(source=str(path), splits=[0.98, 0.01, 0.01])
    tok, _ = load_tokenizer("gpt2-bundled")
    st.done("load tokenizer")
    splits = movies.load_splits(cfg, seed=0)
    st.done("load, clean, split")
    ds = tokens.tokenize(splits.train, tok, TextConfig(batching="pack", block_size=block_size, num_proc=num_proc))
    st.done("tokenise and pack")
    return {
        "stages": st.times,
        "seconds": st.total,
        "rows": splits.counts.rows_in,
        "train_films": len(splits.train),
        "examples": len(ds),
        "tokens": len(ds) * block_size,
    }


def prepare_original(path: str, max_length: int = 128) -> dict:
    """The report's data path: read the CSV-like table, drop rows without an overview, format one text
    column, then `Dataset.map` one row at a time, padding every film to 128 tokens."""
    import datasets
    from transformers import GPT2Tokenizer

    from moviegpt.model.tokenizer import BUNDLED_GPT2

    st = Stages()
    tok = GPT2Tokenizer.from_pretrained(BUNDLED_GPT2)
    tok.pad_token = tok.eos_token
    st.done("load tokenizer")
    df = pd.read_parquet(path).dropna(subset=["title", "overview"])
    df["text"] = "Movie: " + df["title"] + "\nOverview: " + df["overview"]
    ds = datasets.Dataset.from_pandas(df[["text"]], preserve_index=False)
    st.done("load, clean, split")
    ds = ds.map(
        lambda row: tok(row["text"], truncation=True, padding="max_length", max_length=max_length),
        remove_columns=["text"],
        load_from_cache_file=False,
    )
    st.done("tokenise and pad")
    return {
        "stages": st.times,
        "seconds": st.total,
        "rows": len(df),
        "train_films": len(ds),
        "examples": len(ds),
        "tokens": len(ds) * max_length,
    }


CHILD = """
import json, sys
import data_prep, harness
r = getattr(data_prep, sys.argv[1])(sys.argv[2], **json.loads(sys.argv[3]))
r["peak_rss_mb"] = harness.peak_rss_mb()
print("RESULT " + json.dumps(r))
"""


ROLES = {
    "ours": "ours (cold cache)",
    "ours_again": "ours (second prepare)",
    "baseline": "original (per-row map, pad 128)",
}


def measure(fn: str, path: str, cache: str, **kw) -> dict:
    env = dict(
        os.environ,
        MOVIEGPT_CACHE=cache,
        HF_HUB_OFFLINE="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]),
    )
    out = subprocess.run(
        [sys.executable, "-c", CHILD, fn, path, json.dumps(kw)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=harness.WYKONOS_ROWS)
    p.add_argument(
        "--original-rows", type=int, default=None, help="measure the original on fewer rows (rows/s is reported)"
    )
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    args = p.parse_args(argv)
    path = str(harness.replica_file(args.rows))
    orig_path = str(harness.replica_file(args.original_rows)) if args.original_rows else path
    with tempfile.TemporaryDirectory() as cache:
        rows = {
            ROLES["ours"]: measure("prepare_ours", path, cache),
            ROLES["ours_again"]: measure("prepare_ours", path, cache),
            ROLES["baseline"]: measure("prepare_original", orig_path, cache),
        }
    for r in rows.values():
        r["rows_per_s"] = r["rows"] / r["seconds"]
    base = rows[ROLES["baseline"]]["rows_per_s"]
    table = [
        {
            "recipe": k,
            "rows": r["rows"],
            "seconds": r["seconds"],
            "rows/s": r["rows_per_s"],
            "x original": r["rows_per_s"] / base,
            "peak MB": r["peak_rss_mb"],
        }
        for k, r in rows.items()
    ]
    print(harness.table(table, ["recipe", "rows", "seconds", "rows/s", "x original", "peak MB"]))
    for k, r in rows.items():
        print(f"  {k}: " + ", ".join(f"{s} {t:.1f} s" for s, t in r["stages"].items()))
    result = {
        "benchmark": "data_prep",
        "machine": harness.machine(),
        "rows": args.rows,
        "recipes": rows,
        "roles": ROLES,
        "targets": {"seconds": 60, "peak_rss_mb": 3072},
    }
    print(
        "wrote",
        harness.write_result(
            "data_prep" if args.rows == harness.WYKONOS_ROWS else f"data_prep-{args.rows}", result, args.out
        ),
    )


if __name__ == "__main__":
    main()
