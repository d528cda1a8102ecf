"""The data stage: load films from any source, normalise both schemas, clean (counted), split.

Sources (`cfg.data.source`): "bundled" (TMDB 5000 in wykonos layout, shipped in data/), a
local or fsspec path to CSV / parquet / JSON lines, or a hub dataset id such as wykonos/movies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import socket
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from moviegpt.core import hub
from moviegpt.core.artifacts import SPLITS, DataCounts, SplitCount
from moviegpt.core.config import DataConfig
from moviegpt.core.errors import UserError, first_line

BUNDLED = Path(str(resources.files("moviegpt") / "bundled" / "tmdb5000.parquet"))  # the repository's data/
REQUIRED = ("title", "overview")
WYKONOS_ROWS = 722_796  # rows of the full wykonos/movies dataset (its hub card): the scale the full recipe meets
MAX_REMOTE_BYTES = 4 << 30
DOWNLOAD_DEADLINE_S = 1800  # a remote file that takes longer than this in all is given up (a per-read timeout alone
# lets a server that sends one byte a second hold the download for ever)
MAX_ROWS = 20_000_000  # wykonos/movies has 722,796; a table that claims more is refused before it is decoded
MAX_OVERVIEW_CHARS = 10_000  # TMDB caps overviews near 1,000; a longer cell is a broken row, and in pack mode
# one 1 MB overview would fill hundreds of blocks with one film
READERS = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p, lines=True),
}


def _looks_like_path(source: str) -> bool:
    return "://" in source or Path(source).suffix.lower() in READERS or Path(source).exists()


def read_table(source: str, hub_split: str = "train", timeout_s: float = 60.0) -> pd.DataFrame:
    """Read the raw table behind `source`, as it is (no cleaning)."""
    if source == "bundled":
        return pd.read_parquet(BUNDLED)
    if _looks_like_path(source):
        with remote_timeout(timeout_s):
            return _read_file(source, timeout_s)
    with remote_timeout(timeout_s):
        return _read_hub(source, hub_split)


@contextlib.contextmanager
def remote_timeout(seconds: float):
    """Sockets opened while reading give up after `seconds` of silence instead of waiting forever."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def _download(url: str, timeout_s: float, suffix: str) -> Path:
    """An http(s) file into a temporary file, with a read timeout and a size bound."""
    tmp = Path(tempfile.mkstemp(suffix=suffix)[1])
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r, open(tmp, "wb") as out:  # noqa: S310 (http only)
            copied = 0
            deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
            while chunk := r.read(1 << 20):
                if time.monotonic() > deadline:
                    raise UserError(f"data file {url} took longer than {DOWNLOAD_DEADLINE_S} s to download; try again")
                copied += len(chunk)
                if copied > MAX_REMOTE_BYTES:
                    raise UserError(f"data file {url} is larger than {MAX_REMOTE_BYTES >> 30} GB")
                out.write(chunk)
    except (OSError, ValueError) as e:  # URLError, timeouts, refused connections
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot read data file {url}: {first_line(getattr(e, 'reason', e))}") from None
    return tmp


def _read_file(source: str, timeout_s: float = 60.0) -> pd.DataFrame:
    path = Path(source)
    suffix = path.suffix.lower()
    if source.split("://")[0].lower() in ("http", "https") and suffix in READERS:
        local = _download(source, timeout_s, suffix)
        try:
            return _read_file(str(local))
        finally:
            local.unlink(missing_ok=True)
    if "://" not in source:
        if not path.exists():
            raise UserError(f"data file not found: {source}")
        if path.is_dir():
            raise UserError(f"data source {source} is a directory; give a .csv, .parquet or .jsonl file")
        if path.stat().st_size == 0:
            raise UserError(f"data file {source} is empty")
    if suffix not in READERS:
        raise UserError(f"data file {source} has an unknown type '{suffix}'; use .csv, .parquet or .jsonl")
    if suffix == ".parquet" and "://" not in source:
        _check_parquet(path)
    try:
        return READERS[suffix](source)
    except UnicodeDecodeError as e:
        raise UserError(f"data file {source} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except Exception as e:  # pandas/pyarrow/fsspec raise many types; the message is what the user needs
        raise UserError(f"cannot read data file {source}: {first_line(e)}") from None


def _check_parquet(path: Path) -> None:
    """A parquet file's size as its metadata states it, checked before anything is decoded: a small file can hold
    millions of rows (compressed) that fill the memory when read."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
    except Exception as e:  # pyarrow raises its own types for a file that is not parquet
        raise UserError(f"cannot read data file {path}: {first_line(e)}") from None
    if meta.num_rows > MAX_ROWS:
        raise UserError(f"data file {path} holds {meta.num_rows:,} rows, more than moviegpt reads ({MAX_ROWS:,})")
    decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if decoded > MAX_REMOTE_BYTES:
        raise UserError(f"data file {path} would take {decoded / 2**30:.1f} GiB decoded, more than moviegpt reads")


def _read_hub(source: str, split: str) -> pd.DataFrame:
    import datasets  # heavy; only needed for hub sources

    if not hub.reachable():
        try:  # a copy in the local datasets cache still works offline
            return datasets.load_dataset(source, split=split, download_mode="reuse_cache_if_exists").to_pandas()
        except Exception:
            raise UserError(
                f"cannot reach the Hugging Face hub to load dataset '{source}' and it is not in the "
                f"local cache; {hub.OFFLINE_HINT}"
            ) from None
    try:
        return datasets.load_dataset(source, split=split).to_pandas()
    except Exception as e:
        raise UserError(f"cannot load hub dataset '{source}' (split '{split}'): {first_line(e)}") from None


def _parse_names(cell) -> list[str]:
    """Genres as wykonos stores them ("Action-Crime") or as TMDB 5000 does ('[{"id": 28, "name": "Action"}]');
    a lone number or other scalar is one name."""
    if isinstance(cell, (list, tuple, np.ndarray)):
        return [str(x.get("name", x)) if isinstance(x, dict) else str(x) for x in cell]
    if isinstance(cell, bytes):
        cell = cell.decode("utf-8", errors="replace")
    if not isinstance(cell, str):
        return [] if cell is None or isinstance(cell, dict) or pd.isna(cell) else [str(cell)]
    if not cell.strip():
        return []
    cell = cell.strip()
    if cell.startswith("["):
        try:
            items = json.loads(cell)
            return [i["name"] if isinstance(i, dict) else str(i) for i in items]
        except (ValueError, KeyError, TypeError):
            pass
    return [g.strip() for g in cell.split("-") if g.strip()]


def _text(cell) -> str | None:
    """A cell as stripped text; missing, NaN and empty become None; UTF-8 bytes are decoded; other scalars
    become their text."""
    if isinstance(cell, bytes):
        cell = cell.decode("utf-8")  # UnicodeDecodeError: caught by normalise, which names the column
    if isinstance(cell, str):
        cell = cell.strip()
        return cell or None
    if cell is None or isinstance(cell, (list, dict, np.ndarray)) or pd.isna(cell):
        return None
    return str(cell)


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Map either schema onto id, title, overview, genres (list), release_date, year, original_language,
    popularity; other columns are kept as they are."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        hint = ""
        if len(df.columns) == 1 and (sep := next((d for d in ";\t|" if d in str(df.columns[0])), None)):
            hint = f" (the file looks {sep!r}-separated; moviegpt reads comma-separated CSV)"
        raise UserError(
            f"data is missing column(s) {', '.join(missing)}; columns found: "
            f"{', '.join(map(str, df.columns)) or 'none'}{hint}"
        )
    if pd.api.types.is_numeric_dtype(df["overview"]) and df["overview"].notna().any():
        raise UserError("column 'overview' holds numbers, not text; is it the right column?")
    for col in REQUIRED:
        bad = df[col].map(lambda v: isinstance(v, (list, dict, np.ndarray)))
        if bad.any():
            raise UserError(
                f"column '{col}' holds lists or records, not text (first at row {int(bad.values.argmax())})"
            )
    out = df.copy()
    for col in REQUIRED:
        try:
            out[col] = out[col].map(_text)
        except UnicodeDecodeError:
            raise UserError(f"column '{col}' holds bytes that are not UTF-8 text") from None
    out["genres"] = out["genres"].map(_parse_names) if "genres" in out else [[] for _ in range(len(out))]
    if "id" not in out:
        out["id"] = None
    for col in ("release_date", "original_language"):
        if col not in out:
            out[col] = None
    out["year"] = pd.to_datetime(out["release_date"], errors="coerce").dt.year.astype("Int64")
    out["popularity"] = pd.to_numeric(out["popularity"], errors="coerce") if "popularity" in out else np.nan
    first = ["id", "title", "overview", "genres", "release_date", "year", "original_language", "popularity"]
    return out[first + [c for c in out.columns if c not in first]]


def clean(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Drop films without a title or overview, overviews over MAX_OVERVIEW_CHARS, exact (title, overview)
    duplicates and repeated ids (the first row of an id is kept); count each reason."""
    counts = {"rows_in": len(df)}
    no_title = df["title"].isna()
    no_overview = ~no_title & df["overview"].isna()
    too_long = ~no_title & ~no_overview & (df["overview"].str.len() > MAX_OVERVIEW_CHARS)
    kept = df[~no_title & ~no_overview & ~too_long]
    dup = kept.duplicated(subset=["title", "overview"], keep="first")
    kept = kept[~dup]
    has_id = kept["id"].map(_has_id).astype(bool)
    dup_id = has_id & kept["id"].astype(str).duplicated(keep="first")
    kept = kept[~dup_id].reset_index(drop=True)
    counts["dropped"] = {
        "missing_title": int(no_title.sum()),
        "missing_overview": int(no_overview.sum()),
        "overview_too_long": int(too_long.sum()),
        "duplicate_title_overview": int(dup.sum()),
        "duplicate_id": int(dup_id.sum()),
    }
    counts["rows_out"] = len(kept)
    return kept, counts


def _has_id(v) -> bool:
    return v is not None and not isinstance(v, (list, dict, np.ndarray)) and not pd.isna(v) and str(v).strip() != ""


def split_keys(df: pd.DataFrame) -> list[str]:
    """What decides a film's split: its id, or where there is none (a hand-made list of titles and overviews)
    its content: title, year and overview. Either depends on the film alone."""
    return [
        f"id:{i}" if _has_id(i) else f"film:{t}|{'' if pd.isna(y) else y}|{o}"
        for i, t, y, o in zip(df["id"], df["title"], df["year"], df["overview"])
    ]


def assign_splits(df: pd.DataFrame, fractions: list[float]) -> np.ndarray:
    """Hash each film's key to [0, 1): the split depends on the film alone, not on the other rows or their order."""
    u = np.array(
        [int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big") / 2**64 for k in split_keys(df)]
    )
    edges = np.cumsum(fractions)
    return np.array(SPLITS)[np.searchsorted(edges[:-1], u, side="right")]


@dataclass
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    counts: DataCounts = field(default_factory=DataCounts)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return getattr(self, name)


def load_clean(cfg: DataConfig) -> tuple[pd.DataFrame, dict]:
    """All films of the source, normalised and cleaned (no split, no cap), with the cleaning counts."""
    return clean(normalise(read_table(cfg.source, cfg.hub_split, cfg.timeout_s)))


def content_hash(films: pd.DataFrame) -> str:
    """A hash of the films' titles and overviews, in order: what a cache of anything computed from them keys on."""
    return hashlib.sha256(
        pd.util.hash_pandas_object(films[["title", "overview"]].astype(str), index=False).values.tobytes()
    ).hexdigest()[:16]


def known_titles(cfg: DataConfig) -> set[str]:
    """Every title in the source (casefolded): what an invented film's title should not be."""
    films, _ = load_clean(cfg)
    return set(films["title"].str.casefold())


def load_splits(cfg: DataConfig, seed: int) -> Splits:
    """Read, normalise, clean, split; then a seeded shuffle (data.seed, else `seed`: the run's) and the row caps
    (wykonos is sorted by popularity)."""
    seed = seed if cfg.seed is None else cfg.seed
    df, counts = load_clean(cfg)
    if counts["rows_in"] == 0:
        raise UserError(f"data source {cfg.source} has no rows (a header only?)")
    if df.empty:
        reasons = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts["dropped"].items() if v)
        raise UserError(f"no films left in {cfg.source} after cleaning ({reasons})")
    names = assign_splits(df, cfg.splits)
    rng = np.random.default_rng(seed)
    parts, sizes = {}, {}
    for name in SPLITS:
        part = df[names == name]
        part = part.iloc[rng.permutation(len(part))].reset_index(drop=True)
        cap = cfg.max_train_rows if name == "train" else cfg.max_eval_rows
        sizes[name] = SplitCount(available=len(part), used=min(len(part), cap or len(part)))
        parts[name] = part.head(cap) if cap else part
    if parts["train"].empty or parts["test"].empty:
        raise UserError(f"data source {cfg.source} has too few films ({len(df)}) for a train and a test split")
    return Splits(
        **parts,
        counts=DataCounts(
            rows_in=counts["rows_in"], rows_out=counts["rows_out"], dropped=counts["dropped"], splits=sizes
        ),
    )


def cap_train(splits: Splits, n: int) -> Splits:
    """The first n training films, as load_splits with data.max_train_rows=n gives them (its cap is a head of
    the shuffled split): a plan's film count applied to splits already loaded."""
    if n >= len(splits.train):
        return splits
    count = splits.counts.splits["train"]
    counts = dataclasses.replace(
        splits.counts, splits={**splits.counts.splits, "train": SplitCount(available=count.available, used=n)}
    )
    return dataclasses.replace(splits, train=splits.train.head(n), counts=counts)
