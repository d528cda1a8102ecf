"""Streaming (data.streaming): data larger than memory or disk, read as a `datasets` stream, cleaned and split
a batch at a time by the same rules as moviegpt.data.movies, and packed as training reads it (moviegpt.data.tokens).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from moviegpt.core import hub, validate
from moviegpt.core.artifacts import DataCounts, SplitCount
from moviegpt.core.config import Config, DataConfig
from moviegpt.core.errors import UserError, first_line
from moviegpt.data.movies import BUNDLED, Splits, _has_id, _looks_like_path, _read_file, assign_splits, clean, normalise

BUILDERS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".json": "json"}
STREAM_COLUMNS = ["id", "title", "overview", "genres"]  # what a streamed film carries


def stream_films(cfg: DataConfig, split: str):
    """The films of one split as a `datasets` stream: read lazily, normalised and cleaned a batch at a time
    and kept by the same hash split as `load_splits`, so a film is in the same split either way. Repeats are
    dropped within a batch of 1,000 only (a stream cannot see the whole table)."""
    import datasets

    datasets.logging.set_verbosity_error()  # its own log lines (a failed JSON line, say) would come before ours
    source = str(BUNDLED) if cfg.source == "bundled" else cfg.source
    try:
        if _looks_like_path(source):
            if "://" not in source and not Path(source).is_file():
                _read_file(source)  # the same clear error as without streaming
            builder = BUILDERS.get(Path(source).suffix.lower())
            if builder is None:
                raise UserError(
                    f"data file {source} has an unknown type '{Path(source).suffix}'; use .csv, .parquet or .jsonl"
                )
            ds = datasets.load_dataset(builder, data_files=source, split="train", streaming=True)
        elif hub.reachable():
            ds = datasets.load_dataset(source, split=cfg.hub_split, streaming=True)
        else:
            raise UserError(f"cannot reach the Hugging Face hub to stream dataset '{source}'; {hub.OFFLINE_HINT}")
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"cannot read {source} while streaming: {first_line(e)}") from None

    def keep(batch: dict) -> dict:
        films, _ = clean(normalise(pd.DataFrame(batch)))
        films = films[assign_splits(films, cfg.splits) == split]
        out = {c: films[c].tolist() for c in STREAM_COLUMNS}
        out["id"] = [str(v) if _has_id(v) else None for v in films["id"]]
        return out

    return ds.map(keep, batched=True, batch_size=1000, remove_columns=list(ds.column_names or []) or None)


def take_films(stream, n: int, source: str = "the stream") -> pd.DataFrame:
    """The first n films of a stream as a table (held-out evaluation needs a fixed, finite set)."""
    try:
        return pd.DataFrame(list(stream.take(n)), columns=STREAM_COLUMNS)
    except UserError:
        raise
    except Exception as e:  # a malformed line surfaces only when the stream reaches it
        raise UserError(f"cannot read {source} while streaming: {first_line(e)}") from None


def splits(cfg: Config) -> Splits:
    """data.streaming: the training split stays a stream (shuffled through a buffer); validation and test
    are the first max_eval_rows (default 1,000) films of theirs, so held-out numbers use a fixed set."""
    n_eval = cfg.data.max_eval_rows or 1000
    held_out = {s: take_films(stream_films(cfg.data, s), n_eval, cfg.data.source) for s in ("validation", "test")}
    train = stream_films(cfg.data, "train").shuffle(seed=cfg.seed, buffer_size=10_000)
    if cfg.data.max_train_rows:
        train = train.take(cfg.data.max_train_rows)
    validate.need(not held_out["test"].empty, f"the stream {cfg.data.source} gave no test films")
    counts = DataCounts(
        streaming=True, splits={"train": SplitCount(), **{k: SplitCount(used=len(v)) for k, v in held_out.items()}}
    )
    return Splits(train=train, validation=held_out["validation"], test=held_out["test"], counts=counts)
