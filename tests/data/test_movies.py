"""moviegpt.data.movies: reading, normalising, cleaning and splitting film tables, and hostile data files."""

import json
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_error, one_line_or_ok, run_cli, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moviegpt import UserError
from moviegpt.cli import parser
from moviegpt.core.config import DataConfig
from moviegpt.data import movies


@pytest.fixture(scope="module")
def bundled():
    return movies.read_table("bundled")


def test_bundled_sample_is_wykonos_layout(bundled):
    assert len(bundled) == 4803
    assert {"id", "title", "genres", "overview", "popularity", "release_date"} <= set(bundled.columns)
    assert bundled["genres"].str.contains("-").any()  # joined with '-', as in wykonos/movies
    assert bundled["popularity"].is_monotonic_decreasing  # sorted by popularity, like the real dataset


def test_both_schemas_normalise_to_the_same_films(bundled, tmp_path):
    wyk = bundled.head(50)
    # The Kaggle TMDB 5000 layout: genres as a JSON list of {id, name}
    kaggle = wyk.copy()
    kaggle["genres"] = [
        json.dumps([{"id": i, "name": g} for i, g in enumerate(s.split("-")) if g]) for s in wyk["genres"]
    ]
    path = tmp_path / "kaggle.csv"
    kaggle.to_csv(path, index=False)
    a, b = movies.normalise(wyk), movies.normalise(movies.read_table(str(path)))
    assert a["genres"].tolist() == b["genres"].tolist()
    assert a["title"].tolist() == b["title"].tolist()
    assert "Science Fiction" in set(movies.normalise(bundled)["genres"].explode())  # a genre with a space survives
    assert a["year"].iloc[0] == int(wyk["release_date"].iloc[0][:4])
    assert "vote_count" in a.columns  # other columns are kept


def test_cleaning_counts_every_reason(bundled):
    films = bundled.head(20).copy()
    films.loc[0, "title"] = "   "
    films.loc[1, "overview"] = None
    films.loc[2, "overview"] = np.nan
    extra = films.iloc[[5, 6]].copy()  # exact duplicates of two films
    extra["title"] = "  " + extra["title"] + " "  # differing only by whitespace, which is stripped
    same_id = films.iloc[[7]].copy()
    same_id["title"] = "Another film under a repeated id"
    too_long = films.iloc[[8]].copy()
    too_long["id"], too_long["overview"] = -1, "x" * (movies.MAX_OVERVIEW_CHARS + 1)
    kept, counts = movies.clean(movies.normalise(pd.concat([films, extra, same_id, too_long])))
    assert counts == {
        "rows_in": 24,
        "dropped": {
            "missing_title": 1,
            "missing_overview": 2,
            "overview_too_long": 1,
            "duplicate_title_overview": 2,
            "duplicate_id": 1,
        },
        "rows_out": 17,
    }
    assert len(kept) == 17 and not kept["title"].str.startswith(" ").any()


def test_split_is_stable_under_reordering_and_additions(bundled):
    films = movies.normalise(bundled)
    base = dict(zip(films["id"], movies.assign_splits(films, [0.9, 0.05, 0.05])))
    shuffled = films.sample(frac=1, random_state=1).head(3000)
    again = dict(zip(shuffled["id"], movies.assign_splits(shuffled, [0.9, 0.05, 0.05])))
    assert all(base[i] == s for i, s in again.items())
    shares = pd.Series(base).value_counts(normalize=True)
    assert 0.87 < shares["train"] < 0.93 and 0.03 < shares["test"] < 0.07


def test_split_falls_back_to_title_and_year_without_id(bundled):
    films = movies.normalise(bundled.drop(columns=["id"]).head(200))
    a = movies.assign_splits(films, [0.5, 0.25, 0.25])
    b = movies.assign_splits(films.iloc[::-1].reset_index(drop=True), [0.5, 0.25, 0.25])[::-1]
    assert (a == b).all() and len(set(a)) == 3


def test_load_splits_caps_after_a_seeded_shuffle():
    cfg = DataConfig(max_train_rows=100, max_eval_rows=10)
    s1, s2, s3 = (movies.load_splits(cfg, seed) for seed in (1, 1, 2))
    assert len(s1.train) == 100 and len(s1.test) == 10
    assert s1.train["id"].tolist() == s2.train["id"].tolist() != s3.train["id"].tolist()
    # not the 100 most popular films: the shuffle happened before the cap
    every = movies.normalise(movies.read_table("bundled"))
    assert s1.train["popularity"].median() < every["popularity"].nlargest(100).min()
    assert not set(s1.train["id"]) & set(s1.test["id"])


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("nope.csv", None, "data file not found"),
        ("", None, "is a directory"),
        ("empty.csv", b"", "is empty"),
        ("cols.csv", b"name,plot\nA,B\n", "missing column(s) title, overview; columns found: name, plot"),
        ("x.txt", b"hi", "unknown type '.txt'"),
        ("bin.csv", b"title,overview\n\xff\xfe,\x81\n", "not UTF-8"),
    ],
)
def test_bad_files_get_one_clear_line(tmp_path, name, content, fragment):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError) as e:
        movies.load_splits(DataConfig(source=str(tmp_path / name)), 0)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_all_rows_dropped_is_an_error(tmp_path):
    (tmp_path / "blank.csv").write_text("title,overview\nA,\n,B\n")
    with pytest.raises(UserError, match="no films left"):
        movies.load_splits(DataConfig(source=str(tmp_path / "blank.csv")), 0)


def test_unreachable_hub_dataset_says_so():
    with pytest.raises(UserError, match="cannot reach the Hugging Face hub.*bundled"):
        movies.read_table("wykonos/movies")  # conftest sets HF_HUB_OFFLINE=1


# ------------------------------------------------------------------ hostile data


def films(n=40, **cols) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title": [f"Film {i}" for i in range(n)],
            "overview": [f"A story number {i} about a town at night." for i in range(n)],
            **cols,
        }
    )


def test_a_film_list_without_ids_splits_by_its_content(tmp_path, capfd):
    films().to_csv(tmp_path / "mine.csv", index=False)
    code, out, err = run_cli(capfd, "prepare", "--config", "smoke", "--set", f"data.source={tmp_path / 'mine.csv'}")
    assert code == 0, err
    first = json.loads(out)["splits"]
    films().sample(frac=1, random_state=3).to_csv(tmp_path / "shuffled.csv", index=False)
    code, out, _ = run_cli(capfd, "prepare", "--config", "smoke", "--set", f"data.source={tmp_path / 'shuffled.csv'}")
    assert json.loads(out)["splits"] == first  # the same films land in the same splits


def test_numbers_as_genres_fill_a_genres_template(tmp_path, capfd):
    films(genres=list(range(40))).to_csv(tmp_path / "g.csv", index=False)
    code, _, err = run_cli(
        capfd,
        "prepare",
        "--config",
        "smoke",
        "--set",
        f"data.source={tmp_path / 'g.csv'}",
        "--set",
        "text.template=Genres: {genres}\nMovie: {title}\nOverview: {overview}",
    )
    assert code == 0, err


def test_bytes_in_parquet_are_decoded_or_refused(tmp_path, capfd):
    df = films()
    df["overview"] = [o.encode() for o in df["overview"]]
    df.to_parquet(tmp_path / "b.parquet")
    from moviegpt.data import movies

    got = movies.normalise(movies.read_table(str(tmp_path / "b.parquet")))
    assert got["overview"].iloc[0] == "A story number 0 about a town at night."  # decoded, not "b'...'"
    df["overview"] = [b"\xff\xfe not utf-8"] * len(df)
    df.to_parquet(tmp_path / "bad.parquet")
    one_error(
        capfd,
        "holds bytes that are not UTF-8",
        "prepare",
        "--config",
        "smoke",
        "--set",
        f"data.source={tmp_path / 'bad.parquet'}",
    )


def test_a_remote_source_that_never_answers_times_out(tmp_path, capfd):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections and never answers
    port = listener.getsockname()[1]
    t = time.time()
    one_error(
        capfd,
        "cannot read data file",
        "prepare",
        "--config",
        "smoke",
        "--set",
        f"data.source=http://127.0.0.1:{port}/films.csv",
        "--set",
        "data.timeout_s=2",
    )
    assert time.time() - t < 30
    listener.close()


# ------------------------------------------------------------------ hostile data files, generated


COLUMNS = ["id", "title", "overview", "genres", "release_date", "popularity", "name", "plot", "", "Title", "title "]
CELLS = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "\x1b[2J\x1b]0;pwned\x07",
            "Drama-Crime",
            '[{"id": 1, "name": "Drama"}]',
            "[1, 2]",
            "😀",
            "a,b\nc",
            '"quoted"',
            "  ",
            "1999-13-45",
            "x" * 12_000,
        ]
    ),
)


def write_table(df: pd.DataFrame, kind: str, path: Path, encoding: str) -> Path:
    if kind == "csv":
        path = path.with_suffix(".csv")
        path.write_bytes(df.to_csv(index=False).encode(encoding, errors="replace"))
    elif kind == "jsonl":
        path = path.with_suffix(".jsonl")
        path.write_text(df.to_json(orient="records", lines=True, default_handler=str))
    else:
        path = path.with_suffix(".parquet")
        df.astype({c: "string" for c in df.columns if df[c].dtype == object}).to_parquet(path)
    return path


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    columns=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=5, unique=True),
    rows=st.integers(0, 30),
    kind=st.sampled_from(["csv", "jsonl", "parquet"]),
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
    data=st.data(),
)
def test_hostile_data_files(columns, rows, kind, encoding, data, tmp_path_factory, capfd):
    tmp = tmp_path_factory.mktemp("data")
    df = pd.DataFrame({c: [data.draw(CELLS) for _ in range(rows)] for c in columns})
    if rows and {"title", "overview"} <= set(columns) and data.draw(st.booleans()):  # mostly-good tables too
        df["title"] = [f"Film {i}" for i in range(rows)]
        df["overview"] = [data.draw(st.text(min_size=5, max_size=60)) for _ in range(rows)]
    try:
        path = write_table(df, kind, tmp / "films", encoding)
    except Exception:  # pandas/pyarrow cannot write this table: nothing to test
        return
    before = snapshot(tmp)
    capfd.readouterr()
    code = parser.main(
        ["prepare", "--config", "smoke", "--set", f"data.source={path}", "--set", f"runs_dir={tmp / 'runs'}"]
    )
    out = capfd.readouterr()
    one_line_or_ok(code, out.err)
    assert "\x1b" not in out.out
    assert snapshot(tmp) == before
